"""Request and response bodies of the reviewer endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from api.schemas.appeals import AppealDetail
from api.schemas.documents import DocumentListItem
from core.documents.types import DocumentType
from core.status import AppealStatus
from workflows.messages import ReviewOutcome


class ReviewTaskPublic(BaseModel):
    id: str
    appeal_id: str
    round: int
    stage: int
    queue: str
    status: str
    priority: int
    required_role: str
    risk_tier: str | None
    assignee: str | None
    escalated: bool
    due_at: datetime
    claimed_at: datetime | None
    created_at: datetime
    version: int


class ReviewTaskPage(BaseModel):
    items: list[ReviewTaskPublic]
    next_cursor: str | None
    total: int


class AllowedAction(BaseModel):
    allowed: bool
    reason: str | None = None  # why not, when it is not allowed


class ReviewTaskDetail(BaseModel):
    task: ReviewTaskPublic
    appeal: AppealDetail
    assessment: dict[str, Any] | None
    documents: list[DocumentListItem]
    allowed_actions: dict[str, AllowedAction]


class ReassignBody(BaseModel):
    """Whom to hand the task to. Their role is the staff directory's, so the body names none:
    a `role` member is refused (422) rather than silently believed or ignored."""

    model_config = ConfigDict(extra="forbid")

    to: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[^\s\x00-\x1f\x7f]+$",
        description="The staff id of the person to hand the task to, as in the staff directory.",
    )


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: ReviewOutcome
    approved_limit_minor: int | None = Field(default=None, gt=0, le=10**12, strict=True)
    reasons: list[str] = Field(default_factory=list, max_length=4, description="Policy reason codes.")
    requested_documents: list[DocumentType] = Field(default_factory=list, max_length=5)
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _shape(self) -> DecisionBody:
        if self.outcome is ReviewOutcome.APPROVE and self.approved_limit_minor is None:
            raise ValueError("approved_limit_minor is required to approve")
        if self.outcome is ReviewOutcome.DECLINE and not any(r.strip() for r in self.reasons):
            raise ValueError("a decline needs at least one reason code")
        if self.outcome is ReviewOutcome.REQUEST_INFO and not self.requested_documents:
            raise ValueError("a request for information needs requested_documents")
        return self


class DecisionResponse(BaseModel):
    appeal_id: str
    task_id: str
    status: AppealStatus
    approved_limit_minor: int | None
