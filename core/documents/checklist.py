"""The per-appeal document checklist: what is required (from policy and ledger facts) and
where each item stands."""

from __future__ import annotations

from datetime import date

from sqlmodel import Session, select

from core.db.case_tables import Appeal, ChecklistItem, ChecklistState, Document, DocumentState
from core.db.ledger_tables import Customer
from core.db.types import utcnow
from core.ledger.repayment import repayment_record
from core.policy.loader import LoadedPolicy
from core.policy.requirements import document_requirements


def prepare_checklist(
    session: Session, appeal: Appeal, policy: LoadedPolicy, today: date
) -> list[ChecklistItem]:
    """Idempotent: an appeal's checklist is written once and then only its states change."""
    existing = list(session.exec(select(ChecklistItem).where(ChecklistItem.appeal_id == appeal.id)).all())
    if existing:
        return existing
    customer = session.get(Customer, appeal.customer_id)
    record = repayment_record(session, appeal.account_id, today)
    requirements = document_requirements(
        policy.policy,
        requested_limit_minor=appeal.requested_limit_minor,
        declared_monthly_income_minor=customer.declared_monthly_income_minor if customer else None,
        worst_dpd_12m=record.worst_days_past_due,
    )
    items = [
        ChecklistItem(
            appeal_id=appeal.id,
            doc_type=requirement.document_type.value,
            required=True,
            reasons=[reason.value for reason in requirement.reasons],
            min_full_months=requirement.min_full_months,
        )
        for requirement in requirements
    ]
    session.add_all(items)
    session.flush()
    return items


def checklist(session: Session, appeal_id: str) -> list[ChecklistItem]:
    return list(
        session.exec(
            select(ChecklistItem).where(ChecklistItem.appeal_id == appeal_id).order_by(ChecklistItem.id)  # type: ignore[arg-type]
        ).all()
    )


def missing_types(session: Session, appeal_id: str) -> list[str]:
    return [
        item.doc_type
        for item in checklist(session, appeal_id)
        if item.required and item.state != ChecklistState.ACCEPTED
    ]


_STATE_FOR_DOCUMENT = {
    DocumentState.UPLOADED: ChecklistState.RECEIVED,
    DocumentState.VERIFYING: ChecklistState.VERIFYING,
    DocumentState.ACCEPTED: ChecklistState.ACCEPTED,
    DocumentState.REJECTED: ChecklistState.REJECTED,
}


def record_document_state(session: Session, document: Document) -> ChecklistItem | None:
    """Mirrors a document's state on its checklist item. An accepted item stays accepted: a
    later rejected file of the same type does not undo it."""
    item = session.exec(
        select(ChecklistItem).where(
            ChecklistItem.appeal_id == document.appeal_id,
            ChecklistItem.doc_type == document.doc_type,
        )
    ).first()
    if item is None:
        # A document nobody asked for (OTHER, or an extra type) is kept but not required.
        item = ChecklistItem(appeal_id=document.appeal_id, doc_type=document.doc_type, required=False)
    if item.state == ChecklistState.ACCEPTED and document.id != item.document_id:
        return item
    state = _STATE_FOR_DOCUMENT.get(DocumentState(document.state))
    if state is None:
        return item
    item.state = state
    item.document_id = document.duplicate_of or document.id
    item.rejection_reason = document.rejection_reason if state == ChecklistState.REJECTED else None
    item.rejection_reason_zh = document.rejection_reason_zh if state == ChecklistState.REJECTED else None
    item.updated_at = utcnow()
    session.add(item)
    session.flush()
    return item


def request_items(session: Session, appeal_id: str, doc_types: list[str]) -> list[str]:
    """A reviewer asks for more: each requested type is (again) required and missing."""
    for doc_type in doc_types:
        item = session.exec(
            select(ChecklistItem).where(
                ChecklistItem.appeal_id == appeal_id, ChecklistItem.doc_type == doc_type
            )
        ).first()
        if item is None:
            item = ChecklistItem(appeal_id=appeal_id, doc_type=doc_type)
        item.required = True
        item.state = ChecklistState.MISSING
        item.document_id = None
        item.rejection_reason = item.rejection_reason_zh = None
        item.reasons = sorted({*item.reasons, "requested_by_reviewer"})
        item.updated_at = utcnow()
        session.add(item)
    session.flush()
    return missing_types(session, appeal_id)
