"""The reviewer's case file as the console shows it: one read of the database, a fixed number of
queries however many bills, documents, statement lines or events the case has, and no call to
Temporal (docs/architecture.md section 6).

Every rule comes from where it lives: what the viewer may do from
`api.review_queue.allowed_actions`, the SLA colour from `api.review_queue.sla_clock`, the
12-month window from `core.ledger.repayment`, the running-balance check from
`core.documents.statement_checks.reconcile`, a status reason's text from
`core.appeals.status_reason`.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from api.document_uploads import preview_type
from api.review_queue import Permission, SlaClock, allowed_actions, sla_clock
from core.appeals.assessment import latest_assessment, stored_assessment
from core.appeals.audit import appeal_events
from core.appeals.service import appeal_documents, get_appeal
from core.appeals.status_reason import StatusReason, localize_status_reason
from core.auth import Principal
from core.db import session_scope
from core.db.case_tables import (
    Appeal,
    AppealEvent,
    ChecklistItem,
    Decision,
    DecisionOutcome,
    Document,
    ReviewTask,
    StatementTransaction,
)
from core.db.ledger_tables import Bill, CreditAccount, Customer
from core.db.staff_tables import StaffMember
from core.documents.checklist import checklist
from core.documents.evidence import withheld_reason
from core.documents.statement_checks import reconcile
from core.documents.statement_model import BalanceMismatch, Transaction
from core.documents.types import DocumentType
from core.errors import NotFound
from core.ledger.repayment import RepaymentRecord, bills_in_last_months, summarise_bills
from core.policy.loader import load_default_policy
from core.policy.model import Policy
from core.policy.scorecard import Assessment

REPAYMENT_MONTHS = 12


@dataclass(frozen=True)
class StatementLine:
    transaction: StatementTransaction
    mismatch: BalanceMismatch | None  # set when the running balance does not add up here


@dataclass(frozen=True)
class StatementTable:
    document: Document
    lines: list[StatementLine]
    opening_minor: int | None
    closing_minor: int | None

    @property
    def mismatches(self) -> list[BalanceMismatch]:
        return [line.mismatch for line in self.lines if line.mismatch is not None]


@dataclass(frozen=True)
class DocumentEntry:
    document: Document
    preview_type: str | None  # "application/pdf", "image/png", ...: shown inline; None: download only
    # Why the file gets no link (core.documents.evidence.Withheld), or None: it may be opened.
    withheld: str | None = None


@dataclass(frozen=True)
class CaseFile:
    task: ReviewTask
    appeal: Appeal
    customer: Customer | None
    account: CreditAccount | None
    bills: list[Bill]
    repayment: RepaymentRecord
    assessment: Assessment | None
    assessment_run: int | None
    documents: list[DocumentEntry]
    statements: list[StatementTable]
    checklist: list[ChecklistItem]
    events: list[AppealEvent]
    decisions: list[Decision]
    permissions: dict[str, Permission]
    sla: SlaClock
    status_reason: StatusReason
    policy: Policy
    # The first review a second (four-eyes) review is checking; None at stage 1.
    first_review: Decision | None = None
    red_flags: list[tuple[Document, dict[str, str]]] = field(default_factory=list)


def _statement_tables(
    documents: list[Document], transactions: list[StatementTransaction]
) -> list[StatementTable]:
    by_document: dict[str, list[StatementTransaction]] = defaultdict(list)
    for tx in transactions:
        by_document[tx.document_id].append(tx)
    tables: list[StatementTable] = []
    for document in documents:
        rows = by_document.get(document.id)
        if not rows:
            continue
        checked = reconcile(
            [
                Transaction(
                    date=tx.posted_on,
                    description=tx.description,
                    amount_minor=tx.amount_minor,
                    balance_minor=tx.balance_minor,
                    counterparty=tx.counterparty,
                    source_row=tx.row,
                )
                for tx in rows
            ]
        )
        at_row = {mismatch.row: mismatch for mismatch in checked.mismatches}
        tables.append(
            StatementTable(
                document=document,
                lines=[StatementLine(tx, at_row.get(tx.row)) for tx in rows],
                opening_minor=checked.opening_minor,
                closing_minor=checked.closing_minor,
            )
        )
    return tables


def _task_and_viewer(session: Session, task_id: str, staff_id: str) -> tuple[ReviewTask, StaffMember | None]:
    """The task and the viewer's staff directory entry (what they may do depends on both), in
    the one query that reads the task: the page's query count stays what it was."""
    found = session.exec(
        select(ReviewTask, StaffMember)
        .outerjoin(StaffMember, col(StaffMember.id) == staff_id)
        .where(ReviewTask.id == task_id)
    ).first()
    if found is None:
        raise NotFound(f"Review task {task_id} was not found.", code="task_not_found")
    return found[0], found[1]


def _withheld(document: Document) -> str | None:
    reason = withheld_reason(document)
    return reason.value if reason is not None else None


def _load(
    session: Session, principal: Principal, task_id: str, today: date, now: datetime, locale: str
) -> CaseFile:
    task, entry = _task_and_viewer(session, task_id, principal.subject)
    appeal = get_appeal(session, task.appeal_id)
    customer = session.get(Customer, appeal.customer_id)
    account = session.get(CreditAccount, appeal.account_id)
    bills = bills_in_last_months(session, appeal.account_id, today, REPAYMENT_MONTHS)
    stored = latest_assessment(session, appeal.id)
    documents = appeal_documents(session, appeal.id)
    transactions = list(
        session.exec(
            select(StatementTransaction)
            .where(StatementTransaction.appeal_id == appeal.id)
            .order_by(col(StatementTransaction.document_id), col(StatementTransaction.row))
        ).all()
    )
    events = appeal_events(session, appeal.id)
    decisions = list(
        session.exec(select(Decision).where(Decision.appeal_id == appeal.id).order_by(col(Decision.id))).all()
    )
    items = checklist(session, appeal.id)
    policy = load_default_policy().policy
    first_review = None
    if task.stage == 2:
        first_review = next(
            (
                d
                for d in reversed(decisions)
                if d.stage == 1
                and d.outcome == DecisionOutcome.APPROVE
                and d.decided_by == task.excluded_reviewer
            ),
            None,
        )
    return CaseFile(
        task=task,
        appeal=appeal,
        customer=customer,
        account=account,
        bills=bills,
        repayment=summarise_bills(bills, today, REPAYMENT_MONTHS),
        assessment=stored_assessment(stored) if stored else None,
        assessment_run=stored.run if stored else None,
        documents=[DocumentEntry(d, preview_type(d), _withheld(d)) for d in documents],
        statements=_statement_tables(
            [d for d in documents if d.doc_type == DocumentType.BANK_STATEMENT], transactions
        ),
        checklist=items,
        events=events,
        decisions=decisions,
        permissions=allowed_actions(task, principal, entry),
        sla=sla_clock(task, now),
        status_reason=localize_status_reason(
            appeal.status_reason, locale, policy.reasons, amount_owed_minor=appeal.amount_owed_minor
        ),
        policy=policy,
        first_review=first_review,
        red_flags=[(d, flag) for d in documents for flag in d.flags],
    )


def load_case_file(
    engine: Engine, principal: Principal, task_id: str, *, today: date, now: datetime, locale: str
) -> CaseFile:
    """Run in a worker thread."""
    with session_scope(engine, read_only=True) as session:
        return _load(session, principal, task_id, today, now, locale)
