"""The demo customers get the outcome their story promises on any day the demo is started."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings

from core.demo_documents import statement_csv
from core.documents.statements import parse_csv_statement
from core.months import add_months
from core.policy import inputs as snapshot
from core.policy.loader import load_default_policy
from core.policy.scorecard import assess
from core.seed import BILL_AMOUNT_MINOR, DEMO_CUSTOMERS, DemoCustomer, demo_bills
from tests.core.policy.factories import from_statement
from tests.dates import days, with_issue_days

POLICY = load_default_policy()
# What the walkthrough (README, tests/e2e) uploads and asks for.
EXPECTED = {
    "c-1001": ((snapshot.DocumentType.BANK_STATEMENT,), 800_000, "AUTO_APPROVE"),
    "c-1002": (
        (snapshot.DocumentType.BANK_STATEMENT, snapshot.DocumentType.CREDIT_REPORT),
        900_000,
        "MANUAL_REVIEW",
    ),
}


def _input(
    demo: DemoCustomer, today: date, documents: tuple[snapshot.DocumentType, ...], requested: int
) -> snapshot.AssessmentInput:
    opened = add_months(today, -30)
    return snapshot.AssessmentInput(
        as_of=today,
        customer=snapshot.Customer(
            declared_monthly_income_minor=1_200_000, employer_name="Demo Trading Co.", customer_since=opened
        ),
        account=snapshot.Account(
            original_limit_minor=demo.original_limit_minor,
            current_limit_minor=demo.current_limit_minor,
            status=snapshot.AccountStatus(demo.account_status.value),
            opened_on=opened,
        ),
        requested_limit_minor=requested,
        bills=tuple(
            snapshot.Bill(
                due_date=b.due_date,
                amount_due_minor=BILL_AMOUNT_MINOR,
                paid_minor=0 if b.paid_at is None else BILL_AMOUNT_MINOR,
                paid_on=None if b.paid_at is None else b.paid_at.date(),
                days_past_due=b.days_past_due,
            )
            for b in demo_bills(demo, today)
        ),
        transactions=from_statement(
            parse_csv_statement(statement_csv(today, seed=int(demo.customer_id[2:]))).transactions
        ),
        accepted_document_types=documents,
    )


@settings(max_examples=80, deadline=None)
@with_issue_days()
@given(days)
def test_demo_customers_get_their_outcome_on_any_day(today: date) -> None:
    for demo in DEMO_CUSTOMERS:
        if demo.customer_id not in EXPECTED:
            continue
        documents, requested, recommendation = EXPECTED[demo.customer_id]
        outcome = assess(POLICY, _input(demo, today, documents, requested))
        assert outcome.recommendation.value == recommendation, (demo.customer_id, outcome.score)
