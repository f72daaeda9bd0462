"""The AppealWorkflow's input, result, signals, updates and queries."""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, Field

from core.reviews.rules import SLA_WARNING_FRACTION, Outcome
from core.status import AppealStatus

# One vocabulary of outcomes for the API, the workflow and the case store.
ReviewOutcome = Outcome


class AppealInput(BaseModel):
    appeal_id: str
    customer_id: str
    account_id: str
    requested_limit_minor: int
    document_deadline: timedelta = timedelta(days=7)
    document_reminders: list[timedelta] = Field(default_factory=list)
    review_due: timedelta = timedelta(hours=24)
    sla_warning_fraction: float = SLA_WARNING_FRACTION
    human_review_window: timedelta = timedelta(days=14)
    four_eyes_min_amount_minor: int = 2_000_000
    four_eyes_risk_tiers: list[str] = Field(default_factory=lambda: ["HIGH"])


class AppealResult(BaseModel):
    appeal_id: str
    status: AppealStatus
    decided_limit_minor: int | None = None


class DocumentUploaded(BaseModel):
    document_id: str


class WithdrawRequest(BaseModel):
    requested_by: str
    reason: str = ""


class ReviewDecision(BaseModel):
    task_id: str
    reviewer: str
    outcome: ReviewOutcome
    approved_limit_minor: int | None = None
    reasons: list[str] = Field(default_factory=list)
    requested_documents: list[str] = Field(default_factory=list)
    note: str = ""
    # The role the reviewer acts with as they decide, from the API's verified principal checked
    # against the staff directory (never from a request body): the validator refuses one that
    # may not work the task (a second review needs a senior reviewer or supervisor). None:
    # a decision from a sender before this field (histories recorded then replay unchanged).
    role: str | None = None


class ReviewClaim(BaseModel):
    """A claim, release or reassignment already recorded in the queue (the DB decides who
    wins a race); the workflow follows it: status, search attribute, who may decide."""

    task_id: str
    reviewer: str | None  # None: released back to the queue
    actor: str
    # The task row's version after the change; the workflow follows the newest. None (older
    # senders): followed in arrival order.
    version: int | None = None


class HumanReviewRequest(BaseModel):
    requested_by: str
    reason: str = ""


class DecisionAccepted(BaseModel):
    status: AppealStatus
    approved_limit_minor: int | None


class AppealState(BaseModel):
    """For debugging in the Web UI; the API reads the DB projection instead."""

    status: AppealStatus
    open_task_id: str | None
    pending_documents: list[str]
    accepted_documents: list[str]
