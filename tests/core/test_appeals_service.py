"""The case store on SQLite and PostgreSQL: submission rules, projection, pagination."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.appeals.audit import append_event, verify_chain
from core.appeals.service import (
    NewAppeal,
    Transition,
    apply_transition,
    create_appeal,
    get_appeal,
    list_appeals,
)
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.case_tables import Appeal, AppealEvent
from core.errors import Conflict, InvalidInput, NotFound
from core.status import AppealStatus
from tests.eventually import eventually_sync
from tests.factories import make_customer


def _submit(
    engine: Engine, customer_id: str, account_id: str, limit: int = 500_000, key: str | None = None
) -> Appeal:
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(customer_id, account_id, limit, idempotency_key=key))
        return appeal


def test_one_open_appeal_per_account(engine: Engine) -> None:
    c = make_customer(engine)
    first = _submit(engine, c.customer_id, c.account_id)
    with pytest.raises(Conflict) as info:
        _submit(engine, c.customer_id, c.account_id)
    assert info.value.extra["open_appeal_id"] == first.id
    # Closing the first frees the account for a new appeal.
    with session_scope(engine) as session:
        apply_transition(session, Transition(first.id, AppealStatus.WITHDRAWN, SYSTEM_CLOCK.now()))
    assert _submit(engine, c.customer_id, c.account_id).id != first.id


def test_concurrent_submissions_create_exactly_one(engine: Engine) -> None:
    c = make_customer(engine)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        try:
            results.append(_submit(engine, c.customer_id, c.account_id).id)
        except Conflict:
            results.append("conflict")
        except Exception as exc:  # an IntegrityError that escaped would be a bug
            results.append(f"error:{type(exc).__name__}")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([r for r in results if r != "conflict"]) == 1, results
    with session_scope(engine) as session:
        assert len(session.exec(select(Appeal).where(Appeal.account_id == c.account_id)).all()) == 1


@pytest.mark.parametrize("round_", range(5))
def test_concurrent_submissions_with_one_key_all_get_the_same_appeal(engine: Engine, round_: int) -> None:
    """A double click: whichever request commits first, every other one with the same key is
    answered with that appeal, never with a conflict about it."""
    c = make_customer(engine)
    results: list[str] = []
    barrier = threading.Barrier(8)

    def submit() -> None:
        barrier.wait()
        try:
            results.append(_submit(engine, c.customer_id, c.account_id, key=f"click-{round_}").id)
        except Exception as exc:
            results.append(f"error:{type(exc).__name__}:{getattr(exc, 'code', '')}")

    threads = [threading.Thread(target=submit) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8 and len(set(results)) == 1 and not results[0].startswith("error"), results


def test_idempotency_key_returns_the_first_appeal(engine: Engine) -> None:
    c = make_customer(engine)
    with session_scope(engine) as session:
        first, created = create_appeal(
            session, NewAppeal(c.customer_id, c.account_id, 500_000, idempotency_key="k1")
        )
    with session_scope(engine) as session:
        again, created_again = create_appeal(
            session, NewAppeal(c.customer_id, c.account_id, 500_000, idempotency_key="k1")
        )
    assert created and not created_again and again.id == first.id


def test_submission_rules(engine: Engine) -> None:
    c = make_customer(engine, original_limit_minor=300_000)
    other = make_customer(engine)
    with pytest.raises(InvalidInput):
        _submit(engine, c.customer_id, c.account_id, limit=300_001)
    with pytest.raises(NotFound):
        _submit(engine, c.customer_id, other.account_id)  # someone else's account
    appeal = _submit(engine, c.customer_id, c.account_id, limit=300_000)
    with session_scope(engine) as session, pytest.raises(NotFound):
        get_appeal(session, appeal.id, customer_id=other.customer_id)


def test_transitions_are_checked_idempotent_and_audited(engine: Engine) -> None:
    c = make_customer(engine)
    appeal = _submit(engine, c.customer_id, c.account_id)
    now = SYSTEM_CLOCK.now()
    with session_scope(engine) as session:
        assert apply_transition(session, Transition(appeal.id, AppealStatus.AWAITING_DOCUMENTS, now))
    with session_scope(engine) as session:  # a retried activity
        assert not apply_transition(session, Transition(appeal.id, AppealStatus.AWAITING_DOCUMENTS, now))
    with session_scope(engine) as session, pytest.raises(Conflict):
        apply_transition(session, Transition(appeal.id, AppealStatus.APPROVED, now))
    with session_scope(engine) as session:
        stored = session.get(Appeal, appeal.id)
        assert stored is not None and stored.version == 2 and stored.status == AppealStatus.AWAITING_DOCUMENTS
        events = list(
            session.exec(
                select(AppealEvent).where(AppealEvent.appeal_id == appeal.id).order_by(col(AppealEvent.seq))
            ).all()
        )
    assert [e.to_status for e in events] == [
        AppealStatus.SUBMITTED,
        AppealStatus.AWAITING_DOCUMENTS,
    ]
    assert verify_chain(events) is None


def test_audit_chain_detects_tampering(engine: Engine) -> None:
    c = make_customer(engine)
    appeal = _submit(engine, c.customer_id, c.account_id)
    at = SYSTEM_CLOCK.now()
    for status in (
        AppealStatus.AWAITING_DOCUMENTS,
        AppealStatus.CHECKING,
        AppealStatus.PENDING_REVIEW,
    ):
        at += timedelta(seconds=1)
        with session_scope(engine) as session:
            apply_transition(session, Transition(appeal.id, status, at))
    with session_scope(engine) as session:
        events = list(
            session.exec(
                select(AppealEvent).where(AppealEvent.appeal_id == appeal.id).order_by(col(AppealEvent.seq))
            ).all()
        )
    assert verify_chain(events) is None
    changed = [e.model_copy() for e in events]
    changed[2].actor = "someone-else"
    assert verify_chain(changed).seq == 3  # type: ignore[union-attr]
    removed = events[:1] + events[2:]
    assert verify_chain(removed) is not None
    reordered = [events[0], events[2], events[1], events[3]]
    assert verify_chain(reordered) is not None


def test_list_is_keyset_paginated_newest_first(engine: Engine) -> None:
    c = make_customer(engine)
    ids = []
    for _ in range(5):
        appeal = _submit(engine, c.customer_id, c.account_id)
        ids.append(appeal.id)
        with session_scope(engine) as session:
            apply_transition(session, Transition(appeal.id, AppealStatus.WITHDRAWN, SYSTEM_CLOCK.now()))
    seen: list[str] = []
    cursor = None
    while True:
        with session_scope(engine, read_only=True) as session:
            page, cursor = list_appeals(
                session, customer_id=c.customer_id, status=None, cursor=cursor, limit=2
            )
        seen += [a.id for a in page]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    with session_scope(engine, read_only=True) as session:
        only, _ = list_appeals(
            session, customer_id=c.customer_id, status=AppealStatus.SUBMITTED, cursor=None, limit=10
        )
    assert only == []
    with session_scope(engine, read_only=True) as session, pytest.raises(InvalidInput):
        list_appeals(session, customer_id=c.customer_id, status=None, cursor="%%%garbage", limit=2)


def test_two_transactions_appending_to_one_trail_at_once_both_land_in_order(
    postgresql_engine: Engine,
) -> None:
    """A writer that appends to an appeal's trail without the appeal's row lock (the queue and
    the SLA timer took none before they learned to) can, under READ COMMITTED, read the same
    last event as a step still in flight. Its event then waits on the step's uncommitted one
    and goes in after it, instead of failing on the (appeal, seq) key. (SQLite lets one writer
    in at a time: no race there.)"""
    engine = postgresql_engine
    c = make_customer(engine)
    appeal = _submit(engine, c.customer_id, c.account_id)
    now = SYSTEM_CLOCK.now()
    errors: list[BaseException] = []

    def claim_appends() -> None:
        try:
            with session_scope(engine) as session:
                append_event(session, appeal_id=appeal.id, at=now, actor="reviewer:r-1", kind="task_claimed")
        except BaseException as exc:
            errors.append(exc)

    with session_scope(engine) as step:
        append_event(step, appeal_id=appeal.id, at=now, actor="workflow", kind="step")
        step.flush()  # the step's event is in, uncommitted
        claimer = threading.Thread(target=claim_appends)
        claimer.start()
        eventually_sync(
            lambda: _waiting_on_a_lock(engine), what="the claim's insert to wait on the step's event"
        )
    claimer.join()
    assert errors == []
    with session_scope(engine, read_only=True) as session:
        events = list(
            session.exec(
                select(AppealEvent).where(AppealEvent.appeal_id == appeal.id).order_by(col(AppealEvent.seq))
            ).all()
        )
    assert [(e.seq, e.kind) for e in events] == [(1, "submitted"), (2, "step"), (3, "task_claimed")]
    assert verify_chain(events) is None


def _waiting_on_a_lock(engine: Engine) -> bool:
    with engine.connect() as connection:
        waiting = connection.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        ).scalar_one()
    return bool(waiting)
