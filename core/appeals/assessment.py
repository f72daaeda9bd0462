"""Running the automated checks for an appeal and storing the outcome."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from core.appeals.service import get_appeal
from core.checks import RuleParameters, assess_repayment
from core.db.case_tables import Assessment
from core.db.ledger_tables import CreditAccount
from core.db.types import utcnow
from core.ledger.repayment import repayment_record


def run_assessment(
    session: Session, appeal_id: str, run: int, params: RuleParameters, today: date
) -> Assessment:
    """Idempotent per (appeal, run): a retried activity returns the stored outcome."""
    existing = session.exec(
        select(Assessment).where(Assessment.appeal_id == appeal_id, Assessment.run == run)
    ).first()
    if existing is not None:
        return existing
    appeal = get_appeal(session, appeal_id)
    account = session.get(CreditAccount, appeal.account_id)
    assert account is not None
    record = repayment_record(session, appeal.account_id, today)
    outcome = assess_repayment(
        record,
        params,
        original_limit_minor=account.original_limit_minor,
        requested_limit_minor=appeal.requested_limit_minor,
    )
    assessment = Assessment(
        appeal_id=appeal_id,
        run=run,
        rule_id=outcome.rule_id,
        rule_hash=outcome.rule_hash,
        recommendation=outcome.recommendation,
        suggested_limit_minor=outcome.suggested_limit_minor,
        reasons=outcome.reasons,
        inputs=outcome.inputs,
        created_at=utcnow(),
    )
    session.add(assessment)
    session.flush()
    return assessment
