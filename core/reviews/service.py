"""Review tasks and reviewer decisions."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, and_, col, or_, select

from core.db.case_tables import Decision, DecisionOutcome, ReviewTask, TaskStatus
from core.db.types import utcnow
from core.errors import InvalidInput, NotFound


def create_task(
    session: Session, *, task_id: str, appeal_id: str, round_no: int, due_at: datetime
) -> ReviewTask:
    """Idempotent per (appeal, round): a retried activity finds the task it made."""
    existing = session.exec(
        select(ReviewTask).where(ReviewTask.appeal_id == appeal_id, ReviewTask.round == round_no)
    ).first()
    if existing is not None:
        return existing
    task = ReviewTask(id=task_id, appeal_id=appeal_id, round=round_no, due_at=due_at)
    session.add(task)
    session.flush()
    return task


def get_task(session: Session, task_id: str) -> ReviewTask:
    task = session.get(ReviewTask, task_id)
    if task is None:
        raise NotFound(f"Review task {task_id} was not found.", code="task_not_found")
    return task


def _encode_cursor(task: ReviewTask) -> str:
    raw = json.dumps([task.due_at.isoformat(), task.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        due_at, task_id = json.loads(raw)
        return datetime.fromisoformat(due_at), str(task_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("The cursor is not valid.", code="invalid_cursor") from exc


def list_tasks(
    session: Session, *, status: TaskStatus | None, cursor: str | None, limit: int
) -> tuple[list[ReviewTask], str | None]:
    """Earliest due first, keyset-paginated on (due_at, id)."""
    query = select(ReviewTask)
    if status is not None:
        query = query.where(ReviewTask.status == status)
    if cursor:
        due_at, task_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                col(ReviewTask.due_at) > due_at,
                and_(col(ReviewTask.due_at) == due_at, col(ReviewTask.id) > task_id),
            )
        )
    query = query.order_by(col(ReviewTask.due_at), col(ReviewTask.id)).limit(limit + 1)
    rows = list(session.exec(query).all())
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


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
