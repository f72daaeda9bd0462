"""What the customer portal reads, from the database only (never from Temporal).

Each function runs in a worker thread inside one read-only unit of work and calls the rules of
core/: `get_appeal` with the customer's id (another customer's appeal is not found, as in the
API), `check_eligibility`, `cooldown_ends_on`, the checklist, the outbox, the status reason in
the viewer's language, the deadlines of core/appeals/timing.py. The number of queries does not
grow with the number of events, documents or notices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from sqlalchemy import case, func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from core.appeals.audit import appeal_events
from core.appeals.cooldown import DECLINE_STATUSES, OUTCOME_STATUSES, cooldown_ends_on, cooldowns_end_on
from core.appeals.service import appeal_documents, get_appeal, list_appeals
from core.appeals.status_reason import StatusReason, localize_status_reason
from core.appeals.timing import document_deadline, human_review_deadline
from core.db.case_tables import (
    Appeal,
    AppealEvent,
    ChecklistItem,
    Document,
    DocumentState,
    Notification,
)
from core.db.ledger_tables import CreditAccount
from core.documents.checklist import checklist
from core.errors import NotFound
from core.ledger.eligibility import (
    Eligibility,
    ineligibility_text,
    judge_eligibility,
    overdue_balances_minor,
    restored_by_review,
)
from core.notifications.outbox import IN_APP, list_for_appeal
from core.policy.loader import load_default_policy
from core.settings import Settings
from core.status import DECIDED_STATUSES, WITHDRAWABLE_STATUSES, AppealStatus

S = AppealStatus

# A closed appeal's page keeps polling this long after it closed: the notice that announces
# a withdrawal, an expiry or an ineligibility is written just after the status.
POLL_GRACE: Final = timedelta(seconds=60)

# Each document only moves forward (AWAITING_UPLOAD -> UPLOADED -> VERIFYING -> ACCEPTED or
# REJECTED), so the sum of their ranks grows with every change: a cheap change counter.
_DOCUMENT_RANK = case(
    (col(Document.state) == DocumentState.UPLOADED, 1),
    (col(Document.state) == DocumentState.VERIFYING, 2),
    (col(Document.state).in_([DocumentState.ACCEPTED, DocumentState.REJECTED]), 3),
    else_=0,
)


def _customer_notices(appeal_id: str) -> tuple[ColumnElement[bool], ...]:
    return (
        col(Notification.appeal_id) == appeal_id,
        col(Notification.audience) == "customer",
        col(Notification.channel) == IN_APP,
    )


def change_token(session: Session, appeal: Appeal) -> str:
    """What the appeal page shows changes only when this changes: the appeal's version (every
    status change), its documents' progress (a verdict changes no status) and the customer's
    notices (written just after the status they announce). One query."""
    documents = (
        select(func.coalesce(func.sum(_DOCUMENT_RANK), 0))
        .where(col(Document.appeal_id) == appeal.id)
        .scalar_subquery()
    )
    notices = (
        select(func.count()).select_from(Notification).where(*_customer_notices(appeal.id)).scalar_subquery()
    )
    docs, notes = session.exec(select(documents, notices)).one()
    return f"{appeal.version}.{int(docs)}.{int(notes)}"


def keeps_polling(appeal: Appeal, now: datetime) -> bool:
    return appeal.is_open or appeal.closed_at is None or now - appeal.closed_at < POLL_GRACE


# -- my accounts and appeals -----------------------------------------------------------------


@dataclass(frozen=True)
class AccountRow:
    account: CreditAccount
    eligibility: Eligibility
    open_appeal_id: str | None
    may_appeal_from: date | None  # the decline cool-down's end, if it has not passed

    @property
    def restricted(self) -> bool:
        return self.eligibility.reason_code != "account_not_restricted"

    @property
    def can_appeal(self) -> bool:
        return self.eligibility.eligible and self.open_appeal_id is None and self.may_appeal_from is None

    def refusal(self, locale: str) -> str | None:
        """Why a new appeal is not possible, in `locale` (core's own words)."""
        if self.eligibility.reason_code is None:
            return None
        return ineligibility_text(
            self.eligibility.reason_code, locale, amount_owed_minor=self.eligibility.amount_owed_minor
        )


def _cooldown_days() -> int:
    return load_default_policy().policy.appeals.decline_cooldown_days


def account_rows(
    session: Session, accounts: Sequence[CreditAccount], open_by_account: dict[str, str], today: date
) -> list[AccountRow]:
    """Each account with what its customer can do; three queries whatever the number of accounts."""
    ids = [account.id for account in accounts]
    owed = overdue_balances_minor(session, ids, today)
    restored = restored_by_review(session, ids)
    cooldowns = cooldowns_end_on(session, ids, _cooldown_days())
    rows = []
    for account in accounts:
        open_appeal_id = open_by_account.get(account.id)
        ends_on = cooldowns.get(account.id) if open_appeal_id is None else None
        rows.append(
            AccountRow(
                account,
                judge_eligibility(
                    account, owed.get(account.id, 0), restored_by_review=account.id in restored
                ),
                open_appeal_id,
                ends_on if ends_on is not None and today < ends_on else None,
            )
        )
    return rows


@dataclass(frozen=True)
class Home:
    accounts: list[AccountRow]
    appeals: list[Appeal]
    next_cursor: str | None


def home(session: Session, customer_id: str, today: date, cursor: str | None, limit: int = 20) -> Home:
    accounts = session.exec(
        select(CreditAccount).where(CreditAccount.customer_id == customer_id).order_by(col(CreditAccount.id))
    ).all()
    open_by_account = {
        row.account_id: row.id
        for row in session.exec(
            select(Appeal).where(Appeal.customer_id == customer_id, col(Appeal.is_open).is_(True))
        ).all()
    }
    appeals, next_cursor = list_appeals(
        session, customer_id=customer_id, status=None, cursor=cursor, limit=limit
    )
    return Home(account_rows(session, accounts, open_by_account, today), appeals, next_cursor)


def own_account(session: Session, customer_id: str, account_id: str, today: date) -> AccountRow:
    """One of the customer's accounts; another's is not found (as `create_appeal` says)."""
    account = session.get(CreditAccount, account_id)
    if account is None or account.customer_id != customer_id:
        raise NotFound(f"Credit account {account_id} was not found.", code="account_not_found")
    open_appeal = session.exec(
        select(Appeal.id).where(Appeal.account_id == account_id, col(Appeal.is_open).is_(True))
    ).first()
    return account_rows(session, [account], {account_id: open_appeal} if open_appeal else {}, today)[0]


# -- the appeal page -------------------------------------------------------------------------


@dataclass(frozen=True)
class AppealPage:
    appeal: Appeal
    token: str
    polling: bool
    now: datetime
    events: list[AppealEvent]
    checklist: list[ChecklistItem]
    documents: list[Document]
    notices: list[Notification]  # the customer's in-app notices, newest first
    reason: StatusReason  # in the viewer's language
    outcome: AppealStatus | None  # the latest decision's status, if any
    may_appeal_from: date | None  # after a decline: the first day a new appeal is accepted
    document_deadline: datetime | None
    human_review_deadline: datetime | None

    @property
    def status(self) -> AppealStatus:
        return AppealStatus(self.appeal.status)

    @property
    def can_upload(self) -> bool:
        return self.status is S.AWAITING_DOCUMENTS

    @property
    def can_withdraw(self) -> bool:
        return self.status in WITHDRAWABLE_STATUSES

    @property
    def can_ask_human_review(self) -> bool:
        # The workflow keeps the window (its timer closes the appeal when it ends), as the
        # request's use case and the workflow's validator do: no second clock decides here.
        return self.status is S.AUTO_DECLINED and self.human_review_deadline is not None

    @property
    def declined(self) -> bool:
        return self.outcome in DECLINE_STATUSES

    @property
    def shows_decision(self) -> bool:
        """A decision stands (not while a human review of an automatic decline is running)."""
        return self.outcome is not None and (
            self.status in DECIDED_STATUSES or self.status in (S.AUTO_DECLINED, S.CLOSED)
        )

    @property
    def partial(self) -> bool:
        limit = self.appeal.decided_limit_minor
        return limit is not None and limit < self.appeal.requested_limit_minor

    @property
    def today(self) -> date:
        return self.now.date()  # the business date, in UTC as everywhere (core/clock.py)

    def days_left(self, deadline: datetime) -> int:
        """Days left before `deadline`, counted up as the workflow's reminders count them
        ("within 7 days"); 0 when less than a day is left."""
        left = deadline - self.now
        if left < timedelta(days=1):
            return 0
        return -(-left // timedelta(days=1))


def _latest(
    events: list[AppealEvent], statuses: tuple[AppealStatus, ...] | frozenset[AppealStatus]
) -> AppealEvent | None:
    return next((e for e in reversed(events) if e.to_status in statuses), None)


def appeal_page(
    session: Session,
    settings: Settings,
    appeal: Appeal,
    *,
    locale: str,
    now: datetime,
    token: str | None = None,
) -> AppealPage:
    """Everything the appeal page shows, for an appeal already read with `get_appeal`."""
    events = appeal_events(session, appeal.id)
    documents = appeal_documents(session, appeal.id)
    notices = [
        row
        for row in list_for_appeal(session, appeal.id)
        if row.audience == "customer" and row.channel == IN_APP
    ]
    notices.reverse()
    outcome_event = _latest(events, OUTCOME_STATUSES)
    outcome = AppealStatus(outcome_event.to_status) if outcome_event and outcome_event.to_status else None
    status = AppealStatus(appeal.status)
    may_appeal_from = None
    if outcome in DECLINE_STATUSES and status in (S.AUTO_DECLINED, S.DECLINED, S.CLOSED):
        may_appeal_from = cooldown_ends_on(session, appeal.account_id, _cooldown_days())
    collecting = _latest(events, (S.AWAITING_DOCUMENTS,)) if status is S.AWAITING_DOCUMENTS else None
    auto_declined = _latest(events, (S.AUTO_DECLINED,)) if status is S.AUTO_DECLINED else None
    return AppealPage(
        appeal=appeal,
        token=token or change_token(session, appeal),
        polling=keeps_polling(appeal, now),
        now=now,
        events=events,
        checklist=checklist(session, appeal.id),
        documents=documents,
        notices=notices,
        reason=localize_status_reason(
            appeal.status_reason,
            locale,
            load_default_policy().policy.reasons,
            amount_owed_minor=appeal.amount_owed_minor,
        ),
        outcome=outcome,
        may_appeal_from=may_appeal_from,
        document_deadline=document_deadline(collecting.at, settings) if collecting else None,
        human_review_deadline=human_review_deadline(auto_declined.at, settings) if auto_declined else None,
    )


def own_appeal(session: Session, appeal_id: str, customer_id: str) -> Appeal:
    """The customer's appeal; another's is not found (the API's rule, core `get_appeal`)."""
    return get_appeal(session, appeal_id, customer_id=customer_id)
