"""The document sweep's Temporal Schedule on the dev server (issue 13, item 8): created as a
worker starts it, kept up to date with the settings (an operator's pause kept), and its run
(DocumentSweepWorkflow, the sweep_documents activity on a worker built as the real one) deletes
a rejected file from the real S3 server and records it in the database."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleActionStartWorkflow,
    ScheduleHandle,
)

from activities.appeal import AppealActivities
from activities.sweep import SweepActivities, SweepResult
from core.appeals.audit import appeal_events
from core.clock import SYSTEM_CLOCK, FixedClock
from core.db import session_scope
from core.documents.sweep import PURGE_EVENT
from core.settings import Settings
from core.storage import make_s3_client
from launcher.sweep_schedule import ensure_sweep_schedule, sweep_schedule_id
from launcher.worker import build_worker, start_sweep_schedule
from tests.core.documents.test_verification import Case
from tests.eventually import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOSTILE = b"<!-- x --><html><script>alert(1)</script>"


@pytest_asyncio.fixture(loop_scope="session")
async def schedule(temporal_client: Client, settings: Settings) -> AsyncIterator[ScheduleHandle]:
    """The schedule as a worker start leaves it; deleted afterwards (the dev server is shared)."""
    await start_sweep_schedule(temporal_client, settings)
    handle = temporal_client.get_schedule_handle(sweep_schedule_id(settings))
    try:
        yield handle
    finally:
        await handle.delete()


async def test_a_worker_start_creates_the_schedule_and_keeps_it_current(
    temporal_client: Client, settings: Settings, schedule: ScheduleHandle
) -> None:
    described = await schedule.describe()
    assert described.id == f"document-sweep-{settings.temporal_task_queue}"
    assert [spec.every for spec in described.schedule.spec.intervals] == [settings.document_sweep_interval]
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "DocumentSweep" and action.task_queue == settings.temporal_task_queue
    listed = [s.id async for s in await temporal_client.list_schedules()]
    assert schedule.id in listed  # what the Web UI's Schedules page lists

    # An operator pauses it; a worker started with other settings updates it, pause kept.
    await schedule.pause(note="paused by an operator")
    changed = settings.model_copy(update={"document_sweep_interval": timedelta(minutes=20)})
    await ensure_sweep_schedule(temporal_client, changed)
    described = await schedule.describe()
    assert [spec.every for spec in described.schedule.spec.intervals] == [timedelta(minutes=20)]
    assert described.schedule.state.paused


async def test_the_scheduled_run_sweeps_a_rejected_file(
    temporal_client: Client, settings: Settings, sqlite_engine: Engine, schedule: ScheduleHandle
) -> None:
    s3: Any = make_s3_client(settings)
    case = Case(sqlite_engine, settings, s3)
    rejected = case.document(case.verify(HOSTILE, "text/plain", "OTHER").document_id)
    assert rejected.state == "REJECTED"
    # The worker's clock says the retention period has passed.
    later = FixedClock(SYSTEM_CLOCK.now() + settings.document_leftover_retention + timedelta(days=1))
    sweep = SweepActivities(engine=sqlite_engine, s3_client=s3, settings=settings, clock=later)
    appeal = AppealActivities(engine=sqlite_engine, s3_client=s3, settings=settings)
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with build_worker(temporal_client, settings, appeal, executor, sweep=sweep):
            await schedule.trigger()

            async def started() -> str:
                actions = (await schedule.describe()).info.recent_actions
                execution = actions[-1].action
                assert isinstance(execution, ScheduleActionExecutionStartWorkflow)
                return execution.workflow_id

            workflow_id = await eventually(started, what="the schedule to start a sweep")
            result = await temporal_client.get_workflow_handle(workflow_id, result_type=SweepResult).result()
    assert result.rejected == 1 and result.failed == 0
    purged = case.document(rejected.id)
    assert purged.purged_at == later.now()
    listing = s3.list_object_versions(Bucket=settings.s3_bucket, Prefix=rejected.s3_key)
    assert listing.get("Versions", []) == [] and listing.get("DeleteMarkers", []) == []
    with session_scope(sqlite_engine, read_only=True) as session:
        [event] = [e for e in appeal_events(session, case.appeal_id) if e.kind == PURGE_EVENT]
    assert event.details["document_id"] == rejected.id and event.actor == "system:document-sweep"


async def test_schedule_ids_are_per_task_queue(settings: Settings) -> None:
    other = settings.model_copy(update={"temporal_task_queue": f"q-{uuid.uuid4().hex[:6]}"})
    assert sweep_schedule_id(settings) != sweep_schedule_id(other)
