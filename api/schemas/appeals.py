"""Request and response bodies of the customer-facing appeal endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.status import AppealStatus


class AppealCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    account_id: str = Field(min_length=1, max_length=64)
    # Strict: `true` or "100" is a client's mistake, not an amount.
    requested_limit_minor: int = Field(gt=0, le=10**12, strict=True, description="In minor units (fen).")
    statement: str = Field(default="", max_length=2000, description="Why the limit should be restored.")


class TimelineEntry(BaseModel):
    seq: int
    at: datetime
    actor: str
    kind: str
    from_status: AppealStatus | None
    to_status: AppealStatus | None
    details: dict[str, Any]


class DocumentPublic(BaseModel):
    id: str
    doc_type: str
    filename: str
    declared_content_type: str
    size_bytes: int | None
    sha256: str | None
    state: str
    rejection_code: str | None = None
    rejection_reason: str | None
    rejection_reason_zh: str | None = None
    duplicate_of: str | None = None
    created_at: datetime


class NotificationStatusPublic(BaseModel):
    """One notice on one channel, as the outbox knows it (no message content)."""

    event: str
    channel: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    created_at: datetime


class ChecklistItemPublic(BaseModel):
    doc_type: str
    required: bool
    reasons: list[str]
    min_full_months: int | None
    state: str
    document_id: str | None
    rejection_reason: str | None
    rejection_reason_zh: str | None


class DecisionPublic(BaseModel):
    outcome: str
    approved_limit_minor: int | None
    reasons: list[str]
    decided_by: str
    decided_at: datetime


class AppealSummary(BaseModel):
    id: str
    account_id: str
    status: AppealStatus
    requested_limit_minor: int
    decided_limit_minor: int | None
    version: int
    created_at: datetime
    updated_at: datetime


class AppealDetail(AppealSummary):
    customer_id: str
    status_reason: str | None = Field(
        description="Why the appeal is in its status, in the reader's language (a customer: their "
        "locale; staff: English unless Accept-Language prefers zh-CN). For a decline, the texts "
        "of the policy's reason codes."
    )
    status_reason_codes: list[str] = Field(
        default=[], description="The policy reason codes behind `status_reason` (e.g. RC_LATE_PAYMENTS)."
    )
    amount_owed_minor: int | None
    closed_at: datetime | None
    workflow_id: str
    timeline: list[TimelineEntry]
    checklist: list[ChecklistItemPublic]
    documents: list[DocumentPublic]
    decision: DecisionPublic | None
    notifications: list[NotificationStatusPublic] = []


class AppealPage(BaseModel):
    items: list[AppealSummary]
    next_cursor: str | None


class WithdrawBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=500)
