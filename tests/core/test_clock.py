"""The one clock: tz-aware UTC readings, a fixed clock that moves only when told."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from core.clock import SYSTEM_CLOCK, Clock, FixedClock


def test_the_system_clock_reads_utc() -> None:
    now = SYSTEM_CLOCK.now()
    assert now.tzinfo is UTC and SYSTEM_CLOCK.today() in (now.date(), now.date() + timedelta(days=1))
    assert isinstance(SYSTEM_CLOCK, Clock)


def test_a_fixed_clock_stands_still_until_moved() -> None:
    clock = FixedClock(datetime(2028, 2, 28, 23, 30, tzinfo=timezone(timedelta(hours=8))))
    assert clock.now() == datetime(2028, 2, 28, 15, 30, tzinfo=UTC) and clock.now().tzinfo is UTC
    assert clock.now() == clock.now() and clock.today() == date(2028, 2, 28)
    clock.advance(timedelta(hours=9))
    assert clock.today() == date(2028, 2, 29)
    clock.set(date(2026, 12, 31))
    assert clock.today() == date(2026, 12, 31) and isinstance(clock, Clock)


def test_a_clock_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        FixedClock(datetime(2026, 11, 30, 10))
