"""The one place that reads the wall clock.

Business functions take `today` or `now` as parameters; components (the worker's activities,
the API app, the command line) are given a `Clock` and pass its readings down. Production uses
`SYSTEM_CLOCK`; tests pass a `FixedClock` (or a fixed date) so that what they assert does not
depend on the day the suite runs.

`today()` is the date in UTC, the same day the rest of the system stamps its UTC times with.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Final, Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    def today(self) -> date:
        """The current date in UTC."""
        ...


class SystemClock:
    """The machine's clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def today(self) -> date:
        return self.now().date()

    def __repr__(self) -> str:
        return "SystemClock()"


class FixedClock:
    """A clock that stands still until it is set or advanced (for tests and replays)."""

    def __init__(self, now: datetime | date) -> None:
        self._now = _instant(now)

    def now(self) -> datetime:
        return self._now

    def today(self) -> date:
        return self._now.date()

    def set(self, now: datetime | date) -> None:
        self._now = _instant(now)

    def advance(self, delta: timedelta) -> None:
        self._now += delta

    def __repr__(self) -> str:
        return f"FixedClock({self._now.isoformat()})"


def _instant(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a clock's time must be timezone-aware")
        return value.astimezone(UTC)
    return datetime(value.year, value.month, value.day, 12, tzinfo=UTC)  # midday: no edge


SYSTEM_CLOCK: Final[Clock] = SystemClock()

__all__ = ["SYSTEM_CLOCK", "Clock", "FixedClock", "SystemClock"]
