"""Reading one customer's whole ledger record (for operators)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from core.db.ledger_tables import (
    Bill,
    CreditAccount,
    Customer,
    CustomerAttribute,
    LimitEvent,
    LoanApplication,
)
from core.errors import NotFound


@dataclass(frozen=True)
class CustomerLedger:
    customer: Customer
    accounts: list[CreditAccount]
    bills: list[Bill]  # of all the customer's accounts, by account then due date
    limit_events: list[LimitEvent]
    loan_applications: list[LoanApplication]
    attributes: list[CustomerAttribute]  # by name


def customer_ledger(session: Session, customer_id: str) -> CustomerLedger:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"The ledger has no customer {customer_id}.", code="customer_not_found")
    accounts = list(
        session.exec(
            select(CreditAccount)
            .where(CreditAccount.customer_id == customer_id)
            .order_by(col(CreditAccount.id))
        ).all()
    )
    account_ids = [a.id for a in accounts]
    bills = list(
        session.exec(
            select(Bill)
            .where(col(Bill.account_id).in_(account_ids))
            .order_by(col(Bill.account_id), col(Bill.due_date), col(Bill.id))
        ).all()
    )
    events = list(
        session.exec(
            select(LimitEvent)
            .where(col(LimitEvent.account_id).in_(account_ids))
            .order_by(col(LimitEvent.account_id), col(LimitEvent.created_at), col(LimitEvent.id))
        ).all()
    )
    loans = list(
        session.exec(
            select(LoanApplication)
            .where(LoanApplication.customer_id == customer_id)
            .order_by(col(LoanApplication.applied_on), col(LoanApplication.id))
        ).all()
    )
    attributes = list(
        session.exec(
            select(CustomerAttribute)
            .where(CustomerAttribute.customer_id == customer_id)
            .order_by(col(CustomerAttribute.name))
        ).all()
    )
    return CustomerLedger(customer, accounts, bills, events, loans, attributes)
