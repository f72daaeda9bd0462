"""Rate limits on writes per principal: submissions, uploads and decisions.

A sliding-window counter kept in the database (table `rate_limit_window`), so every API process
shares the same counts: each principal and action has one row per fixed window of
`rate_limit_window`, and a write is taken while

    previous window's count x (the part of the previous window still inside the sliding
    window) + this window's count + 1 <= the limit.

The count is raised by one conditional upsert (`... ON CONFLICT DO UPDATE ... WHERE`), so two
processes taking the last place at once cannot both get it. A refused write is not counted.
Time comes from the caller (the app's injected clock)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Connection, and_, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine

from core.db.case_tables import RateLimitWindow
from core.settings import Settings

_table = RateLimitWindow.__table__  # type: ignore[attr-defined]


class Action(StrEnum):
    SUBMISSION = "submission"
    UPLOAD = "upload"
    DECISION = "decision"


def limit_of(settings: Settings, action: Action) -> int:
    return {
        Action.SUBMISSION: settings.rate_limit_submissions,
        Action.UPLOAD: settings.rate_limit_uploads,
        Action.DECISION: settings.rate_limit_decisions,
    }[action]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    window_seconds: int
    retry_after: int = 0  # seconds until a write would be taken, when refused


def retry_after(previous: int, current: int, limit: int, window: int, elapsed: float) -> int:
    """Whole seconds from now until one more write fits, if nobody writes meanwhile.

    `elapsed`: seconds since the current window started; `previous` and `current`: the counts
    of the previous and the current window."""
    remaining = window - elapsed
    wait: float | None = None
    if current + 1 <= limit and previous > 0:
        # Later in this window, once enough of the previous one has slid out.
        wait = max(0.0, remaining - window * (limit - current - 1) / previous)
    if wait is None:
        # In the next window, where this window's count is the one sliding out.
        later = window * (1 - (limit - 1) / current) if current > 0 else 0.0
        wait = remaining + max(0.0, later)
    return max(1, math.ceil(wait))


def _upsert(
    connection: Connection, principal: str, action: Action, start: int, window: int, allowance: float
) -> bool:
    """One more write in the window starting at `start`, if its count stays within
    `allowance`; False when it would not (another process took the place first)."""
    insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(_table)
        .values(principal=principal, action=action.value, window_start=start, count=1)
        .on_conflict_do_update(
            index_elements=[_table.c.principal, _table.c.action, _table.c.window_start],
            set_={"count": _table.c.count + 1},
            where=_table.c.count + 1 <= allowance,
        )
        .returning(_table.c.count)
    )
    row = connection.execute(statement).first()
    if row is not None and row.count == 1:
        # A new window: the principal's windows before the previous one count no more.
        connection.execute(
            delete(_table).where(
                _table.c.principal == principal,
                _table.c.action == action.value,
                _table.c.window_start < start - window,
            )
        )
    return row is not None


def take(engine: Engine, settings: Settings, principal: str, action: Action, now: datetime) -> Verdict:
    """Counts one write by `principal` if the limit allows it. Run in a worker thread."""
    limit = limit_of(settings, action)
    window = max(1, int(settings.rate_limit_window.total_seconds()))
    if limit <= 0:
        return Verdict(True, limit, window)
    instant = now.timestamp()
    start = int(instant // window) * window
    elapsed = instant - start
    key = and_(_table.c.principal == principal, _table.c.action == action.value)
    with engine.begin() as connection:
        counts: dict[int, int] = dict(
            connection.execute(
                select(_table.c.window_start, _table.c.count).where(
                    key, _table.c.window_start.in_([start - window, start])
                )
            ).all()
        )
        previous, current = counts.get(start - window, 0), counts.get(start, 0)
        allowance = limit - previous * (window - elapsed) / window
        if current + 1 <= allowance:
            if _upsert(connection, principal, action, start, window, allowance):
                return Verdict(True, limit, window)
            # Another process took the last place since the read.
            current = connection.execute(
                select(_table.c.count).where(key, _table.c.window_start == start)
            ).scalar_one()
    return Verdict(False, limit, window, retry_after(previous, current, limit, window, elapsed))
