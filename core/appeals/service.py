"""Appeal case store: creating appeals, reading them, and the status projection."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, and_, col, or_, select

from core import cursors
from core.appeals.audit import append_event
from core.appeals.cooldown import cooldown_ends_on
from core.db.case_tables import Appeal, Document
from core.db.ledger_tables import AccountStatus, CreditAccount
from core.db.types import utcnow
from core.errors import Conflict, InvalidInput, NotFound
from core.idempotency import check_same_request, fingerprint
from core.logs import TRANSITION_LOGGER, log_event
from core.policy.loader import load_default_policy
from core.status import AppealStatus, can_transition, is_open


def workflow_id_for(appeal_id: str) -> str:
    return f"appeal-{appeal_id}"


@dataclass(frozen=True)
class NewAppeal:
    customer_id: str
    account_id: str
    requested_limit_minor: int
    customer_statement: str = ""
    idempotency_key: str | None = None

    @property
    def fingerprint(self) -> str:
        """What this submission asks for, by whom (core/idempotency.py): the API's request
        and the portal's form for the same appeal have the same one."""
        body = {
            "account_id": self.account_id,
            "requested_limit_minor": self.requested_limit_minor,
            "statement": self.customer_statement,
        }
        return fingerprint("POST", "/appeals", f"customer:{self.customer_id}", body)


def create_appeal(session: Session, new: NewAppeal, *, today: date | None = None) -> tuple[Appeal, bool]:
    """Records a SUBMITTED appeal. Returns (appeal, created); a repeated idempotency key
    returns the first appeal instead of a second one, and is refused (422
    `idempotency_key_reused`) when it came with another request. `today` (default: the system
    clock's) decides whether a decline's cool-down is over."""
    existing = _by_idempotency_key(session, new)
    if existing is not None:
        return existing, False

    account = session.get(CreditAccount, new.account_id)
    if account is None or account.customer_id != new.customer_id:
        raise NotFound(f"Credit account {new.account_id} was not found.", code="account_not_found")
    if new.requested_limit_minor > account.original_limit_minor:
        raise InvalidInput(
            "The requested limit is above the account's original limit of "
            f"{account.original_limit_minor} minor units.",
            code="requested_limit_above_original",
            original_limit_minor=account.original_limit_minor,
        )
    same_request = _open_appeal_or_raise(session, new)
    if same_request is not None:
        return same_request, False
    _raise_if_cooling_down(session, new.account_id, today or utcnow().date())

    now = utcnow()
    appeal_id = str(uuid.uuid4())
    appeal = Appeal(
        id=appeal_id,
        customer_id=new.customer_id,
        account_id=new.account_id,
        requested_limit_minor=new.requested_limit_minor,
        customer_statement=new.customer_statement,
        status=AppealStatus.SUBMITTED,
        idempotency_key=new.idempotency_key,
        idempotency_fingerprint=new.fingerprint if new.idempotency_key else None,
        workflow_id=workflow_id_for(appeal_id),
        created_at=now,
        updated_at=now,
    )
    session.add(appeal)
    try:
        session.flush()
    except IntegrityError:
        # Lost a race with a concurrent submission for the same account or key: a request
        # with the same key (a double click) gets the appeal the other one created.
        session.rollback()
        existing = _by_idempotency_key(session, new)
        if existing is not None:
            return existing, False
        _open_appeal_or_raise(session, new)
        raise
    append_event(
        session,
        appeal_id=appeal_id,
        at=now,
        actor=f"customer:{new.customer_id}",
        kind="submitted",
        to_status=AppealStatus.SUBMITTED,
        details={
            "account_id": new.account_id,
            "requested_limit_minor": new.requested_limit_minor,
            "account_status": AccountStatus(account.status).value,
        },
    )
    return appeal, True


def _by_idempotency_key(session: Session, new: NewAppeal) -> Appeal | None:
    """The appeal a request with this key created, if it asked for the same; Invalid input
    `idempotency_key_reused` if that request asked for something else."""
    if not new.idempotency_key:
        return None
    found = session.exec(
        select(Appeal).where(
            Appeal.customer_id == new.customer_id,
            Appeal.idempotency_key == new.idempotency_key,
        )
    ).first()
    if found is not None:
        check_same_request(found.idempotency_fingerprint, new.fingerprint)
    return found


def _open_appeal_or_raise(session: Session, new: NewAppeal) -> Appeal | None:
    """Conflict if the account has an open appeal, unless it is this very request's: a
    concurrent request with the same key may have committed it since the key was looked up."""
    open_appeal = session.exec(
        select(Appeal).where(Appeal.account_id == new.account_id, col(Appeal.is_open).is_(True))
    ).first()
    if open_appeal is None:
        return None
    if (
        new.idempotency_key
        and open_appeal.idempotency_key == new.idempotency_key
        and open_appeal.customer_id == new.customer_id
    ):
        check_same_request(open_appeal.idempotency_fingerprint, new.fingerprint)
        return open_appeal
    raise Conflict(
        f"Account {new.account_id} already has an open appeal ({open_appeal.id}).",
        code="open_appeal_exists",
        open_appeal_id=open_appeal.id,
    )


def _raise_if_cooling_down(session: Session, account_id: str, today: date) -> None:
    cooldown_days = load_default_policy().policy.appeals.decline_cooldown_days
    ends_on = cooldown_ends_on(session, account_id, cooldown_days)
    if ends_on is not None and today < ends_on:
        raise Conflict(
            f"The last appeal on account {account_id} was declined; a new appeal can be submitted "
            f"from {ends_on.isoformat()} ({cooldown_days} days after the decision).",
            code="decline_cooldown",
            may_appeal_from=ends_on.isoformat(),
        )


def mark_workflow_started(session: Session, appeal_id: str) -> None:
    appeal = session.get(Appeal, appeal_id)
    if appeal is not None and not appeal.workflow_started:
        appeal.workflow_started = True
        session.add(appeal)


def get_appeal(session: Session, appeal_id: str, *, customer_id: str | None = None) -> Appeal:
    """Another customer's appeal is reported as missing, not as forbidden."""
    appeal = session.get(Appeal, appeal_id)
    check_visible(appeal_id, appeal.customer_id if appeal else None, customer_id=customer_id)
    assert appeal is not None
    return appeal


def lock_appeal(session: Session, appeal_id: str) -> None:
    """The appeal's row lock for this transaction. Every writer of an appeal takes it before
    anything else of the appeal (its review tasks, its audit trail): one order, so two writers
    wait for each other instead of deadlocking, and never race for the next event number."""
    session.exec(select(Appeal.id).where(Appeal.id == appeal_id).with_for_update()).first()


def check_visible(appeal_id: str, owner: str | None, *, customer_id: str | None) -> None:
    """NotFound unless the appeal exists (`owner`, its customer, is None when it does not) and
    the reader may see it: staff (`customer_id` None) any appeal, a customer their own only.
    Another customer's appeal is reported as missing, not as forbidden."""
    if owner is None or (customer_id is not None and owner != customer_id):
        raise NotFound(f"Appeal {appeal_id} was not found.", code="appeal_not_found")


def appeal_documents(session: Session, appeal_id: str) -> list[Document]:
    """The files sent for one appeal, oldest first."""
    return list(
        session.exec(
            select(Document)
            .where(Document.appeal_id == appeal_id)
            .order_by(col(Document.created_at), col(Document.id))
        ).all()
    )


def _encode_cursor(appeal: Appeal) -> str:
    return cursors.encode([appeal.created_at.isoformat(), appeal.id])


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        created_at, appeal_id = cursors.decode(cursor)
        return cursors.instant(created_at), cursors.identifier(appeal_id)
    except (ValueError, TypeError) as exc:
        raise InvalidInput("The cursor is not valid.", code="invalid_cursor") from exc


def list_appeals(
    session: Session,
    *,
    customer_id: str,
    status: AppealStatus | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Appeal], str | None]:
    """Newest first, keyset-paginated on (created_at, id)."""
    query = select(Appeal).where(Appeal.customer_id == customer_id)
    if status is not None:
        query = query.where(Appeal.status == status)
    if cursor:
        created_at, appeal_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                col(Appeal.created_at) < created_at,
                and_(col(Appeal.created_at) == created_at, col(Appeal.id) < appeal_id),
            )
        )
    query = query.order_by(col(Appeal.created_at).desc(), col(Appeal.id).desc()).limit(limit + 1)
    rows = list(session.exec(query).all())
    next_cursor = _encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    return rows[:limit], next_cursor


@dataclass(frozen=True)
class Transition:
    appeal_id: str
    to_status: AppealStatus
    at: datetime
    actor: str = "workflow"
    reason: str | None = None
    details: dict[str, Any] | None = None
    fields: dict[str, Any] | None = None  # projection columns that change with the status


PROJECTED_FIELDS = frozenset({"amount_owed_minor", "decided_limit_minor"})


transition_log = logging.getLogger(TRANSITION_LOGGER)


@event.listens_for(Session, "after_commit")
def _log_committed_transitions(session: Session) -> None:
    # One line per status change, once it is committed. IDs and codes only: a reason may
    # quote the customer, so it stays in the case store.
    for fields in session.info.pop(_COMMITTED_LATER, []):
        log_event(transition_log, logging.INFO, "appeal_transition", **fields)


@event.listens_for(Session, "after_rollback")
def _forget_rolled_back_transitions(session: Session) -> None:
    session.info.pop(_COMMITTED_LATER, None)


_COMMITTED_LATER = "appeal_transitions"


def apply_transition(session: Session, transition: Transition) -> bool:
    """Moves the projection to a new status. Returns False when it was already applied
    (a retried activity), raises Conflict when the move is not allowed."""
    appeal = session.get(Appeal, transition.appeal_id)
    if appeal is None:
        raise NotFound(f"Appeal {transition.appeal_id} was not found.", code="appeal_not_found")
    current = AppealStatus(appeal.status)
    if current == transition.to_status:
        return False
    if not can_transition(current, transition.to_status):
        raise Conflict(
            f"Appeal {appeal.id} cannot move from {current} to {transition.to_status}.",
            code="invalid_transition",
        )
    session.info.setdefault(_COMMITTED_LATER, []).append(
        {
            "appeal_id": appeal.id,
            "from_status": str(current),
            "to_status": str(transition.to_status),
            "actor": transition.actor,
        }
    )
    appeal.status = transition.to_status
    appeal.is_open = is_open(transition.to_status)
    appeal.version += 1
    appeal.updated_at = transition.at
    if transition.reason is not None:
        appeal.status_reason = transition.reason
    if not appeal.is_open:
        appeal.closed_at = transition.at
    for name, value in (transition.fields or {}).items():
        if name not in PROJECTED_FIELDS:
            raise ValueError(f"{name} is not a projected field")
        setattr(appeal, name, value)
    session.add(appeal)
    append_event(
        session,
        appeal_id=appeal.id,
        at=transition.at,
        actor=transition.actor,
        kind="status_changed",
        from_status=current,
        to_status=transition.to_status,
        details={
            **(transition.details or {}),
            **({"reason": transition.reason} if transition.reason else {}),
        },
    )
    return True
