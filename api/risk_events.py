"""The use case behind `POST /admin/ledger/events` and `appeals ledger events`: record a batch
of risk events (core/lender/risk_events.py), then start the limit-action workflow of each applied
event. A start the workflow service does not take now is left to the reconciler (the event's
`action_started_at` stays empty)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime

from anyio import to_thread
from sqlalchemy.engine import Engine

from core.db import session_scope
from core.lender.risk_events import BatchResult, EventOutcome, RiskEventIn, mark_started, record_batch
from gateway.temporal import TemporalGateway

log = logging.getLogger(__name__)


async def receive_risk_events(
    engine: Engine,
    gateway: TemporalGateway | None,
    events: Sequence[RiskEventIn],
    *,
    received_from: str,
    now: datetime,
) -> tuple[BatchResult, set[str]]:
    """Records the batch (all or nothing) and starts the workflows; returns the outcome and the
    ids of the events whose workflow was started now."""

    def _record() -> BatchResult:
        with session_scope(engine) as session:
            return record_batch(session, events, received_from=received_from, now=now)

    result = await to_thread.run_sync(_record)
    started = await start_limit_actions(engine, gateway, result.to_start, now=now)
    return result, started


async def start_limit_actions(
    engine: Engine, gateway: TemporalGateway | None, pending: Sequence[EventOutcome], *, now: datetime
) -> set[str]:
    started: set[str] = set()
    if gateway is None:
        return started
    for outcome in pending:
        assert outcome.workflow_id is not None
        try:
            await gateway.start_limit_action(
                workflow_id=outcome.workflow_id, event_id=outcome.id, account_id=outcome.account_id
            )
        except Exception:
            log.warning("limit-action start for risk event %s deferred", outcome.id, exc_info=True)
            break  # the service is down: the reconciler starts the rest
        started.add(outcome.id)
    if started:

        def _mark() -> None:
            with session_scope(engine) as session:
                mark_started(session, sorted(started), at=now)

        await to_thread.run_sync(_mark)
    return started
