"""The portfolio review's tables (docs/lender-loop.md, "Portfolio review"): one row per run, one
row per account decided in a run, and the in-app notices to staff that belong to no appeal.

`review_action` is unique per (run date, account): written in the same transaction as the limit
change, the invitation or the record of why nothing was done, it is what makes a re-run for the
same date (a backfill, a retried batch, a worker killed mid-run) do nothing twice."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db.types import UTCDateTime, utcnow


class ReviewOutcome(StrEnum):
    RESTORE = "RESTORE"
    INVITE = "INVITE"
    NONE = "NONE"


class ReviewRun(SQLModel, table=True):
    """One review run per date and workflow: a backfill of a date already run is a second row
    (its counts say it found every account decided)."""

    __tablename__ = "review_run"
    __table_args__ = (
        UniqueConstraint("run_date", "workflow_id", name="uq_review_run_date_workflow"),
        Index("ix_review_run_started", "started_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_date: date
    workflow_id: str = Field(max_length=200)
    started_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    finished_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    duration_seconds: float = 0.0
    # Accounts examined, per outcome and per reason (see core/lender/review.py ReviewCounts).
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    policy_id: str = Field(max_length=100)


class ReviewAction(SQLModel, table=True):
    """What one run decided for one account, and why."""

    __tablename__ = "review_action"
    __table_args__ = (
        UniqueConstraint("run_date", "account_id", name="uq_review_action_date_account"),
        Index("ix_review_action_account", "account_id", "run_date"),
        UniqueConstraint("invitation_token", name="uq_review_action_invitation"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_date: date
    account_id: str = Field(foreign_key="credit_account.id", max_length=64)
    customer_id: str = Field(max_length=64)
    outcome: str = Field(max_length=10)  # ReviewOutcome
    reason: str = Field(max_length=40)  # the main reason code (core/lender/review.py REASONS)
    # More detail: the knock-outs that fired, the policy's principal reason codes.
    reason_codes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    score: int | None = None
    original_limit_minor: int
    limit_before_minor: int
    limit_after_minor: int | None = None  # a restore's new limit
    limit_event_id: int | None = None
    invitation_token: str | None = Field(default=None, max_length=64)
    workflow_id: str = Field(max_length=200)  # the run that decided it
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class StaffNotice(SQLModel, table=True):
    """An in-app notice to staff about no appeal (a review run's summary): rendered from
    templates/notifications/staff/ like the appeal's staff notices, once per key."""

    __tablename__ = "staff_notice"
    __table_args__ = (
        UniqueConstraint("idempotency_key", name="uq_staff_notice_key"),
        Index("ix_staff_notice_recipient", "recipient", "created_at", "id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    recipient: str = Field(max_length=64)  # a staff id, or a group such as "supervisors"
    event: str = Field(max_length=60)
    idempotency_key: str = Field(max_length=200)
    subject: str = Field(max_length=300)
    body: str
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
