"""The ledger's part of an assessment snapshot, shared by an appeal's assessment
(core/appeals/assessment.py) and the ledger-only snapshot of limit actions and the portfolio
review (core/lender/snapshot.py): the customer, the account, its bills, loan applications
elsewhere and the customer's attributes (an attribute named `other_credit_products` fills that
field, as a credit report would)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.db.ledger_tables import Bill, CreditAccount, Customer, CustomerAttribute, LoanApplication
from core.policy import inputs as snapshot

OTHER_CREDIT_PRODUCTS = "other_credit_products"


@dataclass(frozen=True, slots=True)
class LedgerPart:
    customer: snapshot.Customer
    account: snapshot.Account
    bills: tuple[snapshot.Bill, ...]
    loan_applications: tuple[snapshot.LoanApplication, ...]
    fields: dict[str, str]  # what `input:NAME` characteristics read
    other_credit_products: int | None


def _count(value: str | None) -> int | None:
    """An attribute's value as a count (`"9"` -> 9); None when missing or not a whole number >= 0."""
    if value is None:
        return None
    text = value.strip()
    return int(text) if text.isdigit() else None


def ledger_part(session: Session, account: CreditAccount, customer: Customer) -> LedgerPart:
    # Columns, not entities: every bill the account has had, read on an appeal's hot path.
    bills = session.execute(
        sa_select(
            col(Bill.due_date),
            col(Bill.amount_due_minor),
            col(Bill.paid_minor),
            col(Bill.paid_at),
            col(Bill.days_past_due),
        )
        .where(col(Bill.account_id) == account.id)
        .order_by(col(Bill.due_date), col(Bill.id))
    ).all()
    loans = session.exec(
        select(LoanApplication)
        .where(LoanApplication.customer_id == customer.id)
        .order_by(col(LoanApplication.applied_on), col(LoanApplication.id))
    ).all()
    attributes = session.exec(
        select(CustomerAttribute)
        .where(CustomerAttribute.customer_id == customer.id)
        .order_by(col(CustomerAttribute.name))
    ).all()
    fields = {a.name: a.value for a in attributes}
    return LedgerPart(
        customer=snapshot.Customer(
            declared_monthly_income_minor=customer.declared_monthly_income_minor,
            employer_name=customer.employer,
            customer_since=min(customer.created_at.date(), account.opened_on),
        ),
        account=snapshot.Account(
            original_limit_minor=account.original_limit_minor,
            current_limit_minor=account.current_limit_minor,
            status=snapshot.AccountStatus(account.status.value),
            opened_on=account.opened_on,
        ),
        bills=tuple(
            snapshot.Bill(
                due_date=bill.due_date,
                amount_due_minor=bill.amount_due_minor,
                paid_minor=bill.paid_minor,
                paid_on=bill.paid_at.date()
                if bill.paid_at and Bill.outstanding(bill.amount_due_minor, bill.paid_minor) == 0
                else None,
                days_past_due=bill.days_past_due,
            )
            for bill in bills
        ),
        loan_applications=tuple(
            snapshot.LoanApplication(
                applied_on=loan.applied_on,
                lender=loan.lender,
                amount_minor=loan.amount_minor,
                small_loan=loan.small_loan,
            )
            for loan in loans
        ),
        fields=fields,
        other_credit_products=_count(fields.get(OTHER_CREDIT_PRODUCTS)),
    )
