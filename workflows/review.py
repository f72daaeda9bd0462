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
    claimant: str | None = None
    warned: bool = False
    breached: bool = False

    @property
    def pending_status(self) -> AppealStatus:
        return S.PENDING_REVIEW if self.stage == 1 else S.PENDING_SECOND_REVIEW

    @property
    def in_review_status(self) -> AppealStatus:
        return S.IN_REVIEW if self.stage == 1 else S.IN_SECOND_REVIEW

    def warning_at(self, fraction: float) -> datetime:
        return self.created_at + (self.due_at - self.created_at) * fraction


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
