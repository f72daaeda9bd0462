from datetime import UTC, datetime, timedelta

from core.status import AppealStatus
from workflows.messages import ReviewDecision, ReviewOutcome
from workflows.review import OpenTask, needs_four_eyes, outcome_status, remaining_budget


def test_sla_clock_counts_only_review_time() -> None:
    # 10 hours were spent in the first review round; the customer then took 5 days to reply.
    assert remaining_budget(timedelta(hours=24), timedelta(hours=10)) == timedelta(hours=14)
    assert remaining_budget(timedelta(hours=24), timedelta(hours=30)) == timedelta(minutes=1)


def test_warning_point_is_a_fraction_of_the_task_budget() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    task = OpenTask("t", 1, start, start + timedelta(hours=10))
    assert task.warning_at(0.8) == start + timedelta(hours=8)
    assert task.pending_status is AppealStatus.PENDING_REVIEW
    assert OpenTask("t", 2, start, start).in_review_status is AppealStatus.IN_SECOND_REVIEW


def test_four_eyes_threshold_and_tiers() -> None:
    assert needs_four_eyes(2_000_000, "LOW", 2_000_000, ["HIGH"])
    assert not needs_four_eyes(1_999_900, "LOW", 2_000_000, ["HIGH"])
    assert needs_four_eyes(100, "HIGH", 2_000_000, ["HIGH"])


def test_outcome_status() -> None:
    def d(outcome: ReviewOutcome, amount: int | None = None) -> ReviewDecision:
        return ReviewDecision(task_id="t", reviewer="r", outcome=outcome, approved_limit_minor=amount)

    assert outcome_status(d(ReviewOutcome.APPROVE, 500), 500) is AppealStatus.APPROVED
    assert outcome_status(d(ReviewOutcome.APPROVE, 400), 500) is AppealStatus.PARTIALLY_APPROVED
    assert outcome_status(d(ReviewOutcome.DECLINE), 500) is AppealStatus.DECLINED
    assert outcome_status(d(ReviewOutcome.REQUEST_INFO), 500) is AppealStatus.INFO_REQUESTED
