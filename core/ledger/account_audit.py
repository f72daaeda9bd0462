"""The hash-chained audit trail of a credit account (docs/lender-loop.md): limit actions, review
restores and invitations, each an `account_event` whose hash covers its canonical content and the
previous event's hash, exactly as an appeal's trail (core/appeals/audit.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.appeals.audit import GENESIS_HASH, ChainBreak, chain_hash, verify_chain
from core.db.ledger_tables import CreditAccount
from core.db.lender_tables import AccountEvent
from core.errors import NotFound


def _canonical(event: AccountEvent) -> dict[str, Any]:
    return {
        "account_id": event.account_id,
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "kind": event.kind,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }


def account_event_hash(event: AccountEvent) -> str:
    return chain_hash(_canonical(event))


def _as_json(details: dict[str, Any]) -> dict[str, Any]:
    """The details as the JSON column hands them back (dates as ISO text, tuples as lists), so
    the hash computed now is the hash recomputed from the stored row."""
    out: dict[str, Any] = json.loads(json.dumps(details, ensure_ascii=False, default=str))
    return out


def lock_account(session: Session, account_id: str) -> CreditAccount:
    """The account row, locked for the rest of the transaction (PostgreSQL: FOR UPDATE; SQLite:
    the write transaction is already exclusive, BEGIN IMMEDIATE)."""
    account = session.exec(
        select(CreditAccount).where(CreditAccount.id == account_id).with_for_update()
    ).one_or_none()
    if account is None:
        raise NotFound(f"Credit account {account_id} was not found.", code="account_not_found")
    return account


def record_account_event(
    session: Session, account_id: str, *, kind: str, actor: str, details: dict[str, Any], at: datetime
) -> AccountEvent:
    """Appends an event to the account's trail in the caller's transaction. The account row is
    locked first, so two writers never take the same sequence number."""
    if at.tzinfo is None:
        raise ValueError("an account event's time must be timezone-aware (UTC)")
    lock_account(session, account_id)
    last = session.exec(
        select(AccountEvent)
        .where(AccountEvent.account_id == account_id)
        .order_by(col(AccountEvent.seq).desc())
        .limit(1)
    ).first()
    event = AccountEvent(
        account_id=account_id,
        seq=(last.seq + 1) if last else 1,
        at=at,
        actor=actor,
        kind=kind,
        details=_as_json(details),
        prev_hash=last.hash if last else GENESIS_HASH,
        hash="",
    )
    event.hash = account_event_hash(event)
    session.add(event)
    session.flush()
    return event


def account_events(session: Session, account_id: str) -> list[AccountEvent]:
    """One account's audit trail, oldest first."""
    return list(
        session.exec(
            select(AccountEvent).where(AccountEvent.account_id == account_id).order_by(col(AccountEvent.seq))
        ).all()
    )


def account_trail_break(session: Session, account_id: str) -> ChainBreak | None:
    """The first broken link of the account's trail (what and where), or None."""
    return verify_chain(account_events(session, account_id), account_event_hash)


def verify_account_trail(session: Session, account_id: str) -> int | None:
    """The sequence number of the first broken event of the account's trail, or None if intact."""
    broken = account_trail_break(session, account_id)
    return broken.seq if broken is not None else None


@dataclass(frozen=True)
class AccountVerdict:
    account_id: str
    events: int
    broken: ChainBreak | None


def scan_accounts(
    session: Session, *, account_id: str | None = None, batch: int = 2_000
) -> Iterator[AccountVerdict]:
    """One verdict per account that has a trail (or the one asked for, trail or not), in
    account-id order, streaming the events by (account_id, seq)."""
    query = select(AccountEvent).order_by(col(AccountEvent.account_id), col(AccountEvent.seq))
    if account_id is not None:
        query = query.where(AccountEvent.account_id == account_id)
    current: str | None = None
    events: list[AccountEvent] = []
    for event in session.exec(query.execution_options(yield_per=batch)):
        if current is not None and event.account_id != current:
            yield AccountVerdict(current, len(events), verify_chain(events, account_event_hash))
            events = []
        current = event.account_id
        events.append(event)
    if current is not None:
        yield AccountVerdict(current, len(events), verify_chain(events, account_event_hash))
    elif account_id is not None and session.get(CreditAccount, account_id) is not None:
        yield AccountVerdict(account_id, 0, None)
