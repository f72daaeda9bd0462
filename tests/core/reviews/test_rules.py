"""The review rules shared by the workflow's validator and the API's allowed actions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.reviews.rules import (
    CLAIM_FIRST,
    NOT_CLAIM_HOLDER,
    SECOND_REVIEW_APPROVES_OR_DECLINES,
    Outcome,
    Stage,
    decision_problem,
    needs_four_eyes,
    outcome_status,
    remaining_budget,
    sla_warning_at,
    why_not_deciding,
    why_not_outcome,
)
from core.status import AppealStatus


def test_sla_clock_counts_only_review_time() -> None:
    # 10 hours were spent in the first review round; the customer then took 5 days to reply.
    assert remaining_budget(timedelta(hours=24), timedelta(hours=10)) == timedelta(hours=14)
    assert remaining_budget(timedelta(hours=24), timedelta(hours=30)) == timedelta(minutes=1)


def test_warning_point_is_a_fraction_of_the_task_budget() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    assert sla_warning_at(start, start + timedelta(hours=10)) == start + timedelta(hours=8)


def test_stages_know_their_statuses_and_role() -> None:
    assert Stage.FIRST.pending_status is AppealStatus.PENDING_REVIEW
    assert Stage.SECOND.in_review_status is AppealStatus.IN_SECOND_REVIEW
    assert (Stage.FIRST.required_role, Stage.SECOND.required_role) == ("reviewer", "senior_reviewer")


def test_four_eyes_threshold_and_tiers() -> None:
    assert needs_four_eyes(2_000_000, "LOW", 2_000_000, ["HIGH"])
    assert not needs_four_eyes(1_999_900, "LOW", 2_000_000, ["HIGH"])
    assert needs_four_eyes(100, "HIGH", 2_000_000, ["HIGH"])
    assert not needs_four_eyes(100, None, 2_000_000, ["HIGH"])


def test_outcome_status() -> None:
    assert outcome_status(Outcome.APPROVE, 500, 500) is AppealStatus.APPROVED
    assert outcome_status(Outcome.APPROVE, 400, 500) is AppealStatus.PARTIALLY_APPROVED
    assert outcome_status(Outcome.DECLINE, None, 500) is AppealStatus.DECLINED
    assert outcome_status(Outcome.REQUEST_INFO, None, 500) is AppealStatus.INFO_REQUESTED


def test_who_may_decide() -> None:
    assert why_not_deciding(claimed=False, claimant=None, decider="r-1") is CLAIM_FIRST
    assert why_not_deciding(claimed=True, claimant="r-2", decider="r-1") is NOT_CLAIM_HOLDER
    assert why_not_deciding(claimed=True, claimant="r-1", decider="r-1") is None
    assert why_not_outcome(Stage.SECOND, Outcome.REQUEST_INFO) is SECOND_REVIEW_APPROVES_OR_DECLINES
    assert why_not_outcome(Stage.FIRST, Outcome.REQUEST_INFO) is None
    assert NOT_CLAIM_HOLDER.text("zh-CN") == "您未认领此任务"


@pytest.mark.parametrize(
    ("outcome", "limit", "reasons", "documents", "problem"),
    [
        (Outcome.APPROVE, None, [], [], "positive"),
        (Outcome.APPROVE, 0, [], [], "positive"),
        (Outcome.APPROVE, 800_001, [], [], "above the account's original limit"),
        (Outcome.APPROVE, 700_001, [], [], "above the limit the customer asked for"),
        (Outcome.APPROVE, 700_000, [], [], None),
        (Outcome.DECLINE, None, ["  "], [], "at least one reason"),
        (Outcome.DECLINE, None, ["RC_LATE_PAYMENTS"], [], None),
        (Outcome.REQUEST_INFO, None, [], [], "at least one document type"),
        (Outcome.REQUEST_INFO, None, [], ["EMPLOYMENT_PROOF"], None),
    ],
)
def test_decision_content(
    outcome: Outcome, limit: int | None, reasons: list[str], documents: list[str], problem: str | None
) -> None:
    found = decision_problem(
        outcome,
        approved_limit_minor=limit,
        reasons=reasons,
        requested_documents=documents,
        original_limit_minor=800_000,
        requested_limit_minor=700_000 if limit != 800_001 else None,
    )
    assert (found is None) if problem is None else (found is not None and problem in found)
