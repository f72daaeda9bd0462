"""The lender's side of the loop (docs/lender-loop.md): risk events from the core credit
system, each account's hash-chained audit trail, and notices about an account (not an appeal)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db.types import UTCDateTime, utcnow


class RiskEventOutcome(StrEnum):
    APPLIED = "applied"  # its effect is on the ledger
    STALE = "stale"  # older than what the ledger already holds for the same bill: recorded only


class RiskEvent(SQLModel, table=True):
    """One risk event as received (`POST /admin/ledger/events`): its id makes a redelivery a
    no-op; `action_started_at` says the limit-action workflow was started (else the reconciler
    starts it)."""

    __tablename__ = "risk_event"
    __table_args__ = (
        Index("ix_risk_event_account", "account_id", "occurred_at"),
        Index("ix_risk_event_pending_action", "action_started_at", "received_at"),
    )

    id: str = Field(primary_key=True, max_length=64)
    kind: str = Field(max_length=40)
    account_id: str = Field(foreign_key="credit_account.id", max_length=64)
    customer_id: str = Field(max_length=64)
    occurred_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    # The event as sent (canonical JSON of the validated body): a reused id with another body is refused.
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    received_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    received_from: str = Field(max_length=80)  # "signature" or "staff:<sub>"
    outcome: str = Field(max_length=20)  # RiskEventOutcome
    action_workflow_id: str | None = Field(default=None, max_length=200)
    action_started_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    # What the limit action for this event did (core/lender/limit_actions.py), written in the
    # transaction that did it: the event's id is the key that makes it happen once.
    action_result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))


class AccountEvent(SQLModel, table=True):
    """An account's audit trail; each row's hash covers its content and the previous row's
    hash (core/ledger/account_audit.py), like an appeal's."""

    __tablename__ = "account_event"
    __table_args__ = (UniqueConstraint("account_id", "seq", name="uq_account_event_seq"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="credit_account.id", max_length=64)
    seq: int
    at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
    actor: str = Field(max_length=100)
    kind: str = Field(max_length=50)
    details: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AccountNotice(SQLModel, table=True):
    """A notice about an account (a limit cut, a restore, an invitation): the same outbox
    columns as `Notification` (core/notifications/outbox.py delivers both), with the account
    instead of an appeal."""

    __tablename__ = "account_notice"
    __table_args__ = (
        Index("ix_account_notice_customer", "customer_id", "created_at", "id"),
        Index("ix_account_notice_account", "account_id", "created_at", "id"),
        UniqueConstraint("idempotency_key", name="uq_account_notice_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="credit_account.id", max_length=64)
    customer_id: str = Field(max_length=64)
    audience: str = Field(default="customer", max_length=20)
    channel: str = Field(default="IN_APP", max_length=20)
    event: str = Field(max_length=60)
    locale: str = Field(max_length=10)
    idempotency_key: str = Field(max_length=200)
    subject: str = Field(max_length=300)
    body: str
    status: str = Field(default="PENDING", max_length=20)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
    recipient: str | None = Field(default=None, max_length=500)
    body_html: str | None = None
    message_id: str | None = Field(default=None, max_length=200)
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=1000)
    last_attempt_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    sent_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
