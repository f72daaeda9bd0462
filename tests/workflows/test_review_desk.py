"""The review desk follows claims on the task under review and on the one a step is opening."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from temporalio.exceptions import ApplicationError

from core.reviews.rules import Stage
from workflows.messages import ReviewClaim, ReviewDecision, ReviewOutcome
from workflows.review import OpenTask, ReviewDesk

AT = datetime(2027, 2, 28, 23, 0, tzinfo=UTC)


def _task(task_id: str = "t-1") -> OpenTask:
    return OpenTask(task_id=task_id, stage=Stage.FIRST, created_at=AT, due_at=AT + timedelta(hours=24))


def _claim(reviewer: str | None, version: int, task_id: str = "t-1") -> ReviewClaim:
    return ReviewClaim(task_id=task_id, reviewer=reviewer, actor=reviewer or "r-0", version=version)


def test_a_claim_that_beats_the_opening_step_is_kept_for_the_task_it_opens() -> None:
    # The step has written the task row; a reviewer claims it and the message arrives before
    # the workflow has the step's result: there is no task under review yet.
    desk = ReviewDesk()
    desk.plan(_task())
    followed = desk.follow(_claim("r-7", version=2))
    assert followed is not None and followed is not desk.task and desk.task is None
    opened = desk.open("t-1", AT + timedelta(hours=24), assignee=None, version=1)  # the step's older view
    assert opened.claimant == "r-7" and desk.task is opened


def test_an_unversioned_claim_that_beats_the_opening_step_is_kept_too() -> None:
    desk = ReviewDesk()
    desk.plan(_task())
    assert desk.follow(ReviewClaim(task_id="t-1", reviewer="r-7", actor="r-7")) is not None
    opened = desk.open("t-1", AT + timedelta(hours=24), assignee=None, version=1)
    assert opened.claimant == "r-7"


def test_stale_and_foreign_claims_change_nothing() -> None:
    desk = ReviewDesk()
    desk.plan(_task())
    task = desk.open("t-1", AT + timedelta(hours=24), assignee=None, version=1)
    assert desk.follow(_claim("r-7", version=3)) is task and task.claimant == "r-7"
    assert desk.follow(_claim(None, version=2)) is None and task.claimant == "r-7"  # older
    assert desk.follow(_claim("r-8", version=9, task_id="t-other")) is None
    desk.recording = "update-1"  # a decision is being recorded: claims no longer move it
    assert desk.follow(_claim(None, version=4)) is None and task.claimant == "r-7"


def test_a_second_review_needs_the_deciders_role_not_just_the_claim() -> None:
    # Issue 13, item 1: a claim handed to a plain reviewer does not let them decide four eyes.
    desk = ReviewDesk()
    desk.plan(OpenTask(task_id="t-2", stage=Stage.SECOND, created_at=AT, due_at=AT + timedelta(hours=24)))
    desk.open("t-2", AT + timedelta(hours=24), assignee="r-2", version=2)

    def decided_by(role: str | None) -> ApplicationError | None:
        decision = ReviewDecision(
            task_id="t-2", reviewer="r-2", outcome=ReviewOutcome.APPROVE, approved_limit_minor=1, role=role
        )
        return desk.refusal(decision, original_limit_minor=10, requested_limit_minor=10)

    refused = decided_by("reviewer")
    assert refused is not None and refused.type == "NotClaimHolder"
    assert "You act as reviewer, and the task needs the senior_reviewer role" in refused.message
    assert decided_by("admin") is not None  # an admin takes no reviews
    assert decided_by("senior_reviewer") is None and decided_by("supervisor") is None
    # A decision recorded before the role was sent (a saved history) is judged as it was then.
    assert decided_by(None) is None
