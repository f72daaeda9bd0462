"""Hypothesis strategies for "today": any day, mixed with the days that break month arithmetic."""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import date
from typing import Any, TypeVar

from hypothesis import example
from hypothesis import strategies as st

F = TypeVar("F", bound=Callable[..., Any])

YEARS = st.integers(2000, 2099)  # the years a bank statement may carry
MONTHS = st.integers(1, 12)
LEAP_YEARS = [y for y in range(2000, 2100) if calendar.isleap(y)]


def _last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def _late_in_month(year: int, month: int, day: int) -> date:
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


# Any day, mixed with month ends, the 28th-31st, first days, 28 and 29 February, 31 December
# and 1 January.
days = st.one_of(
    st.dates(date(2000, 1, 1), date(2099, 12, 31)),
    st.builds(_last_day, YEARS, MONTHS),
    st.builds(_late_in_month, YEARS, MONTHS, st.integers(28, 31)),
    st.builds(date, YEARS, MONTHS, st.just(1)),
    st.builds(date, st.sampled_from(LEAP_YEARS), st.just(2), st.just(29)),
    st.builds(date, YEARS, st.just(2), st.just(28)),
    st.builds(date, YEARS, st.just(12), st.just(31)),
    st.builds(date, YEARS, st.just(1), st.just(1)),
)
# Lenders restrict the billing day to 1-28 (core.months.MAX_BILLING_DAY).
billing_days = st.integers(1, 28)

# The day issue 9 was filed on and the faked clocks the suite is checked under.
ISSUE_DAYS = (date(2026, 11, 30), date(2027, 1, 31), date(2028, 2, 29), date(2026, 12, 31))


def with_issue_days(*rest: object) -> Callable[[F], F]:
    """An @example for each of ISSUE_DAYS as the first argument (`rest` the other arguments)."""

    def wrap(test: F) -> F:
        for day in ISSUE_DAYS:
            test = example(day, *rest)(test)
        return test

    return wrap
