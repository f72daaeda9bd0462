"""The input snapshot of one assessment.

`AssessmentInput` holds everything the scoring reads, and nothing else: stored with the
assessment, it lets anyone re-run the decision later (`explain.reproduce`). It is plain JSON
through `model_dump(mode="json")` and back through `AssessmentInput.model_validate`.
"""

from __future__ import annotations

import datetime as dt
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from core.documents.types import DocumentType as _DocumentType


class _Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    FROZEN = "FROZEN"
    REDUCED = "REDUCED"
    CLOSED = "CLOSED"


# One vocabulary for document types across intake, checklist and scoring.
DocumentType = _DocumentType


class Customer(_Snapshot):
    declared_monthly_income_minor: int | None = Field(default=None, ge=0)
    employer_name: str | None = None
    customer_since: dt.date


class Account(_Snapshot):
    original_limit_minor: int = Field(ge=0)
    current_limit_minor: int = Field(ge=0)
    status: AccountStatus
    opened_on: dt.date


class Bill(_Snapshot):
    due_date: dt.date
    amount_due_minor: int = Field(ge=0)
    paid_minor: int = Field(ge=0)
    paid_on: dt.date | None = None  # when it was paid in full; None while not fully paid
    days_past_due: int = Field(ge=0)  # as recorded by the ledger


class LoanApplication(_Snapshot):
    """An application at another lender (from a credit report or a data partner)."""

    applied_on: dt.date
    lender: str
    amount_minor: int = Field(ge=0)
    small_loan: bool


class StatementTransaction(_Snapshot):
    """One line of a parsed bank statement. Credits are positive, debits negative."""

    date: dt.date
    description: str
    amount_minor: int
    balance_minor: int | None = None
    counterparty: str | None = None


class RedFlag(_Snapshot):
    """Something document verification found suspicious; forces manual review."""

    code: str = Field(min_length=1)
    explanation: str


class AssessmentInput(_Snapshot):
    as_of: dt.date
    customer: Customer
    account: Account
    requested_limit_minor: int = Field(gt=0)
    bills: tuple[Bill, ...] = ()
    loan_applications: tuple[LoanApplication, ...] = ()
    other_credit_products: int | None = Field(default=None, ge=0)  # from a credit report
    transactions: tuple[StatementTransaction, ...] = ()
    accepted_document_types: tuple[DocumentType, ...] = ()
    red_flags: tuple[RedFlag, ...] = ()
    employment_document_accepted: bool = False
    # Fields a policy scores as `input:NAME` (e.g. credit-bureau attributes from the ledger).
    fields: dict[str, str] = Field(default_factory=dict)
