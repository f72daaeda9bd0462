"""The hash-chained audit trail of an appeal.

Each event's hash covers its own canonical content and the previous event's hash, so a
changed, removed or reordered event breaks the chain from that point on.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core.db.case_tables import AppealEvent
from core.status import AppealStatus

GENESIS_HASH = "0" * 64


def _canonical(event: AppealEvent) -> bytes:
    body = {
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
    return json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def event_hash(event: AppealEvent) -> str:
    return hashlib.sha256(_canonical(event)).hexdigest()


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
    last = session.exec(
        select(AppealEvent)
        .where(AppealEvent.appeal_id == appeal_id)
        .order_by(col(AppealEvent.seq).desc())
        .limit(1)
    ).first()
    event = AppealEvent(
        appeal_id=appeal_id,
        seq=(last.seq + 1) if last else 1,
        at=at,
        actor=actor,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        details=details or {},
        prev_hash=last.hash if last else GENESIS_HASH,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    problem: str


def verify_chain(events: list[AppealEvent]) -> ChainBreak | None:
    """Returns the first broken link of one appeal's events (ordered by id), or None."""
    prev = GENESIS_HASH
    for expected_seq, event in enumerate(events, start=1):
        if event.seq != expected_seq:
            return ChainBreak(event.seq, f"expected event #{expected_seq}, found #{event.seq}")
        if event.prev_hash != prev:
            return ChainBreak(event.seq, "does not follow the previous event (removed or reordered)")
        if event_hash(event) != event.hash:
            return ChainBreak(event.seq, "content changed after it was recorded")
        prev = event.hash
    return None
