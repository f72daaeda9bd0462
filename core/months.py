"""Business windows in calendar months: one definition for the whole system.

Every look-back the lender uses (the repayment record, the scorecard's characteristics, the
statement months the checklist asks for, seeded and test ledgers) is computed here, with
`dateutil.relativedelta` for the month arithmetic. Nothing else in the code base adds months
by hand.

Definitions (`today` is the day of the decision; see `core.clock`):

- *N months after a day* is the same day of the month N months later, clamped to that month's
  last day: 31 January + 1 month is 28 (or 29) February (`add_months`).
- *Today is never part of a look-back.* A bill due today can still be paid today without being
  late, so a record is judged on the days that are over.
- **The last N months** (`last_months`, `within_last_months`) are the days `d` with
  `d < today <= d + N months`: before today, and at most N months old counting forward from
  `d`. As a range this is `[start, today - 1 day]`, where `start` is `today - N months` unless
  that subtraction was clamped (today is the 29th-31st and the month N months back is
  shorter), in which case `start` is the first day of the following month.
  Why not `[today - N months, today)`? Subtracting clamps, so on 29 February with bills on the
  28th the window would reach back to 28 February a year ago and hold 13 bills. Counting
  forward from the due date never clamps for a billing day of 1-28 (what lenders allow), which
  gives the invariant the property tests check: **an account billed once a month on a fixed
  day 1-28 has exactly N bills in the last N months, whatever day today is** (month ends,
  28/29 February, year ends).
- The last N months split into N *monthly periods* (`monthly_periods`): period k holds the days
  that are more than k-1 and at most k months old, so each holds exactly one such bill.
- **The last N days** (`last_days`) are `[today - N days, today - 1 day]`, the same rule in
  days.
- **The last N full calendar months** (`full_calendar_months`) are the N calendar months before
  today's month, first day to last (what a bank statement must cover).
- *Whole months from a to b* (`months_between`) is the largest m with `a + m months <= b`
  (31 January to 28 February is one month).
- *Billing dates* (`billing_dates`): an account is billed on a fixed day of the month, 1-28;
  its most recent bill is the latest billing date before today, so this month's bill counts
  once its day has passed.

Durations the policy states in days (the decline cool-down, the human-review window, the
document deadline) are plain day counts, not months, and stay `timedelta`s.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from dateutil.relativedelta import relativedelta

# Lenders restrict the statement day so that every month has one.
MAX_BILLING_DAY: Final = 28
_DAY: Final = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class DateRange:
    """Whole days from `start` to `end`, both included; empty when `end` is before `start`."""

    start: date
    end: date  # inclusive

    @property
    def days(self) -> int:
        return max((self.end - self.start).days + 1, 0)

    def __contains__(self, day: object) -> bool:
        return isinstance(day, date) and self.start <= day <= self.end


def add_months(day: date, months: int) -> date:
    """The same day `months` later (earlier when negative), clamped to the month's last day."""
    result: date = day + relativedelta(months=months)
    return result


def months_between(start: date, end: date) -> int:
    """Whole months from `start` to `end`: the largest m >= 0 with start + m months <= end."""
    if end <= start:
        return 0
    delta = relativedelta(end, start)
    return delta.years * 12 + delta.months


def _non_negative(n: int, what: str) -> None:
    if n < 0:
        raise ValueError(f"{what} must be >= 0, not {n}")


def last_months(today: date, months: int) -> DateRange:
    """The last `months` months before `today` (see the module docstring)."""
    _non_negative(months, "months")
    start = add_months(today, -months)
    if start.day != today.day:  # clamped to a shorter month: no day there is N months old yet
        start += _DAY
    return DateRange(start, today - _DAY)


def within_last_months(day: date, today: date, months: int) -> bool:
    """`day` is before today and at most `months` months old (the same days as `last_months`)."""
    return day < today <= add_months(day, months)


def monthly_periods(today: date, months: int) -> list[DateRange]:
    """The last `months` months as consecutive one-month periods, the most recent first."""
    _non_negative(months, "months")
    starts = [last_months(today, k).start for k in range(months + 1)]  # today, 1 month, ...
    return [DateRange(starts[k + 1], starts[k] - _DAY) for k in range(months)]


def last_days(today: date, days: int) -> DateRange:
    """The last `days` days before today."""
    _non_negative(days, "days")
    return DateRange(today - timedelta(days=days), today - _DAY)


def calendar_month(day: date) -> DateRange:
    """The calendar month `day` is in, first day to last."""
    return DateRange(day.replace(day=1), day.replace(day=calendar.monthrange(day.year, day.month)[1]))


def full_calendar_months(today: date, months: int) -> list[DateRange]:
    """The last `months` complete calendar months before today's month, oldest first."""
    _non_negative(months, "months")
    this_month = today.replace(day=1)
    return [calendar_month(add_months(this_month, -back)) for back in range(months, 0, -1)]


def full_calendar_months_range(today: date, months: int) -> DateRange:
    """The last `months` complete calendar months before today's month, as one range."""
    this_month = today.replace(day=1)
    return DateRange(add_months(this_month, -months), this_month - _DAY)


def billing_dates(billing_day: int, today: date, count: int) -> list[date]:
    """The `count` most recent billing dates before today on `billing_day`, oldest first."""
    if not 1 <= billing_day <= MAX_BILLING_DAY:
        raise ValueError(f"billing day must be 1-{MAX_BILLING_DAY}, not {billing_day}")
    _non_negative(count, "count")
    latest = today.replace(day=billing_day)
    if latest >= today:
        latest = add_months(latest, -1)
    return [add_months(latest, -back) for back in range(count - 1, -1, -1)]


__all__ = [
    "MAX_BILLING_DAY",
    "DateRange",
    "add_months",
    "billing_dates",
    "calendar_month",
    "full_calendar_months",
    "full_calendar_months_range",
    "last_days",
    "last_months",
    "monthly_periods",
    "months_between",
    "within_last_months",
]
