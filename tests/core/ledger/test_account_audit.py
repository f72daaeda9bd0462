"""An account's hash-chained trail: appended under the account's lock, verified, tampering found."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col

from core.db import session_scope
from core.db.lender_tables import AccountEvent
from core.errors import NotFound
from core.ledger.account_audit import (
    account_events,
    account_trail_break,
    record_account_event,
    scan_accounts,
    verify_account_trail,
)
from tests.factories import make_customer

AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def _trail(engine: Engine, account_id: str, n: int) -> None:
    for i in range(n):
        with session_scope(engine) as session:
            record_account_event(
                session,
                account_id,
                kind="limit_action",
                actor="system:limit-action",
                details={"n": i, "on": AT.date(), "ids": (1, 2)},
                at=AT + timedelta(seconds=i),
            )


def test_a_trail_is_chained_and_verifies(engine: Engine) -> None:
    c = make_customer(engine)
    _trail(engine, c.account_id, 3)
    with session_scope(engine, read_only=True) as session:
        events = account_events(session, c.account_id)
        assert [e.seq for e in events] == [1, 2, 3]
        assert events[1].prev_hash == events[0].hash and events[2].prev_hash == events[1].hash
        assert events[0].details == {"n": 0, "on": "2026-11-30", "ids": [1, 2]}
        assert verify_account_trail(session, c.account_id) is None
        assert [(v.account_id, v.events, v.broken) for v in scan_accounts(session)] == [
            (c.account_id, 3, None)
        ]


def test_a_tampered_event_is_found(engine: Engine) -> None:
    c = make_customer(engine)
    _trail(engine, c.account_id, 3)
    with session_scope(engine) as session:
        session.execute(
            update(AccountEvent)
            .where(col(AccountEvent.account_id) == c.account_id, col(AccountEvent.seq) == 2)
            .values(details={"n": 99})
        )
    with session_scope(engine, read_only=True) as session:
        assert verify_account_trail(session, c.account_id) == 2
        broken = account_trail_break(session, c.account_id)
        assert broken is not None and "content changed" in broken.problem


def test_unknown_account_and_naive_time_are_refused(engine: Engine) -> None:
    with session_scope(engine) as session, pytest.raises(NotFound):
        record_account_event(session, "nope", kind="k", actor="a", details={}, at=AT)
    c = make_customer(engine)
    with session_scope(engine) as session, pytest.raises(ValueError, match="timezone"):
        record_account_event(
            session, c.account_id, kind="k", actor="a", details={}, at=AT.replace(tzinfo=None)
        )


def test_concurrent_writers_never_share_a_sequence_number(engine: Engine) -> None:
    c = make_customer(engine)
    errors: list[BaseException] = []

    def write() -> None:
        try:
            _trail(engine, c.account_id, 5)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with session_scope(engine, read_only=True) as session:
        assert [e.seq for e in account_events(session, c.account_id)] == list(range(1, 21))
        assert verify_account_trail(session, c.account_id) is None
