"""Pure helpers for the review stages of AppealWorkflow (deterministic: no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from core.status import AppealStatus
from workflows.messages import ReviewDecision, ReviewOutcome

S = AppealStatus


@dataclass
class OpenTask:
    task_id: str
    stage: int
    created_at: datetime
    due_at: datetime
    excluded_reviewer: str | None = None
    # Handed straight back to the reviewer who asked for more information (if still at work).
    preferred_assignee: str | None = None
    claimant: str | None = None
    # The task row's version that `claimant` comes from: the queue (the DB) decides claims,
    # and a message about an older version than the one followed changes nothing.
    claim_version: int = -1
    row_written: bool = False
    warned: bool = False
    breached: bool = False

    def follow_claim(self, reviewer: str | None, version: int | None) -> bool:
        """Takes a claim, release or reassignment recorded in the queue; False if stale."""
        if version is not None:
            if version <= self.claim_version:
                return False
            self.claim_version = version
        self.claimant = reviewer
        return True

    def may_decide(self, reviewer: str) -> bool:
        if self.claimant is not None:
            return self.claimant == reviewer
        # While the row is being written the preferred reviewer may already see it as theirs;
        # the decision is checked again against the written claim before it is recorded.
        return not self.row_written and self.preferred_assignee == reviewer

    @property
    def pending_status(self) -> AppealStatus:
        return S.PENDING_REVIEW if self.stage == 1 else S.PENDING_SECOND_REVIEW

    @property
    def in_review_status(self) -> AppealStatus:
        return S.IN_REVIEW if self.stage == 1 else S.IN_SECOND_REVIEW

    def warning_at(self, fraction: float) -> datetime:
        return sla_warning_at(self.created_at, self.due_at, fraction)


def sla_warning_at(created_at: datetime, due_at: datetime, fraction: float) -> datetime:
    """When a review's SLA warning is due: `fraction` of the way from the task's creation to
    its due time (the reviewer console colours its countdown by the same rule)."""
    return created_at + (due_at - created_at) * fraction


def needs_four_eyes(
    amount_minor: int, risk_tier: str | None, min_amount_minor: int, tiers: list[str]
) -> bool:
    return amount_minor >= min_amount_minor or (risk_tier is not None and risk_tier in tiers)


def outcome_status(decision: ReviewDecision, requested_limit_minor: int) -> AppealStatus:
    if decision.outcome is ReviewOutcome.DECLINE:
        return S.DECLINED
    if decision.outcome is ReviewOutcome.REQUEST_INFO:
        return S.INFO_REQUESTED
    assert decision.approved_limit_minor is not None
    if decision.approved_limit_minor < requested_limit_minor:
        return S.PARTIALLY_APPROVED
    return S.APPROVED


def remaining_budget(review_due: timedelta, spent: timedelta) -> timedelta:
    """The SLA clock runs only while the appeal waits on reviewers, not on the customer."""
    return max(review_due - spent, timedelta(minutes=1))
