"""bench/temporal_bench.py compares appeals with a no-op workflow that replays an appeal's
shape (bench/noop_workflow.py): replayed on the dev server, the no-op costs the same actions as
the real history it was derived from, heartbeats aside."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client
from temporalio.worker import Worker

from bench.noop_workflow import NoopAppealWorkflow, noop_local, noop_step, plan_from_history
from core.settings import Settings
from tests.eventually import eventually, patience
from tests.workflows.actions import count_actions
from tests.workflows.appeal_paths import AppealPath, run_paths
from tests.workflows.conftest import unique_queue

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture
def s3(settings: Settings) -> Any:
    from core.storage import make_s3_client

    return make_s3_client(settings)


async def test_the_noop_replays_an_auto_approve_appeal_action_for_action(
    temporal_client: Client, settings: Settings, sqlite_engine: Engine, s3: Any
) -> None:
    (real,) = await run_paths(temporal_client, settings, sqlite_engine, s3, (AppealPath.AUTO_APPROVE,))
    plan = plan_from_history(real.history.events)
    totals = plan.totals()
    assert totals["activities"] == real.count.activities_scheduled
    assert totals["upserts"] == real.count.search_attribute_upserts
    assert totals["local-activity tasks"] == real.count.local_activity_tasks
    assert totals["signals"] == real.count.signals_received

    queue = unique_queue()
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with Worker(
            temporal_client,
            task_queue=queue,
            workflows=[NoopAppealWorkflow],
            activities=[noop_step, noop_local],
            activity_executor=executor,
        ):
            handle = await temporal_client.start_workflow(
                NoopAppealWorkflow.run, plan, id=f"noop-{queue}", task_queue=queue
            )

            async def waiting_for_documents() -> bool:
                described = (await handle.describe()).raw_description
                return described.workflow_execution_info.history_length > 3 and not (
                    described.pending_activities or described.HasField("pending_workflow_task")
                )

            # As the driver uploads: once the workflow waits for the documents.
            for number in range(totals["signals"]):
                await eventually(waiting_for_documents, what="the no-op to wait for a document")
                await handle.signal(NoopAppealWorkflow.document_uploaded, {"document_id": str(number)})
            assert await asyncio.wait_for(handle.result(), patience(60)) == totals["signals"]
    noop = count_actions(await handle.fetch_history())

    assert real.count.heartbeats is not None
    assert noop.actions == real.count.actions - real.count.heartbeats, (
        noop.breakdown(),
        real.count.breakdown(),
    )
    assert noop.timers_started == real.count.timers_started
    assert noop.local_activity_tasks == real.count.local_activity_tasks
    assert noop.search_attribute_upserts == real.count.search_attribute_upserts
