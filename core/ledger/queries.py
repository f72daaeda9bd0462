"""Reading one customer's whole ledger record (for operators): the ledger itself and, per
account, what the lender's loop did with it and why (docs/lender-loop.md): the risk events
received and what their limit action did, the portfolio review's decisions with their reasons,
and the account's audit trail."""

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
from core.db.lender_tables import AccountEvent, RiskEvent
from core.db.review_tables import ReviewAction
from core.errors import NotFound


@dataclass(frozen=True)
class CustomerLedger:
    customer: Customer
    accounts: list[CreditAccount]
    bills: list[Bill]  # of all the customer's accounts, by account then due date
    limit_events: list[LimitEvent]
    loan_applications: list[LoanApplication]
    attributes: list[CustomerAttribute]  # by name
    risk_events: list[RiskEvent]  # by account, then when they occurred
    review_actions: list[ReviewAction]  # by account, then run date
    account_events: list[AccountEvent]  # each account's audit trail, by account then seq


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
    risk_events = list(
        session.exec(
            select(RiskEvent)
            .where(col(RiskEvent.account_id).in_(account_ids))
            .order_by(col(RiskEvent.account_id), col(RiskEvent.occurred_at), col(RiskEvent.id))
        ).all()
    )
    review_actions = list(
        session.exec(
            select(ReviewAction)
            .where(col(ReviewAction.account_id).in_(account_ids))
            .order_by(col(ReviewAction.account_id), col(ReviewAction.run_date), col(ReviewAction.id))
        ).all()
    )
    trail = list(
        session.exec(
            select(AccountEvent)
            .where(col(AccountEvent.account_id).in_(account_ids))
            .order_by(col(AccountEvent.account_id), col(AccountEvent.seq))
        ).all()
    )
    return CustomerLedger(
        customer, accounts, bills, events, loans, attributes, risk_events, review_actions, trail
    )
