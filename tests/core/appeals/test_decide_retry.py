"""The decide step retried (its first attempt committed, but its result never reached the
workflow: a worker or the Temporal server died) answers as the first attempt did, even after a
second reviewer has claimed the task the first attempt opened. The workflow reads that answer
to choose between "wait for the second review" and "apply the limit": any other answer would
apply a four-eyes limit on one pair of eyes."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import select

from core.appeals import steps
from core.appeals.service import NewAppeal, Transition, apply_transition, create_appeal
from core.auth import Principal, Role
from core.db import session_scope
from core.db.case_tables import ReviewTask, TaskStatus
from core.db.ledger_tables import LimitEvent
from core.db.types import utcnow
from core.policy.loader import load_default_policy
from core.reviews.queue import claim
from core.reviews.rules import Outcome, Stage
from core.status import AppealStatus as S
from tests.factories import make_customer
from tests.staff_directory import add_staff


def _appeal_in_first_review(engine: Engine) -> tuple[str, str]:
    c = make_customer(engine)
    now = utcnow()
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, 500_000))
        for status in (S.AWAITING_DOCUMENTS, S.CHECKING, S.PENDING_REVIEW, S.IN_REVIEW):
            apply_transition(session, Transition(appeal.id, status, now))
        task = ReviewTask(
            id=str(uuid.uuid4()),
            appeal_id=appeal.id,
            customer_id=c.customer_id,
            risk_tier="MEDIUM",
            queue="review",
            status=TaskStatus.CLAIMED,
            required_role="reviewer",
            assignee="r-1",
            due_at=now + timedelta(hours=24),
            claimed_at=now,
            created_at=now,
        )
        session.add(task)
        return appeal.id, task.id


def test_a_retried_four_eyes_approval_still_says_second_review_after_the_second_claim(
    engine: Engine,
) -> None:
    appeal_id, first_task = _appeal_in_first_review(engine)
    notices = steps.Notices(webhook_urls=[], policy=load_default_policy())
    due = utcnow() + timedelta(hours=24)
    second_plan = steps.ReviewTaskPlan(task_id=str(uuid.uuid4()), due_at=due, round=1)
    approval = steps.ReviewerDecision(
        task_id=first_task,
        stage=Stage.FIRST,
        decided_by="r-1",
        outcome=Outcome.APPROVE,
        approved_limit_minor=400_000,
        reasons=[],
        requested_documents=[],
        note="",
        idempotency_key="decision-1",
    )

    def decide() -> steps.Decided:
        with session_scope(engine) as session:
            return steps.decide(
                session,
                appeal_id,
                approval,
                at=utcnow(),
                notice_seq=3,
                four_eyes=steps.FourEyesRule(min_amount_minor=0, risk_tiers=[]),  # every approval
                second_task=second_plan,
                notices=notices,
            )

    first = decide()
    assert first.status is S.PENDING_SECOND_REVIEW and first.second_task_id == second_plan.task_id
    # While the first attempt's result is lost, a senior reviewer claims the second task.
    add_staff(engine, "s-1", Role.SENIOR_REVIEWER)
    with session_scope(engine) as session:
        claim(session, second_plan.task_id, Principal(subject="s-1", role=Role.SENIOR_REVIEWER))

    retried = decide()

    assert retried.status is S.PENDING_SECOND_REVIEW
    assert retried.second_task_id == first.second_task_id
    assert retried.second_task_version is not None
    assert retried.second_task_version > (first.second_task_version or 0)  # the claim's version
    with session_scope(engine, read_only=True) as session:
        second_tasks = session.exec(select(ReviewTask).where(ReviewTask.stage == int(Stage.SECOND))).all()
        assert [(t.id, t.status, t.assignee) for t in second_tasks] == [
            (second_plan.task_id, TaskStatus.CLAIMED, "s-1")
        ]
        assert session.exec(select(LimitEvent).where(LimitEvent.appeal_id == appeal_id)).all() == []
