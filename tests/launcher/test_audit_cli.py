"""`appeals audit verify` on a real SQLite database, clean and tampered with."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import delete, update
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from typer.testing import CliRunner

from core.appeals.service import NewAppeal, Transition, apply_transition, create_appeal
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.case_tables import AppealEvent
from core.settings import get_settings
from core.status import AppealStatus
from launcher.audit_cli import scan_appeals
from launcher.cli import app
from tests.factories import make_customer

runner = CliRunner()


@pytest.fixture
def database(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("APPEALS_DATABASE_URL", str(sqlite_engine.url))
    get_settings.cache_clear()
    yield sqlite_engine
    get_settings.cache_clear()


def _appeal_with_events(engine: Engine) -> str:
    """An appeal with four events: submitted and three status changes."""
    c = make_customer(engine)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, 500_000))
    at = SYSTEM_CLOCK.now()
    for status in (AppealStatus.AWAITING_DOCUMENTS, AppealStatus.CHECKING, AppealStatus.PENDING_REVIEW):
        at += timedelta(seconds=1)
        with session_scope(engine) as session:
            apply_transition(session, Transition(appeal.id, status, at))
    return appeal.id


def _set_seq(engine: Engine, appeal_id: str, old: int, new: int) -> None:
    with session_scope(engine) as session:
        session.execute(
            update(AppealEvent)
            .where(col(AppealEvent.appeal_id) == appeal_id, col(AppealEvent.seq) == old)
            .values(seq=new)
        )


def _verify(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["audit", "verify", *args])
    return result.exit_code, result.output


def test_clean_trails_verify(database: Engine) -> None:
    first, second = _appeal_with_events(database), _appeal_with_events(database)
    assert _verify() == (0, "ok: 2 appeals, 8 events\n")
    assert _verify("--appeal", first) == (0, "ok: 1 appeals, 4 events\n")
    code, output = _verify("--appeal", "no-such-appeal")
    assert code == 2 and "no-such-appeal was not found" in output
    assert second


def test_an_empty_database_verifies(database: Engine) -> None:
    assert _verify() == (0, "ok: 0 appeals, 0 events\n")


def test_a_changed_event_is_named(database: Engine) -> None:
    intact, tampered = _appeal_with_events(database), _appeal_with_events(database)
    with session_scope(database) as session:
        event = session.exec(
            select(AppealEvent).where(AppealEvent.appeal_id == tampered, AppealEvent.seq == 2)
        ).one()
        event.details = {**event.details, "note": "rewritten"}
        session.add(event)
    code, output = _verify()
    assert code == 1
    assert f"appeal {tampered}: event #2: content changed after it was recorded" in output
    assert intact not in output
    assert "broken: 1 of 2 appeals (8 events checked)" in output
    assert _verify("--appeal", intact) == (0, "ok: 1 appeals, 4 events\n")
    assert _verify("--appeal", tampered)[0] == 1


def test_a_changed_status_or_actor_is_named(database: Engine) -> None:
    appeal_id = _appeal_with_events(database)
    with session_scope(database) as session:
        session.execute(
            update(AppealEvent)
            .where(col(AppealEvent.appeal_id) == appeal_id, col(AppealEvent.seq) == 4)
            .values(actor="reviewer:someone-else")
        )
    code, output = _verify()
    assert code == 1 and f"appeal {appeal_id}: event #4: content changed" in output


def test_a_removed_event_is_named_by_the_gap(database: Engine) -> None:
    appeal_id = _appeal_with_events(database)
    with session_scope(database) as session:
        session.execute(
            delete(AppealEvent).where(col(AppealEvent.appeal_id) == appeal_id, col(AppealEvent.seq) == 3)
        )
    code, output = _verify()
    assert code == 1
    assert f"appeal {appeal_id}: event #3: removed: the trail jumps from #2 to #4 (#3 missing)" in output


def test_a_removed_first_event_and_a_wiped_trail_are_named(database: Engine) -> None:
    first, wiped = _appeal_with_events(database), _appeal_with_events(database)
    with session_scope(database) as session:
        session.execute(
            delete(AppealEvent).where(col(AppealEvent.appeal_id) == first, col(AppealEvent.seq) == 1)
        )
        session.execute(delete(AppealEvent).where(col(AppealEvent.appeal_id) == wiped))
    code, output = _verify()
    assert code == 1
    assert f"appeal {first}: event #1: removed: the trail starts at #2 (#1 missing)" in output
    assert f"appeal {wiped}: event #1: removed: the appeal has no events" in output
    assert "broken: 2 of 2 appeals (3 events checked)" in output


def test_a_removed_and_renumbered_event_is_detected(database: Engine) -> None:
    appeal_id = _appeal_with_events(database)
    with session_scope(database) as session:
        session.execute(
            delete(AppealEvent).where(col(AppealEvent.appeal_id) == appeal_id, col(AppealEvent.seq) == 2)
        )
    _set_seq(database, appeal_id, 3, 2)  # close the gap: the numbers look continuous again
    _set_seq(database, appeal_id, 4, 3)
    code, output = _verify()
    assert code == 1
    assert (
        f"appeal {appeal_id}: event #2: does not follow event #1: an event between them was removed" in output
    )


def test_two_swapped_events_are_detected_as_reordered(database: Engine) -> None:
    appeal_id = _appeal_with_events(database)
    # Swap #2 and #3 (through a free number: (appeal_id, seq) is unique).
    _set_seq(database, appeal_id, 2, 99)
    _set_seq(database, appeal_id, 3, 2)
    _set_seq(database, appeal_id, 99, 3)
    code, output = _verify()
    assert code == 1
    assert (
        f"appeal {appeal_id}: event #2: reordered: it was recorded after the event now numbered #3" in output
    )


def test_scan_streams_one_verdict_per_appeal_in_small_batches(database: Engine) -> None:
    ids = sorted(_appeal_with_events(database) for _ in range(3))
    with session_scope(database, read_only=True) as session:
        verdicts = list(scan_appeals(session, batch=3))  # batches cut across appeals
    assert [(v.appeal_id, v.events, v.broken) for v in verdicts] == [(i, 4, None) for i in ids]


def test_removed_newest_events_are_found_through_the_appeal_status(database: Engine) -> None:
    appeal_id = _appeal_with_events(database)
    with session_scope(database) as session:
        session.execute(
            delete(AppealEvent).where(col(AppealEvent.appeal_id) == appeal_id, col(AppealEvent.seq) == 4)
        )
    code, output = _verify()
    assert code == 1
    assert (
        f"appeal {appeal_id}: event #4: removed: the trail ends at #3 and its last status is CHECKING (#3), "
        "but the appeal is PENDING_REVIEW: its newest events are missing"
    ) in output


def test_account_trails_verify_and_a_tampered_one_is_named(database: Engine) -> None:
    from core.db.lender_tables import AccountEvent
    from core.ledger.account_audit import record_account_event

    c = make_customer(database)
    for i in range(2):
        with session_scope(database) as session:
            record_account_event(
                session,
                c.account_id,
                kind="limit_action",
                actor="system",
                details={"i": i},
                at=SYSTEM_CLOCK.now(),
            )
    assert _verify("--account", c.account_id) == (0, "ok: 1 accounts, 2 account events\n")
    assert _verify() == (0, "ok: 0 appeals, 0 events\nok: 1 accounts, 2 account events\n")
    assert _verify("--account", "no-such-account")[0] == 2
    with session_scope(database) as session:
        session.execute(
            update(AccountEvent)
            .where(col(AccountEvent.account_id) == c.account_id, col(AccountEvent.seq) == 1)
            .values(actor="someone else")
        )
    code, output = _verify("--account", c.account_id)
    assert code == 1
    assert f"account {c.account_id}: event #1: content changed after it was recorded" in output
    assert _verify()[0] == 1
