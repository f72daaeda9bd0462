"""Catches up on what was recorded but not passed on: messages the API could not hand to
Temporal (Temporal down, a crash between the DB commit and the call), and notices a channel
did not take (the outbox relay). Nothing a customer sent is lost; no notice is sent twice."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import Any

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.appeals.service import mark_workflow_started
from core.db import session_scope
from core.db.case_tables import Appeal, Document, DocumentState
from core.db.types import utcnow
from core.notifications.channels import senders_from_settings
from core.notifications.outbox import deliver, undelivered
from core.settings import Settings
from core.status import AppealStatus
from gateway.temporal import TemporalGateway

log = logging.getLogger(__name__)


class Reconciler:
    def __init__(
        self,
        engine: Engine,
        gateway: TemporalGateway,
        settings: Settings,
        *,
        grace: timedelta = timedelta(seconds=20),
    ) -> None:
        self._engine = engine
        self._gateway = gateway
        self._settings = settings
        self._grace = grace
        self._senders: dict[str, Any] | None = None

    def _unstarted(self) -> list[Appeal]:
        with session_scope(self._engine, read_only=True) as session:
            return list(
                session.exec(
                    select(Appeal)
                    .where(
                        col(Appeal.workflow_started).is_(False),
                        Appeal.created_at < utcnow() - self._grace,
                    )
                    .limit(100)
                ).all()
            )

    def _unsignalled(self) -> list[Document]:
        # UPLOADED documents of appeals still collecting: the signal may never have arrived.
        # A repeated signal is harmless: the workflow ignores document ids it already has.
        with session_scope(self._engine, read_only=True) as session:
            return list(
                session.exec(
                    select(Document)
                    .join(Appeal, col(Appeal.id) == col(Document.appeal_id))
                    .where(
                        Document.state == DocumentState.UPLOADED,
                        Appeal.status == AppealStatus.AWAITING_DOCUMENTS,
                        Document.created_at < utcnow() - self._grace,
                    )
                    .limit(100)
                ).all()
            )

    def _relay_notices(self) -> int:
        """Sends the outbox rows that are due (core/notifications/outbox.py `undelivered`)."""
        with session_scope(self._engine, read_only=True) as session:
            due = undelivered(session)
        if due and self._senders is None:
            self._senders = senders_from_settings(self._settings)
        for notification_id in due:
            try:
                assert self._senders is not None
                deliver(self._engine, notification_id, self._senders)
            except Exception:  # recorded on the row; tried again after its backoff
                log.warning("relay could not send notification %s", notification_id, exc_info=True)
        return len(due)

    async def run_once(self) -> int:
        done = await to_thread.run_sync(self._relay_notices)
        for appeal in await to_thread.run_sync(self._unstarted):
            await self._gateway.start_appeal(appeal)
            await to_thread.run_sync(self._mark_started, appeal.id)
            log.info("reconciler started the workflow of appeal %s", appeal.id)
            done += 1
        for document in await to_thread.run_sync(self._unsignalled):
            await self._gateway.document_uploaded(document.appeal_id, document.id)
            done += 1
        return done

    def _mark_started(self, appeal_id: str) -> None:
        with session_scope(self._engine) as session:
            mark_workflow_started(session, appeal_id)

    async def run_forever(self, interval: float = 15.0) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # keep reconciling whatever one pass hit
                log.warning("reconciler pass failed", exc_info=True)
            await asyncio.sleep(interval)
