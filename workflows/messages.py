"""The AppealWorkflow's input, result, signals, updates and queries."""

from __future__ import annotations

from datetime import timedelta
from enum import StrEnum

from pydantic import BaseModel, Field

from core.status import AppealStatus


class AppealInput(BaseModel):
    appeal_id: str
    customer_id: str
    account_id: str
    requested_limit_minor: int
    document_deadline: timedelta = timedelta(days=7)
    document_reminders: list[timedelta] = Field(default_factory=list)
    review_due: timedelta = timedelta(hours=24)
    human_review_window: timedelta = timedelta(days=14)


class AppealResult(BaseModel):
    appeal_id: str
    status: AppealStatus
    decided_limit_minor: int | None = None


class DocumentUploaded(BaseModel):
    document_id: str


class WithdrawRequest(BaseModel):
    requested_by: str
    reason: str = ""


class ReviewOutcome(StrEnum):
    APPROVE = "APPROVE"
    DECLINE = "DECLINE"


class ReviewDecision(BaseModel):
    task_id: str
    reviewer: str
    outcome: ReviewOutcome
    approved_limit_minor: int | None = None
    reasons: list[str] = Field(default_factory=list)
    note: str = ""


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
