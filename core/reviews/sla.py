"""Review SLAs: the warning to the assignee and the escalation at breach."""

from __future__ import annotations

from sqlmodel import Session, select

from core.appeals.audit import append_event
from core.db.case_tables import Notification, TaskStatus
from core.db.types import utcnow
from core.reviews.service import get_task

ESCALATION_QUEUE = "escalation"
ESCALATION_PRIORITY_STEP = 10
SUPERVISORS = "supervisors"


def record_sla_event(session: Session, *, appeal_id: str, task_id: str, kind: str) -> None:
    """Idempotent: the staff notice's key is unique, and a task is escalated once."""
    task = get_task(session, task_id)
    if task.status in (TaskStatus.COMPLETED, TaskStatus.CANCELLED):
        return
    now = utcnow()
    key = f"{appeal_id}:sla_{kind}:{task_id}"
    if session.exec(select(Notification.id).where(Notification.idempotency_key == key)).first() is not None:
        return
    if kind == "warning":
        recipient = task.assignee or SUPERVISORS
        subject = "Review due soon"
        body = f"Review task {task.id} for appeal {appeal_id} is due at {task.due_at.isoformat()}."
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
        subject = "Review overdue: escalated"
        body = (
            f"Review task {task.id} for appeal {appeal_id} passed its due time "
            f"{task.due_at.isoformat()} and moved to the escalation queue."
        )
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
    session.add(
        Notification(
            appeal_id=appeal_id,
            customer_id=recipient,
            audience="staff",
            channel="IN_APP",
            event=f"sla_{kind}",
            locale="en",
            idempotency_key=key,
            subject=subject,
            body=body,
            status="SENT",
            created_at=now,
        )
    )
    session.flush()
