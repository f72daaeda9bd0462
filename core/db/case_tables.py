"""Case-store tables: appeals and everything that happens to them."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from core.db.types import UTCDateTime, utcnow
from core.status import AppealStatus


class DocumentState(StrEnum):
    AWAITING_UPLOAD = "AWAITING_UPLOAD"  # presigned POST issued, not completed yet
    UPLOADED = "UPLOADED"
    VERIFYING = "VERIFYING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


class TaskStatus(StrEnum):
    OPEN = "OPEN"
    CLAIMED = "CLAIMED"
    COMPLETED = "COMPLETED"
    CANCELLED = "CANCELLED"


class DecisionOutcome(StrEnum):
    APPROVE = "APPROVE"
    REQUEST_INFO = "REQUEST_INFO"
    DECLINE = "DECLINE"


class Recommendation(StrEnum):
    AUTO_APPROVE = "AUTO_APPROVE"
    MANUAL_REVIEW = "MANUAL_REVIEW"
    AUTO_DECLINE = "AUTO_DECLINE"


def _utc_column(nullable: bool = False) -> Any:
    return Column(UTCDateTime, nullable=nullable)


class Appeal(SQLModel, table=True):
    __table_args__ = (
        # One open appeal per account, enforced by the database under any concurrency.
        Index(
            "uq_appeal_open_account",
            "account_id",
            unique=True,
            sqlite_where=text("is_open"),
            postgresql_where=text("is_open"),
        ),
        UniqueConstraint("customer_id", "idempotency_key", name="uq_appeal_idempotency"),
        Index("ix_appeal_customer_created", "customer_id", "created_at", "id"),
    )

    id: str = Field(primary_key=True, max_length=36)
    customer_id: str = Field(foreign_key="customer.id", max_length=64)
    account_id: str = Field(foreign_key="credit_account.id", max_length=64)
    requested_limit_minor: int = Field(gt=0)
    customer_statement: str = Field(default="", max_length=2000)
    status: AppealStatus = Field(index=True)
    is_open: bool = True
    version: int = 1
    idempotency_key: str | None = Field(default=None, max_length=200)
    # What the request that used the key asked for (core/idempotency.py): a reuse of the key
    # for another request is refused. None on appeals recorded before fingerprints.
    idempotency_fingerprint: str | None = Field(default=None, max_length=64)
    workflow_id: str = Field(max_length=80)
    workflow_started: bool = False
    status_reason: str | None = Field(default=None, max_length=500)
    amount_owed_minor: int | None = None
    decided_limit_minor: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column())
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column())
    closed_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class AppealEvent(SQLModel, table=True):
    """The audit trail; each row's hash covers its content and the previous row's hash."""

    __tablename__ = "appeal_event"
    __table_args__ = (UniqueConstraint("appeal_id", "seq", name="uq_appeal_event_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    appeal_id: str = Field(foreign_key="appeal.id", max_length=36)
    seq: int
    at: datetime = Field(sa_column=_utc_column())
    actor: str = Field(max_length=100)
    kind: str = Field(max_length=50)
    from_status: AppealStatus | None = None
    to_status: AppealStatus | None = None
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class Document(SQLModel, table=True):
    __table_args__ = (
        Index("ix_document_appeal", "appeal_id", "created_at"),
        # A retried upload (same Idempotency-Key) finds the file its first attempt saved.
        Index("uq_document_idempotency", "appeal_id", "idempotency_key", unique=True),
    )

    id: str = Field(primary_key=True, max_length=36)
    appeal_id: str = Field(foreign_key="appeal.id", max_length=36)
    customer_id: str = Field(max_length=64)
    doc_type: str = Field(max_length=40)
    s3_key: str = Field(max_length=300)
    filename: str = Field(max_length=255)
    declared_content_type: str = Field(max_length=100)
    size_bytes: int | None = None
    sha256: str | None = Field(default=None, max_length=64, index=True)
    sniffed_type: str | None = Field(default=None, max_length=40)
    state: DocumentState = DocumentState.UPLOADED
    rejection_reason: str | None = Field(default=None, max_length=500)
    # Red flags found by verification (code, severity, en, zh-CN).
    flags: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    rejection_code: str | None = Field(default=None, max_length=60)
    rejection_reason_zh: str | None = Field(default=None, max_length=500)
    upload_method: str = Field(default="multipart", max_length=20)
    upload_expires_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    duplicate_of: str | None = Field(default=None, max_length=36)
    idempotency_key: str | None = Field(default=None, max_length=200)
    idempotency_fingerprint: str | None = Field(default=None, max_length=64)  # core/idempotency.py
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column())
    verified_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    # An accepted file's kept copy (core/documents/evidence.py): a server-side copy under
    # evidence/, its version where the bucket is versioned, locked until then where it has
    # object lock. Served from there, SHA-256 re-checked.
    evidence_key: str | None = Field(default=None, max_length=300)
    evidence_version_id: str | None = Field(default=None, max_length=200)
    evidence_locked_until: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    # When the document sweep deleted a rejected or never-completed upload from storage.
    purged_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class ChecklistState(StrEnum):
    MISSING = "MISSING"
    RECEIVED = "RECEIVED"
    VERIFYING = "VERIFYING"
    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"


class ChecklistItem(SQLModel, table=True):
    """One document the appeal needs, with why, and where its collection stands."""

    __tablename__ = "checklist_item"
    __table_args__ = (UniqueConstraint("appeal_id", "doc_type", name="uq_checklist_type"),)

    id: int | None = Field(default=None, primary_key=True)
    appeal_id: str = Field(foreign_key="appeal.id", max_length=36)
    doc_type: str = Field(max_length=40)
    required: bool = True
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    min_full_months: int | None = None
    state: ChecklistState = ChecklistState.MISSING
    document_id: str | None = Field(default=None, max_length=36)
    rejection_reason: str | None = Field(default=None, max_length=500)
    rejection_reason_zh: str | None = Field(default=None, max_length=500)
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column())


class StatementTransaction(SQLModel, table=True):
    """A bank-statement line parsed from an accepted document, for the automated checks."""

    __tablename__ = "statement_transaction"
    __table_args__ = (
        Index("ix_statement_txn_appeal", "appeal_id", "posted_on"),
        UniqueConstraint("document_id", "row", name="uq_statement_txn_row"),
    )

    id: int | None = Field(default=None, primary_key=True)
    document_id: str = Field(foreign_key="document.id", max_length=36)
    appeal_id: str = Field(max_length=36)
    customer_id: str = Field(max_length=64)
    row: int
    posted_on: date
    description: str = Field(max_length=500)
    amount_minor: int
    balance_minor: int | None = None
    counterparty: str | None = Field(default=None, max_length=200)


class Assessment(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    appeal_id: str = Field(foreign_key="appeal.id", index=True, max_length=36)
    run: int = 1
    rule_id: str = Field(max_length=80)
    rule_hash: str = Field(max_length=64)
    score: int | None = None
    risk_tier: str | None = Field(default=None, max_length=20)
    recommendation: Recommendation
    suggested_limit_minor: int
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    four_eyes_required: bool = False
    route: str | None = Field(default=None, max_length=60)
    # The input snapshot and the whole result: the same policy and snapshot reproduce it.
    inputs: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column())

    __table_args__ = (UniqueConstraint("appeal_id", "run", name="uq_assessment_run"),)


class ShadowAssessment(SQLModel, table=True):
    """An appeal's input snapshot scored by a challenger policy, in shadow: stored for
    `appeals policy compare` and never read by any decision (the workflow, the review queue and
    the API read `assessment` only). One row per (appeal, run, policy hash)."""

    __tablename__ = "shadow_assessment"
    __table_args__ = (UniqueConstraint("appeal_id", "run", "rule_hash", name="uq_shadow_assessment_run"),)

    id: int | None = Field(default=None, primary_key=True)
    appeal_id: str = Field(foreign_key="appeal.id", index=True, max_length=36)
    run: int = 1
    role: str = Field(default="challenger", max_length=20)
    rule_id: str = Field(max_length=80)
    rule_hash: str = Field(max_length=64)
    score: int | None = None
    pd: str | None = Field(default=None, max_length=40)  # the implied PD as decimal text, if calibrated
    # None when the challenger could not score the snapshot (then `error` says why).
    recommendation: Recommendation | None = None
    route: str | None = Field(default=None, max_length=60)
    reasons: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    result: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    error: str | None = Field(default=None, max_length=2000)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column())


class ReviewTask(SQLModel, table=True):
    __tablename__ = "review_task"
    __table_args__ = (
        # claim-next and the default queue page: most urgent first among open tasks.
        # Any mix of allowed roles reads this index in claim order (role is a filter on it).
        Index("ix_review_task_urgent", "status", text("priority DESC"), "due_at", "id"),
        Index("ix_review_task_due", "status", "due_at", "id"),
        Index("ix_review_task_age", "status", "created_at", "id"),
        Index("ix_review_task_assignee", "assignee", "status", "due_at", "id"),
        UniqueConstraint("appeal_id", "round", "stage", name="uq_review_task_round"),
    )

    id: str = Field(primary_key=True, max_length=36)
    appeal_id: str = Field(foreign_key="appeal.id", max_length=36)
    customer_id: str = Field(default="", max_length=64)
    round: int = 1
    stage: int = 1  # 1: first review; 2: the second pair of eyes
    risk_tier: str | None = Field(default=None, max_length=20)
    queue: str = Field(default="review", max_length=40)
    status: TaskStatus = TaskStatus.OPEN
    priority: int = 0
    required_role: str = Field(default="reviewer", max_length=30)
    assignee: str | None = Field(default=None, max_length=100)
    # Who decided stage 1: never the same person as stage 2 (separation of duties).
    excluded_reviewer: str | None = Field(default=None, max_length=100)
    escalated: bool = False
    version: int = 1
    due_at: datetime = Field(sa_column=_utc_column())
    claimed_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column())
    completed_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class Decision(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("appeal_id", "idempotency_key", name="uq_decision_key"),)

    id: int | None = Field(default=None, primary_key=True)
    appeal_id: str = Field(foreign_key="appeal.id", index=True, max_length=36)
    task_id: str | None = Field(default=None, max_length=36)
    stage: int = 1
    decided_by: str = Field(max_length=100)
    outcome: DecisionOutcome
    approved_limit_minor: int | None = None
    reasons: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    note: str = Field(default="", max_length=2000)
    idempotency_key: str = Field(max_length=200)
    decided_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column())


class Notification(SQLModel, table=True):
    __table_args__ = (
        Index("ix_notification_customer", "customer_id", "created_at", "id"),
        # An appeal's notices, oldest first: the appeal page's delivery per channel.
        Index("ix_notification_appeal", "appeal_id", "created_at", "id"),
        UniqueConstraint("idempotency_key", name="uq_notification_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    appeal_id: str = Field(foreign_key="appeal.id", max_length=36)
    customer_id: str = Field(max_length=64)  # the recipient: a customer, or staff (audience)
    audience: str = Field(default="customer", max_length=20)
    channel: str = Field(default="IN_APP", max_length=20)
    event: str = Field(max_length=60)
    locale: str = Field(max_length=10)
    idempotency_key: str = Field(max_length=200)
    subject: str = Field(max_length=300)
    body: str
    status: str = Field(default="SENT", max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column())
    # Outbox delivery (core/notifications/outbox.py); in-app rows are delivered by existing.
    recipient: str | None = Field(default=None, max_length=500)  # email address, phone or webhook URL
    body_html: str | None = None  # the email's HTML part; `body` is its text part
    message_id: str | None = Field(default=None, max_length=200)  # derived from idempotency_key
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    last_attempt_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=_utc_column(nullable=True))


class IdempotencyRecord(SQLModel, table=True):
    """An Idempotency-Key taken by a request before its effect is recorded elsewhere (a
    decision: the workflow records it, after the API sent the Update named by the key), with
    the fingerprint of that request (core/idempotency.py)."""

    __tablename__ = "idempotency_record"

    scope: str = Field(primary_key=True, max_length=100)  # e.g. "decision:<appeal id>"
    key: str = Field(primary_key=True, max_length=200)
    fingerprint: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column())


class RateLimitWindow(SQLModel, table=True):
    """How many writes of one kind a principal made in one window (core/rate_limits.py)."""

    __tablename__ = "rate_limit_window"

    principal: str = Field(primary_key=True, max_length=200)
    action: str = Field(primary_key=True, max_length=40)
    window_start: int = Field(primary_key=True)  # seconds since the epoch, a multiple of the window
    count: int = 0
