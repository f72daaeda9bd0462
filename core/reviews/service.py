"""Review tasks and reviewer decisions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.appeals.audit import append_event
from core.db.case_tables import (
    Appeal,
    Decision,
    DecisionOutcome,
    IdempotencyRecord,
    ReviewTask,
    TaskStatus,
)
from core.db.engine import session_scope
from core.db.types import utcnow
from core.errors import NotFound
from core.idempotency import check_same_request, fingerprint
from core.reviews.notices import record_task_assigned
from core.reviews.rules import Outcome, Stage, outcome_status
from core.status import AppealStatus

# The queues a task is in: first reviews, second reviews (four eyes), and the escalation queue
# a task moves to when its SLA is breached (core/reviews/sla.py).
REVIEW_QUEUE = "review"
SECOND_REVIEW_QUEUE = "second-review"


@dataclass(frozen=True)
class NewTask:
    task_id: str
    appeal_id: str
    round: int
    stage: int
    due_at: datetime
    required_role: str = "reviewer"
    excluded_reviewer: str | None = None
    preferred_assignee: str | None = None
    risk_tier: str | None = None


def reviewer_is_active(session: Session, reviewer: str, now: datetime, window: timedelta) -> bool:
    """Someone who claimed a task recently is still at work and gets the case back."""
    recent = session.exec(
        select(ReviewTask.id)
        .where(ReviewTask.assignee == reviewer, col(ReviewTask.claimed_at) >= now - window)
        .limit(1)
    ).first()
    return recent is not None


def create_task(
    session: Session, new: NewTask, *, active_window: timedelta = timedelta(hours=8)
) -> ReviewTask:
    """Idempotent per (appeal, round, stage): a retried activity finds the task it made."""
    existing = session.exec(
        select(ReviewTask).where(
            ReviewTask.appeal_id == new.appeal_id,
            ReviewTask.round == new.round,
            ReviewTask.stage == new.stage,
        )
    ).first()
    if existing is not None:
        return existing
    appeal = session.get(Appeal, new.appeal_id)
    if appeal is None:
        raise NotFound(f"Appeal {new.appeal_id} was not found.", code="appeal_not_found")
    now = utcnow()
    task = ReviewTask(
        id=new.task_id,
        appeal_id=new.appeal_id,
        customer_id=appeal.customer_id,
        round=new.round,
        stage=new.stage,
        risk_tier=new.risk_tier,
        required_role=new.required_role,
        queue=REVIEW_QUEUE if new.stage == 1 else SECOND_REVIEW_QUEUE,
        excluded_reviewer=new.excluded_reviewer,
        due_at=new.due_at,
        created_at=now,
    )
    if new.preferred_assignee and reviewer_is_active(session, new.preferred_assignee, now, active_window):
        task.status, task.assignee, task.claimed_at = TaskStatus.CLAIMED, new.preferred_assignee, now
    session.add(task)
    session.flush()
    append_event(
        session,
        appeal_id=new.appeal_id,
        at=now,
        actor="workflow",
        kind="task_created",
        details={
            "task_id": task.id,
            "stage": task.stage,
            "round": task.round,
            "queue": task.queue,
            "assignee": task.assignee,
            "due_at": task.due_at.isoformat(),
        },
    )
    if task.assignee:  # handed straight back to the reviewer who asked for more information
        record_task_assigned(session, task, assignee=task.assignee, assigned_by="workflow", at=now)
    return task


def get_task(session: Session, task_id: str) -> ReviewTask:
    task = session.get(ReviewTask, task_id)
    if task is None:
        raise NotFound(f"Review task {task_id} was not found.", code="task_not_found")
    return task


@dataclass(frozen=True)
class NewDecision:
    appeal_id: str
    task_id: str | None
    decided_by: str
    outcome: DecisionOutcome
    approved_limit_minor: int | None
    reasons: list[str]
    note: str
    idempotency_key: str
    stage: int = 1


def record_decision(session: Session, new: NewDecision) -> Decision:
    """Writes the decision and completes its task; a retry finds the first write."""
    existing = session.exec(
        select(Decision).where(
            Decision.appeal_id == new.appeal_id, Decision.idempotency_key == new.idempotency_key
        )
    ).first()
    if existing is not None:
        return existing
    now = utcnow()
    decision = Decision(
        appeal_id=new.appeal_id,
        task_id=new.task_id,
        stage=new.stage,
        decided_by=new.decided_by,
        outcome=new.outcome,
        approved_limit_minor=new.approved_limit_minor,
        reasons=new.reasons,
        note=new.note,
        idempotency_key=new.idempotency_key,
        decided_at=now,
    )
    session.add(decision)
    if new.task_id is not None:
        task = get_task(session, new.task_id)
        task.status = TaskStatus.COMPLETED
        task.completed_at = now
        task.version += 1
        session.add(task)
    session.flush()
    return decision


def answered_decision(
    session: Session, appeal_id: str, idempotency_key: str
) -> tuple[Decision, AppealStatus] | None:
    """A decision already recorded under this key, and the status its answer gave: a repeated
    request is answered as the first was, whatever happened to the appeal since."""
    decision = session.exec(
        select(Decision).where(Decision.appeal_id == appeal_id, Decision.idempotency_key == idempotency_key)
    ).first()
    if decision is None:
        return None
    outcome = Outcome(decision.outcome)
    if outcome is Outcome.APPROVE and decision.stage == Stage.FIRST and decision.task_id is not None:
        task = session.get(ReviewTask, decision.task_id)
        second = session.exec(
            select(ReviewTask.id).where(
                ReviewTask.appeal_id == appeal_id,
                ReviewTask.stage == Stage.SECOND,
                ReviewTask.round == (task.round if task else 0),
            )
        ).first()
        if second is not None:
            return decision, AppealStatus.PENDING_SECOND_REVIEW
    appeal = session.get(Appeal, appeal_id)
    requested = appeal.requested_limit_minor if appeal else 0
    return decision, outcome_status(outcome, decision.approved_limit_minor, requested)


# -- Idempotency-Keys of decisions (core/idempotency.py) ---------------------------------------
#
# The API sends a decision to the workflow as an Update whose id is the request's key, and
# Temporal answers a repeated Update id with the first one's result whatever it carries; the
# decision row is written later, by the workflow's step. So the API takes the key, with the
# request's fingerprint, before it sends the Update (table idempotency_record): a request that
# reuses the key for something else is refused, also while the first is still in flight.


def decision_fingerprint(actor: str, task_id: str, body: Mapping[str, Any]) -> str:
    """Method, path, the decider, and the decision as parsed (outcome, limit, reasons, ...)."""
    return fingerprint("POST", f"/review-tasks/{task_id}/decision", actor, body)


def _key_scope(appeal_id: str) -> str:
    return f"decision:{appeal_id}"


def check_decision_key(session: Session, appeal_id: str, key: str, request_fingerprint: str) -> None:
    """422 `idempotency_key_reused` if another request took this key on this appeal."""
    record = session.get(IdempotencyRecord, (_key_scope(appeal_id), key))
    check_same_request(record.fingerprint if record else None, request_fingerprint)


def take_decision_key(engine: Engine, appeal_id: str, key: str, request_fingerprint: str) -> None:
    """Takes the key for this request (a concurrent one may have taken it first: then it must
    be the same request). Run in a worker thread."""
    table = IdempotencyRecord.__table__  # type: ignore[attr-defined]
    with session_scope(engine) as session:
        insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        values = {"scope": _key_scope(appeal_id), "key": key, "fingerprint": request_fingerprint}
        session.execute(
            insert(table)
            .values(**values, created_at=utcnow())
            .on_conflict_do_nothing(index_elements=[table.c.scope, table.c.key])
        )
        check_decision_key(session, appeal_id, key, request_fingerprint)


def give_back_decision_key(engine: Engine, appeal_id: str, key: str, request_fingerprint: str) -> None:
    """The workflow refused the decision (nothing was recorded): the key is free again, so a
    corrected request may use it. Run in a worker thread."""
    with session_scope(engine) as session:
        if session.exec(
            select(Decision.id).where(Decision.appeal_id == appeal_id, Decision.idempotency_key == key)
        ).first():
            return
        record = session.get(IdempotencyRecord, (_key_scope(appeal_id), key))
        if record is not None and record.fingerprint == request_fingerprint:
            session.delete(record)


def latest_decision(session: Session, appeal_id: str) -> Decision | None:
    return session.exec(
        select(Decision).where(Decision.appeal_id == appeal_id).order_by(col(Decision.id).desc())
    ).first()


def cancel_open_tasks(session: Session, appeal_id: str) -> int:
    tasks = session.exec(
        select(ReviewTask).where(
            ReviewTask.appeal_id == appeal_id,
            col(ReviewTask.status).in_([TaskStatus.OPEN, TaskStatus.CLAIMED]),
        )
    ).all()
    for task in tasks:
        task.status = TaskStatus.CANCELLED
        task.version += 1
        task.completed_at = utcnow()
        session.add(task)
    return len(tasks)
