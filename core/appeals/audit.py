"""The hash-chained audit trail of an appeal.

Each event's hash covers its own canonical content and the previous event's hash, so a
changed, removed or reordered event breaks the chain from that point on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.db.case_tables import AppealEvent
from core.status import AppealStatus

GENESIS_HASH = "0" * 64


def chain_hash(body: dict[str, Any]) -> str:
    """SHA-256 of an event's canonical JSON (sorted keys, no spaces): one definition for every
    hash-chained trail (an appeal's here, an account's in core/ledger/account_audit.py)."""
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _canonical(event: AppealEvent) -> dict[str, Any]:
    return {
        "appeal_id": event.appeal_id,
        "seq": event.seq,
        "at": event.at.isoformat(),
        "actor": event.actor,
        "kind": event.kind,
        "from_status": event.from_status,
        "to_status": event.to_status,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }


def event_hash(event: AppealEvent) -> str:
    return chain_hash(_canonical(event))


# A writer that lost the race for the next number tries this many times in all.
APPEND_ATTEMPTS = 5
SEQ_CONSTRAINT = "uq_appeal_event_seq"  # core/db/case_tables.py AppealEvent


def append_event(
    session: Session,
    *,
    appeal_id: str,
    at: datetime,
    actor: str,
    kind: str,
    from_status: AppealStatus | None = None,
    to_status: AppealStatus | None = None,
    details: dict[str, Any] | None = None,
) -> AppealEvent:
    """The next event of the appeal's trail. Its writers hold the appeal's row lock
    (core/appeals/service.py lock_appeal), which keeps the numbers whole; a writer that does not
    could, on PostgreSQL, read the same last event as another. Its insert then waits for the
    other to commit, fails on the (appeal, seq) key, and is made again on the event now last,
    inside a savepoint so that the rest of its transaction stands. SQLite lets one writer in at
    a time, so there it is added as is (and flushed with the rest of its transaction)."""

    def next_event() -> AppealEvent:
        last = session.exec(  # (seq, hash) of the newest event; autoflushes one still pending
            select(AppealEvent.seq, AppealEvent.hash)
            .where(AppealEvent.appeal_id == appeal_id)
            .order_by(col(AppealEvent.seq).desc())
            .limit(1)
        ).first()
        event = AppealEvent(
            appeal_id=appeal_id,
            seq=(last[0] + 1) if last else 1,
            at=at,
            actor=actor,
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            details=details or {},
            prev_hash=last[1] if last else GENESIS_HASH,
            hash="",
        )
        event.hash = event_hash(event)
        return event

    if session.get_bind().dialect.name == "sqlite":
        event = next_event()
        session.add(event)
        return event
    attempts = 0
    while True:
        attempts += 1
        event = next_event()
        try:
            with session.begin_nested():
                session.add(event)
            return event
        except IntegrityError as exc:
            if SEQ_CONSTRAINT not in str(exc.orig) or attempts == APPEND_ATTEMPTS:
                raise


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    problem: str


def appeal_events(session: Session, appeal_id: str) -> list[AppealEvent]:
    """One appeal's audit trail, oldest first."""
    return list(
        session.exec(
            select(AppealEvent).where(AppealEvent.appeal_id == appeal_id).order_by(col(AppealEvent.seq))
        ).all()
    )


def verify_chain(events: Sequence[Any], hash_of: Callable[[Any], str] | None = None) -> ChainBreak | None:
    """Returns the first broken link of one appeal's events (in seq order), or None.
    `hash_of` recomputes an event's hash (default: an appeal event's, `event_hash`).

    The break names the event where the chain stops holding: for a removed event its
    (missing) number, for a reordered one the event found out of place, for a changed one
    that event. Removing the newest events leaves a valid, shorter chain: only an anchor
    kept outside the chain (the head hash) can show that.
    """
    present = {event.seq for event in events}
    # Stored hashes survive tampering with the other fields, so they still say which event
    # each link was made after.
    recorded_as = {event.hash: event.seq for event in events}
    prev, expected_seq = GENESIS_HASH, 1
    for event in events:
        if event.seq != expected_seq:
            if expected_seq in present or event.seq < expected_seq:
                return ChainBreak(event.seq, f"out of order: found where event #{expected_seq} belongs")
            missing = (
                f"#{expected_seq}" if event.seq == expected_seq + 1 else f"#{expected_seq}-#{event.seq - 1}"
            )
            where = (
                f"jumps from #{expected_seq - 1} to #{event.seq}"
                if expected_seq > 1
                else f"starts at #{event.seq}"
            )
            return ChainBreak(expected_seq, f"removed: the trail {where} ({missing} missing)")
        if event.prev_hash != prev:
            follows = recorded_as.get(event.prev_hash)
            if follows is not None and follows != expected_seq - 1:
                return ChainBreak(
                    event.seq, f"reordered: it was recorded after the event now numbered #{follows}"
                )
            before = f"event #{expected_seq - 1}" if expected_seq > 1 else "the start of the trail"
            return ChainBreak(
                event.seq,
                f"does not follow {before}: an event between them was removed (and the rest renumbered) "
                "or its link was altered",
            )
        if (hash_of or event_hash)(event) != event.hash:
            return ChainBreak(event.seq, "content changed after it was recorded")
        prev = event.hash
        expected_seq += 1
    return None
