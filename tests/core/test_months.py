"""Property tests: the business windows hold on any day, month ends, 28/29 February and year
ends above all (core/months.py and every date-sensitive function built on it)."""

from __future__ import annotations

import calendar
import itertools
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.db.ledger_tables import Bill
from core.demo_documents import statement_csv as demo_statement_csv
from core.documents.statement_checks import covers_last_full_months, required_window
from core.documents.statements import parse_csv_statement
from core.ledger.generator import Population, generate_customer
from core.ledger.repayment import summarise_bills
from core.months import (
    DateRange,
    add_months,
    billing_dates,
    calendar_month,
    full_calendar_months,
    full_calendar_months_range,
    last_days,
    last_months,
    monthly_periods,
    months_between,
    within_last_months,
)
from core.policy import inputs as snapshot
from core.policy.characteristics import (
    active_months,
    bills_due_within,
    covered_months,
    late_bill_count,
    month_key,
    on_time_ratio,
    worst_dpd,
)
from core.seed import DEMO_CUSTOMERS, demo_bills
from tests.dates import billing_days, days, with_issue_days
from tests.factories import monthly_bills

DAY = timedelta(days=1)
# --------------------------------------------------------------------------------------------
# Month arithmetic


@settings(max_examples=300)
@given(days, st.integers(-300, 300))
def test_a_cool_down_of_m_months_ends_on_the_same_day_clamped(start: date, months: int) -> None:
    end = add_months(start, months)
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    assert end.day == min(start.day, calendar.monthrange(end.year, end.month)[1])


@settings(max_examples=300)
@given(days, days)
def test_months_between_is_the_largest_whole_number_of_months(start: date, end: date) -> None:
    m = months_between(start, end)
    if end <= start:
        assert m == 0
    else:
        assert add_months(start, m) <= end < add_months(start, m + 1)


@settings(max_examples=300)
@with_issue_days(12, 0)
@given(days, st.integers(0, 24), st.integers(-800, 5))
def test_last_months_is_before_today_and_at_most_n_months_old(today: date, n: int, offset: int) -> None:
    window = last_months(today, n)
    assert window.end == today - DAY
    # The range and the definition agree at both edges and at any other day.
    probes = [window.start + k * DAY for k in range(-3, 4)] + [today + k * DAY for k in range(-3, 3)]
    for day in [*probes, today + offset * DAY]:
        assert (day in window) is within_last_months(day, today, n), day
    if n:
        assert today - timedelta(days=31 * n + 1) < window.start <= today - timedelta(days=28 * n)


@settings(max_examples=100)
@given(days, st.integers(1, 400))
def test_last_days(today: date, n: int) -> None:
    window = last_days(today, n)
    assert window.days == n and window.end == today - DAY and today not in window


# --------------------------------------------------------------------------------------------
# Monthly bills in an N-month window


@settings(max_examples=500)
@with_issue_days(28, 12)
@given(days, billing_days, st.integers(1, 24))
def test_n_monthly_bills_in_an_n_month_window(today: date, billing_day: int, n: int) -> None:
    past = billing_dates(billing_day, today, n + 14)
    future = [add_months(past[-1], k) for k in (1, 2)]  # due today or later: not in any look-back
    bills = [*past, *future]
    window = last_months(today, n)
    assert sum(1 for due in bills if due in window) == n
    assert sum(1 for due in bills if within_last_months(due, today, n)) == n
    periods = monthly_periods(today, n)
    assert [sum(1 for due in bills if due in period) for period in periods] == [1] * n
    # The periods tile the window, the most recent first.
    assert periods[0].end == window.end and periods[-1].start == window.start
    assert all(periods[k].start == periods[k + 1].end + DAY for k in range(n - 1))


def test_why_not_the_half_open_window_today_minus_n_months() -> None:
    """On 29 February a year back clamps to the 28th: [28 Feb 2027, 29 Feb 2028) holds 13
    bills due on the 28th. The window counting forward from the due date holds 12."""
    today = date(2028, 2, 29)
    bills = billing_dates(28, today, 24)
    naive = [due for due in bills if add_months(today, -12) <= due < today]
    assert len(naive) == 13
    assert sum(1 for due in bills if due in last_months(today, 12)) == 12


@settings(max_examples=300)
@with_issue_days(28, 24)
@given(days, billing_days, st.integers(0, 30))
def test_billing_dates_end_with_the_last_one_due_before_today(
    today: date, billing_day: int, count: int
) -> None:
    dues = billing_dates(billing_day, today, count)
    assert len(dues) == count and all(due.day == billing_day for due in dues)
    assert all(add_months(a, 1) == b for a, b in itertools.pairwise(dues))
    if dues:
        assert dues[-1] < today <= add_months(dues[-1], 1)


def test_a_billing_day_must_exist_in_every_month() -> None:
    with pytest.raises(ValueError):
        billing_dates(29, date(2026, 5, 1), 3)


STORY = st.lists(st.sampled_from([0, 0, 0, 0, 3, 12, 45]), min_size=12, max_size=12).map(tuple)


@settings(max_examples=300)
@with_issue_days(28, (0, 0, 3, 0, 0, 0, 45, 0, 0, 0, 0, 0))
@given(days, billing_days, STORY)
def test_the_repayment_record_of_the_factorys_twelve_bills(
    today: date, billing_day: int, story: tuple[int, ...]
) -> None:
    """The record tests/core/ledger/test_eligibility_and_limits.py checks in the database,
    here on any day: the factory's 12 bills are exactly the 12 months' record."""
    older = (99,) * 6  # older bills, very late, that must stay out of the record
    bills = monthly_bills("acct", older + story, today=today, billing_day=billing_day)
    record = summarise_bills(bills, today)
    assert record.bills_due == 12
    assert record.bills_on_time == story.count(0)
    assert record.worst_days_past_due == max(story)
    assert record.window_start == last_months(today, 12).start


@settings(max_examples=300)
@with_issue_days(28, (0, 0, 3, 0, 0, 0, 45, 0, 0, 0, 0, 0))
@given(days, billing_days, STORY)
def test_the_scorecard_sees_the_same_twelve_bills(
    today: date, billing_day: int, story: tuple[int, ...]
) -> None:
    older = (99,) * 14
    rows = monthly_bills("acct", older + story, today=today, billing_day=billing_day)
    bills = [
        snapshot.Bill(
            due_date=b.due_date,
            amount_due_minor=b.amount_due_minor,
            paid_minor=b.paid_minor,
            paid_on=b.paid_at.date() if b.paid_at else None,
            days_past_due=b.days_past_due,
        )
        for b in rows
    ]
    assert len(bills_due_within(bills, today, 12)) == 12
    assert worst_dpd(bills, today, 12) == max(story) == summarise_bills(rows, today).worst_days_past_due
    assert late_bill_count(bills, today, 12) == sum(1 for dpd in story if dpd)
    assert late_bill_count(bills, today, 24) == sum(1 for dpd in (older + story)[-24:] if dpd)
    assert on_time_ratio(bills, today, 12) is not None
    assert active_months(bills, (), today, 6) == 6


# --------------------------------------------------------------------------------------------
# Statement coverage


@settings(max_examples=300)
@with_issue_days(3)
@given(days, st.integers(1, 12))
def test_statement_coverage_is_the_last_n_full_calendar_months(today: date, n: int) -> None:
    months = full_calendar_months(today, n)
    assert len(months) == n
    assert months[-1].end == today.replace(day=1) - DAY
    for month in months:
        assert month == calendar_month(month.start) and month.start.day == 1
    assert all(a.end + DAY == b.start for a, b in itertools.pairwise(months))
    assert full_calendar_months_range(today, n) == DateRange(months[0].start, months[-1].end)
    assert required_window(today, n) == DateRange(months[0].start, months[-1].end)

    # A statement with a line on the first day of each month and yesterday covers exactly them.
    lines = [month.start for month in months] + [today - DAY]
    transactions = [snapshot.StatementTransaction(date=d, description="x", amount_minor=-100) for d in lines]
    assert covered_months(transactions, today, n, 0) == tuple(month_key(m.start) for m in months)
    assert covered_months(transactions[1:], today, n, 0) == tuple(month_key(m.start) for m in months[1:])


@settings(max_examples=60, deadline=None)
@with_issue_days()
@given(days)
def test_the_demo_statement_covers_the_three_months_on_any_day(today: date) -> None:
    parsed = parse_csv_statement(demo_statement_csv(today))
    assert covers_last_full_months(parsed, 3, today=today)
    assert parsed.transactions[-1].date < today


# --------------------------------------------------------------------------------------------
# Seeded populations


@settings(max_examples=100, deadline=None)
@with_issue_days(1, Population.STEADY)
@given(days, st.integers(1, 500), st.sampled_from(list(Population)))
def test_generated_bills_are_monthly_on_a_fixed_day(today: date, number: int, population: Population) -> None:
    c = generate_customer(7, number, population, today=today)
    opened: date = c.account["opened_on"]
    dues = [b["due_date"] for b in c.bills]
    # Exactly the last len(dues) billing dates before today, on the day the account was opened,
    # 12-24 of them unless the account is younger.
    assert dues == billing_dates(opened.day, today, len(dues))
    assert 1 <= len(dues) <= 24 and all(opened < due for due in dues)
    if len(dues) < 12:
        assert add_months(dues[0], -1) <= opened
    assert summarise_bills(_rows(c.bills), today).bills_due == min(12, len(dues))


def _rows(bills: tuple[dict[str, Any], ...]) -> list[Bill]:
    return [Bill(**b) for b in bills]


@settings(max_examples=200)
@with_issue_days()
@given(days)
def test_the_demo_ledger_has_twelve_bills_in_twelve_months(today: date) -> None:
    for demo in DEMO_CUSTOMERS:
        bills = demo_bills(demo, today)
        assert len(bills) == 12
        assert all(b.due_date.day == demo.billing_day for b in bills)
        assert sum(1 for b in bills if within_last_months(b.due_date, today, 12)) == 12
        assert all(b.paid_at is None or b.paid_at.date() < today for b in bills)
        assert [b.days_past_due for b in bills if b.paid_at is not None] == [
            d for d in demo.history if d >= 0
        ]
