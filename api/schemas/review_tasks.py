"""Request and response bodies of the reviewer endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.status import AppealStatus
from workflows.messages import ReviewOutcome


class ReviewTaskPublic(BaseModel):
    id: str
    appeal_id: str
    round: int
    queue: str
    status: str
    priority: int
    assignee: str | None
    due_at: datetime
    created_at: datetime
    version: int


class ReviewTaskPage(BaseModel):
    items: list[ReviewTaskPublic]
    next_cursor: str | None


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: ReviewOutcome
    approved_limit_minor: int | None = Field(default=None, gt=0, le=10**12)
    reasons: list[str] = Field(default_factory=list, max_length=10)
    note: str = Field(default="", max_length=2000)

    @model_validator(mode="after")
    def _shape(self) -> DecisionBody:
        if self.outcome is ReviewOutcome.APPROVE and self.approved_limit_minor is None:
            raise ValueError("approved_limit_minor is required to approve")
        if self.outcome is ReviewOutcome.DECLINE and not any(r.strip() for r in self.reasons):
            raise ValueError("a decline needs at least one reason")
        return self


class DecisionResponse(BaseModel):
    appeal_id: str
    task_id: str
    status: AppealStatus
    approved_limit_minor: int | None
