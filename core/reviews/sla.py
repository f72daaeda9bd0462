"""Review SLAs: the warning to the assignee and the escalation at breach."""

from __future__ import annotations

from sqlmodel import Session, select

from core.appeals.audit import append_event
from core.appeals.service import lock_appeal
from core.db.case_tables import Notification, TaskStatus
from core.db.types import utcnow
from core.reviews.notices import record_staff_notice
from core.reviews.service import get_task

ESCALATION_QUEUE = "escalation"
ESCALATION_PRIORITY_STEP = 10
SUPERVISORS = "supervisors"


def record_sla_event(session: Session, *, appeal_id: str, task_id: str, kind: str) -> None:
    """Idempotent: the staff notice's key is unique, and a task is escalated once. The appeal
    is locked first, as its other writers do (core/appeals/service.py lock_appeal)."""
    lock_appeal(session, appeal_id)
    task = get_task(session, task_id)
    if task.status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED):
        return
    now = utcnow()
    key = f"{appeal_id}:sla_{kind}:{task_id}"
    if session.exec(select(Notification.id).where(Notification.idempotency_key == key)).first() is not None:
        return
    if kind == "warning":
        recipient = task.assignee or SUPERVISORS
        append_event(
            session,
            appeal_id=appeal_id,
            at=now,
            actor="workflow",
            kind="sla_warning",
            details={"task_id": task.id, "assignee": task.assignee, "due_at": task.due_at.isoformat()},
        )
    else:
        before = {"priority": task.priority, "queue": task.queue}
        task.priority += ESCALATION_PRIORITY_STEP
        task.queue = ESCALATION_QUEUE
        task.escalated = True
        task.version += 1
        session.add(task)
        recipient = SUPERVISORS
        append_event(
            session,
            appeal_id=appeal_id,
            at=now,
            actor="workflow",
            kind="task_escalated",
            details={
                "task_id": task.id,
                "before": before,
                "after": {"priority": task.priority, "queue": task.queue},
            },
        )
    record_staff_notice(
        session,
        appeal_id=appeal_id,
        recipient=recipient,
        event=f"sla_{kind}",
        key=key,
        context={
            "appeal_id": appeal_id,
            "task_id": task.id,
            "assignee": task.assignee,
            "due_at": task.due_at.isoformat(),
            "queue": task.queue,
        },
        at=now,
    )
