"""Response bodies of the admin ledger endpoints."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict


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


class CustomerLedgerPublic(BaseModel):
    customer: CustomerPublic
    accounts: list[CreditAccountPublic]
    bills: list[BillPublic]
    limit_events: list[LimitEventPublic]
    loan_applications: list[LoanApplicationPublic]
    attributes: list[CustomerAttributePublic]
