"""Queue actions and the workflow's steps on one appeal at the same moment, on PostgreSQL (SQLite
lets one writer in at a time: no lock order to get wrong there).

A step locks the appeal's row and then changes its review tasks: a withdrawal cancels them. A
claim that locked the task first and the appeal second (to move the appeal into review) could
deadlock with it; PostgreSQL then aborted one of the two, and a reviewer's click answered 500.
Every writer now takes the appeal first (core/appeals/service.py lock_appeal)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.appeals import steps
from core.appeals.audit import append_event, verify_chain
from core.appeals.service import Transition, apply_transition, lock_appeal
from core.auth import Principal, Role
from core.db import session_scope
from core.db.case_tables import Appeal, AppealEvent, ReviewTask, TaskStatus
from core.db.types import utcnow
from core.errors import Conflict
from core.policy.loader import load_default_policy
from core.reviews.queue import claim, claim_next
from core.reviews.service import cancel_open_tasks
from core.reviews.sla import record_sla_event
from core.status import AppealStatus as S
from tests.core.reviews.test_queue import make_task
from tests.eventually import eventually_sync

REVIEWER = Principal(subject="r-1", role=Role.REVIEWER)


@dataclass
class Racer:
    """One queue action in a thread of its own, on a connection whose backend we can watch."""

    action: Callable[[Session], Any]
    pid: int | None = None
    result: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def run(self, engine: Engine) -> None:
        try:
            with session_scope(engine) as session:
                self.pid = session.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
                self.result = self.action(session)
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def waiting_or_done(self, engine: Engine) -> bool:
        if self.done.is_set():
            return True
        if self.pid is None:
            return False
        with engine.connect() as connection:
            state = connection.execute(
                text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid"), {"pid": self.pid}
            ).scalar_one_or_none()
        return state == "Lock"


def _race(
    engine: Engine,
    appeal_id: str,
    action: Callable[[Session], Any],
    step: Callable[[Session], None],
    *,
    step_began: Callable[[Session], None] | None = None,
) -> Racer:
    """The step holds the appeal's lock (and has done `step_began`), the action starts and goes
    as far as it can, then the step does the rest and commits; the action finishes."""
    racer = Racer(action)
    with session_scope(engine) as session:
        lock_appeal(session, appeal_id)
        if step_began is not None:
            step_began(session)
        thread = threading.Thread(target=racer.run, args=(engine,))
        thread.start()
        eventually_sync(lambda: racer.waiting_or_done(engine), what="the queue action to wait or finish")
        step(session)
    thread.join()
    return racer


def _withdraw(appeal_id: str) -> Callable[[Session], None]:
    notices = steps.Notices(webhook_urls=[], policy=load_default_policy())

    def step(session: Session) -> None:
        steps.withdraw(
            session,
            appeal_id,
            at=utcnow(),
            notice_seq=2,
            requested_by="customer",
            reason="changed my mind",
            notices=notices,
        )

    return step


def _pending_review_task(engine: Engine) -> tuple[str, str]:
    ref = make_task(engine)
    with session_scope(engine) as session:
        for status in (S.AWAITING_DOCUMENTS, S.CHECKING, S.PENDING_REVIEW):
            apply_transition(session, Transition(ref.appeal_id, status, utcnow()))
    return ref.appeal_id, ref.id


def _state(engine: Engine, appeal_id: str, task_id: str) -> tuple[S, TaskStatus, list[AppealEvent]]:
    with session_scope(engine, read_only=True) as session:
        appeal = session.get(Appeal, appeal_id)
        task = session.get(ReviewTask, task_id)
        assert appeal is not None and task is not None
        events = list(
            session.exec(
                select(AppealEvent).where(AppealEvent.appeal_id == appeal_id).order_by(col(AppealEvent.seq))
            ).all()
        )
        return S(appeal.status), TaskStatus(task.status), events


def test_a_claim_during_a_withdrawal_is_refused_not_deadlocked(postgresql_engine: Engine) -> None:
    engine = postgresql_engine
    appeal_id, task_id = _pending_review_task(engine)

    racer = _race(engine, appeal_id, lambda session: claim(session, task_id, REVIEWER), _withdraw(appeal_id))

    assert isinstance(racer.error, Conflict), racer.error
    status, task_status, events = _state(engine, appeal_id, task_id)
    assert (status, task_status) == (S.WITHDRAWN, TaskStatus.CANCELLED)
    assert not any(e.kind == "task_claimed" for e in events)
    assert verify_chain(events) is None


def test_claim_next_during_a_withdrawal_does_not_take_that_task(postgresql_engine: Engine) -> None:
    engine = postgresql_engine
    appeal_id, task_id = _pending_review_task(engine)

    racer = _race(engine, appeal_id, lambda session: claim_next(session, REVIEWER), _withdraw(appeal_id))

    assert racer.error is None, racer.error
    assert racer.result is None  # the only task was its appeal's to withdraw
    status, task_status, events = _state(engine, appeal_id, task_id)
    assert (status, task_status) == (S.WITHDRAWN, TaskStatus.CANCELLED)
    assert verify_chain(events) is None


@pytest.mark.parametrize("kind", ["warning", "escalation"])
def test_an_sla_event_during_a_step_waits_for_it(postgresql_engine: Engine, kind: str) -> None:
    """The step has written its event and not yet cancelled the task when the SLA timer fires."""
    engine = postgresql_engine
    appeal_id, task_id = _pending_review_task(engine)

    def step_began(session: Session) -> None:
        append_event(session, appeal_id=appeal_id, at=utcnow(), actor="workflow", kind="step")
        session.flush()

    def step(session: Session) -> None:
        cancel_open_tasks(session, appeal_id)
        session.flush()

    def sla(session: Session) -> None:
        record_sla_event(session, appeal_id=appeal_id, task_id=task_id, kind=kind)

    racer = _race(engine, appeal_id, sla, step, step_began=step_began)

    assert racer.error is None, racer.error
    _, task_status, events = _state(engine, appeal_id, task_id)
    assert task_status == TaskStatus.CANCELLED
    assert events[-1].kind == "step"  # the task was cancelled before the timer's turn came
    assert verify_chain(events) is None
