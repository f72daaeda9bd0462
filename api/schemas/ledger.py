"""Response bodies of the admin ledger endpoints."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _FromRow(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class TableCountsPublic(BaseModel):
    inserted: int
    updated: int
    unchanged: int


class LedgerImportResult(BaseModel):
    files: list[str]
    tables: dict[str, TableCountsPublic]


class LedgerErrorPublic(BaseModel):
    """One problem in an uploaded file (the 422 problem's `errors` hold these)."""

    file: str
    row: int | None
    field: str | None
    message: str


class CustomerPublic(_FromRow):
    id: str
    name: str
    locale: str
    email: str | None
    phone: str | None
    declared_monthly_income_minor: int | None
    employer: str | None
    created_at: datetime


class CreditAccountPublic(_FromRow):
    id: str
    status: str
    currency: str
    original_limit_minor: int
    current_limit_minor: int
    opened_on: date


class BillPublic(_FromRow):
    account_id: str
    due_date: date
    amount_due_minor: int
    paid_minor: int
    paid_at: datetime | None
    days_past_due: int
    outstanding_minor: int


class LimitEventPublic(_FromRow):
    id: int
    account_id: str
    kind: str
    from_limit_minor: int
    to_limit_minor: int
    reason: str
    source: str
    appeal_id: str | None
    created_at: datetime


class LoanApplicationPublic(_FromRow):
    applied_on: date
    lender: str
    amount_minor: int
    small_loan: bool


class CustomerAttributePublic(_FromRow):
    """A fact from outside the ledger that a policy's `input:NAME` characteristic reads."""

    name: str
    value: str
    source: str
    updated_at: datetime


class LimitActionResultPublic(BaseModel):
    """What the limit action of a risk event did (docs/lender-loop.md, "Limit actions")."""

    outcome: str = Field(description="frozen, reduced, nothing, account_closed or stale")
    action_id: str | None = Field(default=None, description="the policy's limit action that fired")
    reason_code: str | None = Field(
        default=None, description="its reason code (the notice's principal reason)"
    )
    characteristic: str | None = Field(default=None, description="the ledger feature it read")
    value: str | None = Field(default=None, description="that feature's value for the account")
    from_limit_minor: int | None = None
    to_limit_minor: int | None = None
    limit_event_id: int | None = Field(default=None, description="the limit event it wrote")


class RiskEventPublic(_FromRow):
    """A risk event received for one of the customer's accounts and what its limit action did."""

    id: str
    kind: str
    account_id: str
    occurred_at: datetime
    received_at: datetime
    outcome: str = Field(description="applied, or stale (recorded, not applied)")
    action_workflow_id: str | None = Field(description="its LimitActionWorkflow (applied events)")
    action_result: LimitActionResultPublic | None = Field(
        description="what the limit action did; null until it has run"
    )


class ReviewActionPublic(_FromRow):
    """What one portfolio review run decided for an account, and why."""

    run_date: date
    account_id: str
    outcome: str = Field(description="RESTORE, INVITE or NONE")
    reason: str = Field(description='the main reason (docs/lender-loop.md, "Portfolio review")')
    reason_codes: list[str] = Field(description="the knock-outs that fired or the policy's principal reasons")
    score: int | None = Field(description="the ledger-only score (none when decided without one)")
    original_limit_minor: int
    limit_before_minor: int
    limit_after_minor: int | None = Field(description="a restore's new limit")
    limit_event_id: int | None = Field(description="a restore's limit event")
    workflow_id: str = Field(description="the review run that decided it")
    created_at: datetime


class AccountEventPublic(_FromRow):
    """One event of an account's hash-chained audit trail (`appeals audit verify --account ID`)."""

    account_id: str
    seq: int
    kind: str
    at: datetime
    actor: str
    details: dict[str, Any]


class CustomerLedgerPublic(BaseModel):
    customer: CustomerPublic
    accounts: list[CreditAccountPublic]
    bills: list[BillPublic]
    limit_events: list[LimitEventPublic]
    loan_applications: list[LoanApplicationPublic]
    attributes: list[CustomerAttributePublic]
    risk_events: list[RiskEventPublic]
    review_actions: list[ReviewActionPublic]
    account_events: list[AccountEventPublic]


class RiskEventOutcomePublic(BaseModel):
    index: int
    id: str
    account_id: str
    outcome: str = Field(description="applied, stale (recorded, not applied) or already_applied")
    workflow_id: str | None = Field(description="the event's limit-action workflow (applied events)")
    workflow_started: bool = Field(description="false: the reconciler starts it later")


class RiskEventsResult(BaseModel):
    events: list[RiskEventOutcomePublic]
    workflow_ids: list[str]

    @classmethod
    def of(cls, result: Any, started: set[str]) -> RiskEventsResult:
        """From core/lender/risk_events.py's BatchResult and the events whose workflow started."""
        events = [
            RiskEventOutcomePublic(
                index=o.index,
                id=o.id,
                account_id=o.account_id,
                outcome=o.outcome,
                workflow_id=o.workflow_id,
                workflow_started=o.id in started,
            )
            for o in result.outcomes
        ]
        return cls(events=events, workflow_ids=[e.workflow_id for e in events if e.workflow_id])
