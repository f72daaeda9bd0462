"""Catches up on messages that the API recorded but could not hand to Temporal (Temporal
down, a crash between the DB commit and the call): nothing a customer sent is lost."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.appeals.service import mark_workflow_started
from core.db import session_scope
from core.db.case_tables import Appeal, Document, DocumentState
from core.db.types import utcnow
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

    async def run_once(self) -> int:
        done = 0
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
