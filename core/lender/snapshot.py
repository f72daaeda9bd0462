"""The ledger-only snapshot (docs/lender-loop.md, "Ledger-only snapshot"): the `AssessmentInput`
that limit actions and the portfolio review score, built from the ledger alone. Bills, loan
applications elsewhere and the customer's attributes (`customer_attribute`; one named
`other_credit_products` fills that field, as a credit report would); no statement, no documents,
no red flags. The requested limit is the account's original limit (what a restore would ask for)."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session

from core.db.ledger_tables import CreditAccount, Customer
from core.errors import NotFound
from core.ledger.snapshot import ledger_part
from core.policy import inputs as snapshot


def ledger_snapshot(session: Session, account_id: str, today: date) -> snapshot.AssessmentInput:
    """The account's snapshot on `today` from the ledger alone."""
    account = session.get(CreditAccount, account_id)
    if account is None:
        raise NotFound(f"Credit account {account_id} was not found.", code="account_not_found")
    customer = session.get(Customer, account.customer_id)
    if customer is None:
        raise NotFound(f"The ledger has no customer {account.customer_id}.", code="customer_not_found")
    part = ledger_part(session, account, customer)
    return snapshot.AssessmentInput(
        as_of=today,
        customer=part.customer,
        account=part.account,
        requested_limit_minor=max(account.original_limit_minor, 1),
        bills=part.bills,
        loan_applications=part.loan_applications,
        other_credit_products=part.other_credit_products,
        fields=part.fields,
    )
