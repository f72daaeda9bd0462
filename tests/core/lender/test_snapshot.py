"""The ledger-only snapshot: bills, loan applications and attributes; no documents."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine

from core.db import session_scope
from core.db.ledger_tables import CustomerAttribute, LoanApplication
from core.errors import NotFound
from core.lender.snapshot import ledger_snapshot
from core.policy.characteristics import compute_characteristics
from core.policy.loader import load_default_policy
from tests.factories import make_customer

TODAY = date(2026, 11, 30)


def test_the_snapshot_reads_the_ledger_alone(engine: Engine) -> None:
    c = make_customer(engine, days_past_due=(0, 0, 40), unpaid_minor=10_000, today=TODAY)
    with session_scope(engine) as session:
        for day in (date(2026, 11, 20), date(2026, 11, 25), date(2026, 11, 28), date(2026, 6, 1)):
            session.add(
                LoanApplication(
                    customer_id=c.customer_id,
                    applied_on=day,
                    lender="QuickCash",
                    amount_minor=50_000,
                    small_loan=True,
                )
            )
        session.add_all(
            [
                CustomerAttribute(
                    customer_id=c.customer_id, name="other_credit_products", value="9", source="cr"
                ),
                CustomerAttribute(customer_id=c.customer_id, name="bureau_grade", value="B", source="cr"),
            ]
        )
    with session_scope(engine, read_only=True) as session:
        inp = ledger_snapshot(session, c.account_id, TODAY)
    assert inp.as_of == TODAY and len(inp.bills) == 3 and len(inp.loan_applications) == 4
    assert inp.other_credit_products == 9 and inp.fields == {
        "other_credit_products": "9",
        "bureau_grade": "B",
    }
    assert inp.transactions == () and inp.accepted_document_types == () and inp.red_flags == ()
    assert inp.requested_limit_minor == c.original_limit_minor
    features = compute_characteristics(inp, load_default_policy().policy)
    assert features.small_loan_apps_30d == 3 and features.other_credit_products == 9
    assert features.max_dpd_now >= 40 and features.overdue_bills_now == 1


def test_a_non_numeric_product_count_is_missing_and_an_unknown_account_not_found(engine: Engine) -> None:
    c = make_customer(engine, today=TODAY)
    with session_scope(engine) as session:
        session.add(
            CustomerAttribute(
                customer_id=c.customer_id, name="other_credit_products", value="n/a", source="x"
            )
        )
    with session_scope(engine, read_only=True) as session:
        assert ledger_snapshot(session, c.account_id, TODAY).other_credit_products is None
        with pytest.raises(NotFound):
            ledger_snapshot(session, "no-such-account", TODAY)
