"""Applying a decided limit to the ledger, exactly once per appeal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from core.db.ledger_tables import CreditAccount, LimitEvent, LimitEventKind
from core.db.types import utcnow
from core.errors import NotFound
from core.ledger.eligibility import status_after_restore


@dataclass(frozen=True)
class AppliedLimit:
    limit_event_id: int
    from_limit_minor: int
    to_limit_minor: int
    newly_applied: bool


def apply_restore(
    session: Session, *, appeal_id: str, account_id: str, new_limit_minor: int, source: str = "appeals"
) -> AppliedLimit:
    """Writes a RESTORE limit event referencing the appeal and sets the account's limit.

    The unique appeal_id on limit_event makes a retry (or a concurrent duplicate) find the
    first application instead of applying the change again. `source` says who applied it:
    "appeals" (our ledger is the system of record) or "credit-line-api" (the ledger mirrors a
    change the external API accepted)."""
    existing = session.exec(select(LimitEvent).where(LimitEvent.appeal_id == appeal_id)).first()
    if existing is not None:
        assert existing.id is not None
        return AppliedLimit(existing.id, existing.from_limit_minor, existing.to_limit_minor, False)
    account = session.get(CreditAccount, account_id)
    if account is None:
        raise NotFound(f"Credit account {account_id} was not found.", code="account_not_found")
    event = restore_limit(
        session,
        account,
        new_limit_minor=new_limit_minor,
        reason="appeal_approved",
        source=source,
        appeal_id=appeal_id,
        at=utcnow(),
    )
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        existing = session.exec(select(LimitEvent).where(LimitEvent.appeal_id == appeal_id)).one()
        assert existing.id is not None
        return AppliedLimit(existing.id, existing.from_limit_minor, existing.to_limit_minor, False)
    assert event.id is not None
    return AppliedLimit(event.id, event.from_limit_minor, event.to_limit_minor, True)


def restore_limit(
    session: Session,
    account: CreditAccount,
    *,
    new_limit_minor: int,
    reason: str,
    source: str,
    at: datetime,
    appeal_id: str | None = None,
) -> LimitEvent:
    """The one way a limit goes up: a RESTORE limit event from the current limit, and the
    account's new limit and status (ACTIVE at the original limit, REDUCED below it), added to the
    caller's transaction. Exactly-once is the caller's key: an appeal's unique `appeal_id` here,
    the portfolio review's unique `review_action` row (core/lender/review.py)."""
    event = LimitEvent(
        account_id=account.id,
        kind=LimitEventKind.RESTORE,
        from_limit_minor=account.current_limit_minor,
        to_limit_minor=new_limit_minor,
        reason=reason,
        source=source,
        appeal_id=appeal_id,
        created_at=at,
    )
    account.current_limit_minor = new_limit_minor
    # Below the original limit the account stays REDUCED: the customer may appeal again.
    account.status = status_after_restore(
        original_limit_minor=account.original_limit_minor, new_limit_minor=new_limit_minor
    )
    session.add(event)
    session.add(account)
    return event
