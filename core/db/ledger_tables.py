"""Ledger tables: what the lender already knows about customers and their credit lines."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from sqlalchemy import Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from core.db.types import UTCDateTime, utcnow


class AccountStatus(StrEnum):
    ACTIVE = "ACTIVE"
    FROZEN = "FROZEN"
    REDUCED = "REDUCED"
    CLOSED = "CLOSED"


class LimitEventKind(StrEnum):
    FREEZE = "FREEZE"
    REDUCE = "REDUCE"
    RESTORE = "RESTORE"


class Customer(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    locale: str = Field(default="zh-CN", max_length=10)
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=32)
    declared_monthly_income_minor: int | None = None
    employer: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class CreditAccount(SQLModel, table=True):
    __tablename__ = "credit_account"

    id: str = Field(primary_key=True, max_length=64)
    customer_id: str = Field(foreign_key="customer.id", index=True, max_length=64)
    status: AccountStatus
    currency: str = Field(default="CNY", max_length=3)
    original_limit_minor: int = Field(ge=0)
    current_limit_minor: int = Field(ge=0)
    opened_on: date


class Bill(SQLModel, table=True):
    __table_args__ = (Index("ix_bill_account_due", "account_id", "due_date"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="credit_account.id", max_length=64)
    due_date: date
    amount_due_minor: int = Field(ge=0)
    paid_minor: int = Field(default=0, ge=0)
    paid_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime, nullable=True))
    days_past_due: int = Field(default=0, ge=0)

    @property
    def outstanding_minor(self) -> int:
        return Bill.outstanding(self.amount_due_minor, self.paid_minor)

    @staticmethod
    def outstanding(amount_due_minor: int, paid_minor: int) -> int:
        return max(amount_due_minor - paid_minor, 0)


class LimitEvent(SQLModel, table=True):
    __tablename__ = "limit_event"
    # At most one RESTORE per appeal: the database itself refuses a second application.
    __table_args__ = (UniqueConstraint("appeal_id", name="uq_limit_event_appeal"),)

    id: int | None = Field(default=None, primary_key=True)
    account_id: str = Field(foreign_key="credit_account.id", index=True, max_length=64)
    kind: LimitEventKind
    from_limit_minor: int
    to_limit_minor: int
    reason: str = Field(max_length=200)
    source: str = Field(max_length=64)
    appeal_id: str | None = Field(default=None, max_length=36)
    created_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))


class LoanApplication(SQLModel, table=True):
    """A credit application at another lender (bureau data): the multi-lending signal."""

    __tablename__ = "loan_application"
    __table_args__ = (Index("ix_loan_application_customer", "customer_id", "applied_on"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customer.id", max_length=64)
    applied_on: date
    lender: str = Field(max_length=200)
    amount_minor: int = Field(ge=0)
    small_loan: bool = False


class CustomerAttribute(SQLModel, table=True):
    """A named fact about a customer from outside the ledger (a credit bureau, a data partner):
    what a policy characteristic with `source = "input:NAME"` reads for an appeal."""

    __tablename__ = "customer_attribute"
    __table_args__ = (UniqueConstraint("customer_id", "name", name="uq_customer_attribute_name"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(foreign_key="customer.id", max_length=64)
    name: str = Field(max_length=64)
    value: str = Field(max_length=200)
    source: str = Field(max_length=64)  # who supplied it, e.g. "credit-bureau"
    updated_at: datetime = Field(default_factory=utcnow, sa_column=Column(UTCDateTime, nullable=False))
