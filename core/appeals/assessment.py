"""Running the automated checks for an appeal: the input snapshot is gathered from the ledger
and the case store, scored by the versioned policy, and stored with the policy's hash."""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from sqlalchemy import select as sa_select
from sqlmodel import Session, col, select

from core.appeals.service import get_appeal
from core.db.case_tables import (
    Assessment,
    Document,
    DocumentState,
    Recommendation,
    ShadowAssessment,
    StatementTransaction,
)
from core.db.ledger_tables import CreditAccount, Customer
from core.db.types import utcnow
from core.documents.types import DocumentType
from core.errors import NotFound
from core.ledger.snapshot import ledger_part
from core.policy import inputs as snapshot
from core.policy.loader import LoadedPolicy
from core.policy.scorecard import Assessment as PolicyAssessment
from core.policy.scorecard import assess

log = logging.getLogger(__name__)

# The longest error text kept on a shadow row that could not be scored.
SHADOW_ERROR_CHARS = 2000


def build_input(session: Session, appeal_id: str, today: date) -> snapshot.AssessmentInput:
    appeal = get_appeal(session, appeal_id)
    account = session.get(CreditAccount, appeal.account_id)
    customer = session.get(Customer, appeal.customer_id)
    if account is None or customer is None:
        raise NotFound(f"The ledger has no account {appeal.account_id}.", code="account_not_found")
    ledger = ledger_part(session, account, customer)
    # Columns, not entities: a statement has hundreds of rows, and the ORM's identity map and
    # instance state for each cost more than the scoring of all of them.
    transactions = session.execute(
        sa_select(
            col(StatementTransaction.posted_on),
            col(StatementTransaction.description),
            col(StatementTransaction.amount_minor),
            col(StatementTransaction.balance_minor),
            col(StatementTransaction.counterparty),
        )
        .where(col(StatementTransaction.appeal_id) == appeal_id)
        .order_by(col(StatementTransaction.posted_on), col(StatementTransaction.id))
    ).all()
    accepted = session.exec(
        select(Document).where(Document.appeal_id == appeal_id, Document.state == DocumentState.ACCEPTED)
    ).all()
    accepted_types = sorted({DocumentType(d.doc_type) for d in accepted}, key=list(DocumentType).index)
    return snapshot.AssessmentInput(
        as_of=today,
        customer=ledger.customer,
        account=ledger.account,
        requested_limit_minor=appeal.requested_limit_minor,
        bills=ledger.bills,
        loan_applications=ledger.loan_applications,
        other_credit_products=ledger.other_credit_products,
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
        # The customer's attributes from outside the ledger: what `input:NAME` characteristics read.
        fields=ledger.fields,
    )


def run_assessment(
    session: Session,
    appeal_id: str,
    run: int,
    policy: LoadedPolicy,
    today: date,
    *,
    challenger: LoadedPolicy | None = None,
) -> Assessment:
    """Idempotent per (appeal, run): a retried activity returns the stored outcome.

    With a `challenger`, the same input snapshot is also scored by it in shadow, in the same
    transaction (`run_shadow_assessment`); that never changes or fails the appeal's own
    assessment."""
    existing = session.exec(
        select(Assessment).where(Assessment.appeal_id == appeal_id, Assessment.run == run)
    ).first()
    if existing is not None:
        if challenger is not None:
            run_shadow_assessment(session, existing, challenger)
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
        reasons=_reasons(outcome),
        four_eyes_required=outcome.four_eyes_required,
        route=outcome.route.value,
        inputs=outcome.input.model_dump(mode="json"),
        result=outcome.model_dump(mode="json"),
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    if challenger is not None:
        run_shadow_assessment(session, row, challenger, snapshot_input=outcome.input)
    return row


def _reasons(outcome: PolicyAssessment) -> list[dict[str, Any]]:
    return [
        {"code": r.code, "en": r.en, "zh-CN": r.zh_cn, "characteristic": r.characteristic}
        for r in outcome.reasons
    ]


def run_shadow_assessment(
    session: Session,
    champion: Assessment,
    challenger: LoadedPolicy,
    *,
    snapshot_input: snapshot.AssessmentInput | None = None,
) -> ShadowAssessment:
    """Score the champion assessment's input snapshot with the challenger and store it apart.

    Idempotent on the key (appeal_id, run, rule_hash): a retried activity finds the row written
    by the attempt that committed and adds nothing. A challenger that cannot score the snapshot
    (it raises) is recorded with recommendation None and the error, and logged: the appeal goes
    on with its own assessment. Nothing that decides an appeal reads these rows."""
    existing = session.exec(
        select(ShadowAssessment).where(
            ShadowAssessment.appeal_id == champion.appeal_id,
            ShadowAssessment.run == champion.run,
            ShadowAssessment.rule_hash == challenger.content_hash,
        )
    ).first()
    if existing is not None:
        return existing
    row = ShadowAssessment(
        appeal_id=champion.appeal_id,
        run=champion.run,
        role="challenger",
        rule_id=challenger.policy_id,
        rule_hash=challenger.content_hash,
        created_at=utcnow(),
    )
    try:
        inp = snapshot_input
        if inp is None:  # a run assessed before the challenger was deployed: its stored snapshot
            inp = snapshot.AssessmentInput.model_validate(champion.inputs)
        outcome = assess(challenger, inp)
        row.score = outcome.score
        row.pd = None if outcome.pd is None else str(outcome.pd)
        row.recommendation = Recommendation(outcome.recommendation.value)
        row.route = outcome.route.value
        row.reasons = _reasons(outcome)
        row.result = outcome.model_dump(mode="json")
    except Exception as exc:  # a challenger's failure is data for the comparison, not an outage
        log.warning(
            "challenger %s (sha256 %s) could not score appeal %s run %s",
            challenger.policy_id,
            challenger.content_hash,
            champion.appeal_id,
            champion.run,
            exc_info=True,
        )
        row.error = f"{type(exc).__name__}: {exc}"[:SHADOW_ERROR_CHARS]
    session.add(row)
    session.flush()
    return row


def stored_assessment(row: Assessment) -> PolicyAssessment:
    return PolicyAssessment.model_validate(row.result)


def latest_assessment(session: Session, appeal_id: str) -> Assessment | None:
    return session.exec(
        select(Assessment).where(Assessment.appeal_id == appeal_id).order_by(col(Assessment.run).desc())
    ).first()
