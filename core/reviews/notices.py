"""Notices to staff (task assigned, SLA warning, SLA breached): in-app rows rendered from
templates/notifications/staff/, in English, once per idempotency key."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from core.db.case_tables import Notification, ReviewTask
from core.notifications.rendering import render_notice

STAFF = "staff"


def record_staff_notice(
    session: Session,
    *,
    appeal_id: str,
    recipient: str,
    event: str,
    key: str,
    context: dict[str, Any],
    at: datetime,
) -> bool:
    """Writes the notice unless one with this key exists; True when written."""
    if session.exec(select(Notification.id).where(Notification.idempotency_key == key)).first() is not None:
        return False
    notice = render_notice(STAFF, event, "en", context)
    session.add(
        Notification(
            appeal_id=appeal_id,
            customer_id=recipient,
            audience=STAFF,
            channel="IN_APP",
            event=event,
            locale="en",
            idempotency_key=key,
            subject=notice.subject,
            body=notice.body,
            status="SENT",
            created_at=at,
        )
    )
    session.flush()
    return True


def record_task_assigned(
    session: Session, task: ReviewTask, *, assignee: str, assigned_by: str, at: datetime
) -> bool:
    """The reviewer who now holds the task hears of it, once per task and assignee."""
    return record_staff_notice(
        session,
        appeal_id=task.appeal_id,
        recipient=assignee,
        event="task_assigned",
        key=f"{task.appeal_id}:task_assigned:{task.id}:{assignee}",
        context={
            "appeal_id": task.appeal_id,
            "task_id": task.id,
            "stage": task.stage,
            "due_at": task.due_at.isoformat(),
            "assigned_by": assigned_by,
        },
        at=at,
    )
