"""The document sweep's activity: one run of core/documents/sweep.py on the injected clock.

Synchronous (SQLAlchemy, boto3): it runs in the worker's thread pool, like the appeal steps.
Each run is idempotent: what an earlier attempt deleted and recorded is not found again.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from temporalio import activity

from core.clock import SYSTEM_CLOCK, Clock
from core.documents.sweep import sweep_leftovers
from core.settings import Settings


class SweepInput(BaseModel):
    """What the schedule starts each sweep with: how old a leftover must be, and how much one
    run may do (the rest waits for the next run)."""

    retention: timedelta
    batch: int = Field(default=200, gt=0)


class SweepResult(BaseModel):
    rejected: int
    never_completed: int
    orphans: int
    multipart_aborted: int
    failed: int


class SweepActivities:
    def __init__(
        self, *, engine: Engine, s3_client: Any, settings: Settings, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._engine = engine
        self._s3 = s3_client
        self._settings = settings
        self._clock = clock

    @activity.defn(name="sweep_documents")
    def sweep_documents(self, inp: SweepInput) -> SweepResult:
        report = sweep_leftovers(
            self._engine,
            self._s3,
            self._settings,
            now=self._clock.now(),
            retention=inp.retention,
            batch=inp.batch,
        )
        return SweepResult(
            rejected=report.rejected,
            never_completed=report.never_completed,
            orphans=report.orphans,
            multipart_aborted=report.multipart_aborted,
            failed=report.failed,
        )

    def all(self) -> list[Any]:
        return [self.sweep_documents]
