"""Inputs and outputs of the appeal activities: IDs and small values only, never documents."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.status import AppealStatus


class AppealRef(BaseModel):
    appeal_id: str


class EligibilityResult(BaseModel):
    eligible: bool
    reason_code: str | None
    reason: str | None
    original_limit_minor: int
    current_limit_minor: int
    amount_owed_minor: int


class ProjectTransitionInput(BaseModel):
    appeal_id: str
    to_status: AppealStatus
    at: datetime
    actor: str = "workflow"
    reason: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)
    fields: dict[str, Any] = Field(default_factory=dict)


class VerifyDocumentInput(BaseModel):
    appeal_id: str
    document_id: str


class DocumentVerdict(BaseModel):
    document_id: str
    doc_type: str
    accepted: bool
    rejection_code: str | None = None
    rejection_reason: str | None = None
    rejection_reason_zh: str | None = None
    flags: list[str] = Field(default_factory=list)
    checklist_complete: bool = False
    missing: list[str] = Field(default_factory=list)


class ChecklistResult(BaseModel):
    required: list[str]
    missing: list[str]


class AssessInput(BaseModel):
    appeal_id: str
    run: int


class AssessmentResult(BaseModel):
    assessment_id: int
    recommendation: str
    suggested_limit_minor: int
    reason_codes: list[str]
    reasons: list[dict[str, Any]] = Field(default_factory=list)
    score: int | None = None
    score_min: int | None = None
    score_max: int | None = None
    risk_tier: str | None = None
    four_eyes_required: bool = False


class CreateReviewTaskInput(BaseModel):
    task_id: str
    appeal_id: str
    round: int
    stage: int = 1
    due_at: datetime
    required_role: str = "reviewer"
    excluded_reviewer: str | None = None
    preferred_assignee: str | None = None  # the same reviewer again, if still active
    risk_tier: str | None = None


class ReviewTaskRef(BaseModel):
    task_id: str
    due_at: datetime
    assignee: str | None = None
    version: int = 0


class SlaEventInput(BaseModel):
    appeal_id: str
    task_id: str
    kind: str  # "warning" or "breach"


class RequestInfoInput(BaseModel):
    appeal_id: str
    document_types: list[str]
    message: str


class RecordDecisionInput(BaseModel):
    appeal_id: str
    task_id: str | None
    decided_by: str
    outcome: str
    approved_limit_minor: int | None
    reasons: list[str]
    note: str = ""
    idempotency_key: str
    stage: int = 1


class ApplyLimitInput(BaseModel):
    appeal_id: str
    new_limit_minor: int


class AppliedLimitResult(BaseModel):
    limit_event_id: int
    from_limit_minor: int
    to_limit_minor: int
    newly_applied: bool


class NotifyInput(BaseModel):
    appeal_id: str
    event: str
    sequence: int
    context: dict[str, Any] = Field(default_factory=dict)
