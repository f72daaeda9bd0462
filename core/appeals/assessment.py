"""Running the automated checks for an appeal: the input snapshot is gathered from the ledger
and the case store, scored by the versioned policy, and stored with the policy's hash."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, col, select

from core.appeals.service import get_appeal
from core.db.case_tables import Assessment, Document, DocumentState, Recommendation, StatementTransaction
from core.db.ledger_tables import Bill, CreditAccount, Customer, LoanApplication
from core.db.types import utcnow
from core.documents.types import DocumentType
from core.errors import NotFound
from core.policy import inputs as snapshot
from core.policy.loader import LoadedPolicy
from core.policy.scorecard import Assessment as PolicyAssessment
from core.policy.scorecard import assess


def build_input(session: Session, appeal_id: str, today: date) -> snapshot.AssessmentInput:
    appeal = get_appeal(session, appeal_id)
    account = session.get(CreditAccount, appeal.account_id)
    customer = session.get(Customer, appeal.customer_id)
    if account is None or customer is None:
        raise NotFound(f"The ledger has no account {appeal.account_id}.", code="account_not_found")
    bills = session.exec(select(Bill).where(Bill.account_id == account.id).order_by(col(Bill.due_date))).all()
    loans = session.exec(select(LoanApplication).where(LoanApplication.customer_id == customer.id)).all()
    transactions = session.exec(
        select(StatementTransaction)
        .where(StatementTransaction.appeal_id == appeal_id)
        .order_by(col(StatementTransaction.posted_on), col(StatementTransaction.id))
    ).all()
    accepted = session.exec(
        select(Document).where(Document.appeal_id == appeal_id, Document.state == DocumentState.ACCEPTED)
    ).all()
    accepted_types = sorted({DocumentType(d.doc_type) for d in accepted}, key=list(DocumentType).index)
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
        requested_limit_minor=appeal.requested_limit_minor,
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
        transactions=tuple(
            snapshot.StatementTransaction(
                date=tx.posted_on,
                description=tx.description,
                amount_minor=tx.amount_minor,
                balance_minor=tx.balance_minor,
                counterparty=tx.counterparty,
            )
            for tx in transactions
        ),
        accepted_document_types=tuple(accepted_types),
        red_flags=tuple(
            snapshot.RedFlag(code=flag["code"], explanation=flag.get("en", flag["code"]))
            for document in accepted
            for flag in document.flags
        ),
        employment_document_accepted=DocumentType.EMPLOYMENT_PROOF in accepted_types,
    )


def run_assessment(
    session: Session, appeal_id: str, run: int, policy: LoadedPolicy, today: date
) -> Assessment:
    """Idempotent per (appeal, run): a retried activity returns the stored outcome."""
    existing = session.exec(
        select(Assessment).where(Assessment.appeal_id == appeal_id, Assessment.run == run)
    ).first()
    if existing is not None:
        return existing
    outcome = assess(policy, build_input(session, appeal_id, today))
    row = Assessment(
        appeal_id=appeal_id,
        run=run,
        rule_id=outcome.policy_id,
        rule_hash=outcome.policy_hash,
        score=outcome.score,
        risk_tier=outcome.risk_tier.value,
        recommendation=Recommendation(outcome.recommendation.value),
        suggested_limit_minor=outcome.suggested_limit_minor,
        reasons=[
            {"code": r.code, "en": r.en, "zh-CN": r.zh_cn, "characteristic": r.characteristic}
            for r in outcome.reasons
        ],
        four_eyes_required=outcome.four_eyes_required,
        route=outcome.route.value,
        inputs=outcome.input.model_dump(mode="json"),
        result=outcome.model_dump(mode="json"),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    return row


def stored_assessment(row: Assessment) -> PolicyAssessment:
    return PolicyAssessment.model_validate(row.result)


def latest_assessment(session: Session, appeal_id: str) -> Assessment | None:
    return session.exec(
        select(Assessment).where(Assessment.appeal_id == appeal_id).order_by(col(Assessment.run).desc())
    ).first()
