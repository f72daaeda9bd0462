"""The ledger-only snapshot (docs/lender-loop.md, "Ledger-only snapshot"): the `AssessmentInput`
that limit actions and the portfolio review score, built from the ledger alone. Bills, loan
applications elsewhere and the customer's attributes (`customer_attribute`; one named
`other_credit_products` fills that field, as a credit report would); no statement, no documents,
no red flags. The requested limit is the account's original limit (what a restore would ask for)."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, col, select

from core.db.ledger_tables import Bill, CreditAccount, Customer, CustomerAttribute, LoanApplication
from core.errors import NotFound
from core.policy import inputs as snapshot

OTHER_CREDIT_PRODUCTS = "other_credit_products"


def _count(value: str | None) -> int | None:
    """An attribute's value as a count (`"9"` -> 9); None when missing or not a whole number >= 0."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        return None
    return int(text)


def ledger_snapshot(session: Session, account_id: str, today: date) -> snapshot.AssessmentInput:
    """The account's snapshot on `today` from the ledger alone."""
    account = session.get(CreditAccount, account_id)
    if account is None:
        raise NotFound(f"Credit account {account_id} was not found.", code="account_not_found")
    customer = session.get(Customer, account.customer_id)
    if customer is None:
        raise NotFound(f"The ledger has no customer {account.customer_id}.", code="customer_not_found")
    bills = session.exec(
        select(Bill).where(Bill.account_id == account.id).order_by(col(Bill.due_date), col(Bill.id))
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
    return snapshot.AssessmentInput(
        as_of=today,
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
        requested_limit_minor=max(account.original_limit_minor, 1),
        bills=tuple(
            snapshot.Bill(
                due_date=bill.due_date,
                amount_due_minor=bill.amount_due_minor,
                paid_minor=bill.paid_minor,
                paid_on=bill.paid_at.date() if bill.paid_at and bill.outstanding_minor == 0 else None,
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
        other_credit_products=_count(fields.get(OTHER_CREDIT_PRODUCTS)),
        fields=fields,
    )
