"""Catches up on what was recorded but not passed on: messages the API could not hand to
Temporal (Temporal down, a crash between the DB commit and the call), and notices a channel
did not take (the outbox relay). Nothing a customer sent is lost; no notice is sent twice.

Starts and signals are sent again with backoff per appeal or document (after `grace`, then
twice as long each time, up to RESEND_MAX_DELAY), not on every pass: a workflow that is slow to
act on a signal is not flooded, and one that missed it hears again within seconds.

A file left UPLOADED (or VERIFYING) on an appeal that has moved on past document collection
should not exist (uploads and the workflow's steps take the appeal's row lock, so a file is
recorded before a step reads the documents or refused after). If one is found all the same, it
is verified here and an audit event says so on the appeal, for its reviewer or an operator
(and a warning in the worker's log): evidence is never left unread.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.risk_events import start_limit_actions
from core.appeals.audit import append_event
from core.appeals.service import mark_workflow_started
from core.clock import SYSTEM_CLOCK, Clock
from core.db import session_scope
from core.db.case_tables import Appeal, Document, DocumentState, Notification
from core.db.lender_tables import AccountNotice
from core.documents.verification import verify_document
from core.lender.limit_actions import pending_actions
from core.lender.risk_events import EventOutcome
from core.notifications.channels import senders_from_settings
from core.notifications.outbox import OutboxTable, deliver_row, undelivered
from core.settings import Settings
from core.status import AppealStatus
from gateway.temporal import TemporalGateway

log = logging.getLogger(__name__)

RESEND_MAX_DELAY = timedelta(minutes=5)
# Statuses whose files are rightly unchecked: the appeal takes files (they sit UPLOADED until
# checked), or it ended before any assessment (withdrawn, expired) and none will be.
_NOT_STRANDED = (
    AppealStatus.SUBMITTED,
    AppealStatus.AWAITING_DOCUMENTS,
    AppealStatus.WITHDRAWN,
    AppealStatus.EXPIRED,
)


@dataclass
class ResendSchedule:
    """When each item (an appeal to start, a document to signal about) is next due: at once,
    then after `first`, twice as long each time, at most `longest`."""

    first: timedelta
    longest: timedelta = RESEND_MAX_DELAY
    _next: dict[str, tuple[int, datetime]] = field(default_factory=dict)

    def due(self, key: str, now: datetime) -> bool:
        entry = self._next.get(key)
        return entry is None or entry[1] <= now

    def sent(self, key: str, now: datetime) -> None:
        attempts = self._next.get(key, (0, now))[0] + 1
        delay = min(self.first * 2 ** (attempts - 1), self.longest)
        self._next[key] = (attempts, now + delay)

    def keep_only(self, keys: set[str]) -> None:
        """Forgets the items that no longer need sending."""
        self._next = {key: entry for key, entry in self._next.items() if key in keys}


@dataclass
class ReconcilePass:
    """What one pass did."""

    relayed: int = 0  # outbox rows sent (or tried)
    started: int = 0  # workflows started
    signalled: int = 0  # document signals sent again
    checked_late: int = 0  # files checked after their appeal moved on
    limit_actions_started: int = 0  # limit-action workflows of risk events started late


class Reconciler:
    def __init__(
        self,
        engine: Engine,
        gateway: TemporalGateway,
        settings: Settings,
        *,
        s3_client: Any = None,
        grace: timedelta = timedelta(seconds=10),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._engine = engine
        self._gateway = gateway
        self._settings = settings
        self._s3 = s3_client
        self._grace = grace
        self._clock = clock
        self._senders: dict[str, Any] | None = None
        self._starts = ResendSchedule(first=grace)
        self._signals = ResendSchedule(first=grace)
        self._limit_starts = ResendSchedule(first=grace)

    def _unstarted(self) -> list[Appeal]:
        with session_scope(self._engine, read_only=True) as session:
            return list(
                session.exec(
                    select(Appeal)
                    .where(
                        col(Appeal.workflow_started).is_(False),
                        Appeal.created_at < self._clock.now() - self._grace,
                    )
                    .limit(100)
                ).all()
            )

    def _unsignalled(self) -> list[Document]:
        # UPLOADED documents of appeals still collecting: the signal may never have arrived.
        # A repeated signal is harmless: the workflow reads the files from the database.
        return self._documents_past_grace(
            Document.state == DocumentState.UPLOADED,
            Appeal.status == AppealStatus.AWAITING_DOCUMENTS,
        )

    def _stranded(self) -> list[Document]:
        """Files never checked on appeals past document collection (see the module's docstring)."""
        return self._documents_past_grace(
            col(Document.state).in_([DocumentState.UPLOADED, DocumentState.VERIFYING]),
            col(Appeal.status).not_in(_NOT_STRANDED),
        )

    def _documents_past_grace(self, *conditions: Any) -> list[Document]:
        """Up to 100 documents, older than the grace, meeting `conditions` on them and their appeal."""
        with session_scope(self._engine, read_only=True) as session:
            return list(
                session.exec(
                    select(Document)
                    .join(Appeal, col(Appeal.id) == col(Document.appeal_id))
                    .where(*conditions, Document.created_at < self._clock.now() - self._grace)
                    .limit(100)
                ).all()
            )

    def _check_stranded(self, document: Document) -> None:
        outcome = verify_document(
            self._engine,
            self._s3,
            self._settings,
            appeal_id=document.appeal_id,
            document_id=document.id,
            today=self._clock.today(),
        )
        with session_scope(self._engine) as session:
            appeal = session.get(Appeal, document.appeal_id)
            append_event(
                session,
                appeal_id=document.appeal_id,
                at=self._clock.now(),
                actor="reconciler",
                kind="document_checked_late",
                details={
                    "document_id": document.id,
                    "doc_type": document.doc_type,
                    "accepted": outcome.accepted,
                    "rejection_code": outcome.rejection_code,
                    "appeal_status": appeal.status.value if appeal else None,
                },
            )
        log.warning(
            "document %s of appeal %s was left unchecked after the appeal moved on; checked now "
            "(accepted=%s)",
            document.id,
            document.appeal_id,
            outcome.accepted,
        )

    def _unstarted_limit_actions(self) -> list[EventOutcome]:
        """Applied risk events whose limit-action workflow the API could not start
        (core/lender/risk_events.py), received more than the grace period ago."""
        with session_scope(self._engine, read_only=True) as session:
            return [
                EventOutcome(0, row.id, row.account_id, row.outcome, row.action_workflow_id, needs_start=True)
                for row in pending_actions(session)
                if row.received_at < self._clock.now() - self._grace
            ]

    def _relay_notices(self) -> int:
        """Sends the outbox rows that are due (core/notifications/outbox.py `undelivered`): an
        appeal's notices and an account's (limit actions, the portfolio review) alike."""
        with session_scope(self._engine, read_only=True) as session:
            due: list[tuple[OutboxTable, int]] = [(Notification, i) for i in undelivered(session)]
            due += [(AccountNotice, i) for i in undelivered(session, table=AccountNotice)]
        if due and self._senders is None:
            self._senders = senders_from_settings(self._settings)
        for table, notification_id in due:
            try:
                assert self._senders is not None
                deliver_row(self._engine, notification_id, self._senders, table=table)
            except Exception:  # recorded on the row; tried again after its backoff
                log.warning("relay could not send %s %s", table.__tablename__, notification_id, exc_info=True)
        return len(due)

    async def run_once(self) -> ReconcilePass:
        done = ReconcilePass(relayed=await to_thread.run_sync(self._relay_notices))
        now = self._clock.now()
        unstarted = await to_thread.run_sync(self._unstarted)
        self._starts.keep_only({appeal.id for appeal in unstarted})
        for appeal in unstarted:
            if not self._starts.due(appeal.id, now):
                continue
            self._starts.sent(appeal.id, now)
            await self._gateway.start_appeal(appeal)
            await to_thread.run_sync(self._mark_started, appeal.id)
            log.info("reconciler started the workflow of appeal %s", appeal.id)
            done.started += 1
        pending = await to_thread.run_sync(self._unstarted_limit_actions)
        self._limit_starts.keep_only({event.id for event in pending})
        due = [event for event in pending if self._limit_starts.due(event.id, now)]
        for event in due:
            self._limit_starts.sent(event.id, now)
        started = await start_limit_actions(self._engine, self._gateway, due, now=now)
        done.limit_actions_started += len(started)
        unsignalled = await to_thread.run_sync(self._unsignalled)
        self._signals.keep_only({document.id for document in unsignalled})
        for document in unsignalled:
            if not self._signals.due(document.id, now):
                continue
            self._signals.sent(document.id, now)
            await self._gateway.document_uploaded(document.appeal_id, document.id)
            done.signalled += 1
        for document in await to_thread.run_sync(self._stranded):
            await to_thread.run_sync(self._check_stranded, document)
            done.checked_late += 1
        return done

    def _mark_started(self, appeal_id: str) -> None:
        with session_scope(self._engine) as session:
            mark_workflow_started(session, appeal_id)

    async def run_forever(self, interval: float = 5.0) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # keep reconciling whatever one pass hit
                log.warning("reconciler pass failed", exc_info=True)
            await asyncio.sleep(interval)
