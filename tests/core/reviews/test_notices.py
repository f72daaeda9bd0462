"""Staff notices: rendered from templates/notifications/staff/, one per task and assignee."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.auth import Role
from core.db import session_scope
from core.db.case_tables import Notification
from core.db.types import utcnow
from core.notifications.rendering import render_notice
from core.reviews.queue import claim, claim_next, reassign, release
from core.reviews.sla import record_sla_event
from tests.core.reviews.test_queue import REVIEWER, SUPERVISOR, make_task
from tests.staff_directory import add_staff

DUE = "2030-05-01T12:00:00+00:00"


@pytest.mark.parametrize(
    ("event", "context", "subject", "expected"),
    [
        (
            "task_assigned",
            {"appeal_id": "ap-1", "task_id": "t-1", "stage": 2, "due_at": DUE, "assigned_by": "sup:sup-1"},
            "Review task assigned: appeal ap-1",
            "Review task t-1 (stage 2) for appeal ap-1 is assigned to you by sup:sup-1. It is due at " + DUE,
        ),
        (
            "sla_warning",
            {"appeal_id": "ap-1", "task_id": "t-1", "due_at": DUE, "assignee": None, "queue": "review"},
            "Review due soon",
            "Nobody has claimed it yet.",
        ),
        (
            "sla_breach",
            {"appeal_id": "ap-1", "task_id": "t-1", "due_at": DUE, "assignee": "r-1", "queue": "escalation"},
            "Review overdue: escalated",
            "moved to the escalation queue. It was held by r-1.",
        ),
    ],
)
def test_staff_notices_render(event: str, context: dict[str, object], subject: str, expected: str) -> None:
    notice = render_notice("staff", event, "en", context)
    assert notice.subject == subject
    assert expected in notice.body and "\n" not in notice.body


def _staff_notices(engine: Engine, appeal_id: str) -> list[Notification]:
    with session_scope(engine, read_only=True) as session:
        return list(
            session.exec(
                select(Notification).where(
                    Notification.appeal_id == appeal_id, Notification.audience == "staff"
                )
            ).all()
        )


def test_a_claim_records_one_task_assigned_notice(engine: Engine) -> None:
    ref = make_task(engine)
    add_staff(engine, "r-2", Role.REVIEWER)
    with session_scope(engine) as session:
        claim(session, ref.id, REVIEWER)
    [notice] = _staff_notices(engine, ref.appeal_id)
    assert (notice.event, notice.customer_id, notice.locale) == ("task_assigned", "r-1", "en")
    assert notice.subject == f"Review task assigned: appeal {ref.appeal_id}" and ref.id in notice.body
    # Released and claimed again by the same reviewer: still one notice; a reassignment adds one.
    with session_scope(engine) as session:
        release(session, ref.id, REVIEWER)
    with session_scope(engine) as session:
        assert claim_next(session, REVIEWER) is not None
    with session_scope(engine) as session:
        reassign(session, ref.id, SUPERVISOR, to="r-2")
    notices = _staff_notices(engine, ref.appeal_id)
    assert sorted((n.event, n.customer_id) for n in notices) == [
        ("task_assigned", "r-1"),
        ("task_assigned", "r-2"),
    ]


def test_sla_notices_are_rendered_from_the_templates(sqlite_engine: Engine) -> None:
    ref = make_task(sqlite_engine, due_at=utcnow() + timedelta(hours=1))
    with session_scope(sqlite_engine) as session:
        record_sla_event(session, appeal_id=ref.appeal_id, task_id=ref.id, kind="warning")
        record_sla_event(session, appeal_id=ref.appeal_id, task_id=ref.id, kind="breach")
        record_sla_event(session, appeal_id=ref.appeal_id, task_id=ref.id, kind="breach")
    notices = {n.event: n for n in _staff_notices(sqlite_engine, ref.appeal_id)}
    assert sorted(notices) == ["sla_breach", "sla_warning"]
    assert notices["sla_warning"].subject == "Review due soon"
    assert notices["sla_warning"].customer_id == "supervisors"
    assert "Nobody has claimed it yet." in notices["sla_warning"].body
    assert notices["sla_breach"].subject == "Review overdue: escalated"
    assert "moved to the escalation queue" in notices["sla_breach"].body
