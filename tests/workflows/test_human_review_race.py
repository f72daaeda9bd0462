"""A human review asked for the moment the automatic decline shows.

The checks' activity records AUTO_DECLINED (what the customer's page shows) before the workflow
has its result and opens the window; under load that gap is seconds. A request arriving in it
must wait for the window, not be refused as outside it. Here the gap is held open on purpose: the
check activity, having recorded the decline, waits until the request has been accepted.
On the dev server (Updates hang on the time-skipping server), with real activities on SQLite.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from temporalio import activity
from temporalio.client import Client, WorkflowUpdateStage

from activities.appeal import AppealActivities
from activities.types import Checked, CheckInput
from core.appeals.service import workflow_id_for
from core.settings import Settings
from core.status import AppealStatus
from launcher.worker import build_worker
from tests.workflows.actions import HeartbeatCounter
from tests.workflows.appeal_paths import (
    ASKING_WINDOW,
    SEVERELY_LATE,
    PathRunner,
    appeal_status,
    path_settings,
)
from workflows.appeal import AppealWorkflow
from workflows.messages import HumanReviewRequest

pytestmark = pytest.mark.asyncio(loop_scope="session")


class DeclineHeldOpen(AppealActivities):
    """The real checks; after one that declines, the activity holds its result until released."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.declined = threading.Event()
        self.release = threading.Event()

    @activity.defn(name="check_documents")
    def check_documents(self, inp: CheckInput) -> Checked:
        checked = super().check_documents(inp)
        if checked.status is AppealStatus.AUTO_DECLINED:
            self.declined.set()
            self.release.wait(timeout=10)  # below the check's heartbeat timeout (15 s)
        return checked


@pytest.fixture
def s3(settings: Settings) -> Any:
    from core.storage import make_s3_client

    return make_s3_client(settings)


async def test_a_request_made_as_the_decline_lands_waits_for_the_window(
    temporal_client: Client, settings: Settings, sqlite_engine: Engine, s3: Any
) -> None:
    run_settings = path_settings(settings, human_review_window=ASKING_WINDOW)
    activities = DeclineHeldOpen(engine=sqlite_engine, s3_client=s3, settings=run_settings)
    with ThreadPoolExecutor(max_workers=8) as executor:
        async with build_worker(temporal_client, run_settings, activities, executor):
            runner = PathRunner(temporal_client, run_settings, sqlite_engine, s3, HeartbeatCounter())
            customer, appeal_id = await runner.submit(SEVERELY_LATE, 800_000, 600_000)
            await runner.upload_missing(customer.customer_id, appeal_id)
            assert await asyncio.to_thread(activities.declined.wait, 30), "the checks never declined"
            # What the customer's page shows now; the workflow has not seen the result yet.
            assert appeal_status(sqlite_engine, appeal_id) is AppealStatus.AUTO_DECLINED

            handle = temporal_client.get_workflow_handle(workflow_id_for(appeal_id))
            request = HumanReviewRequest(
                requested_by=f"customer:{customer.customer_id}", reason="Please look again."
            )
            try:
                update = await handle.start_update(
                    AppealWorkflow.request_human_review,
                    request,
                    id=f"human-review-{appeal_id}",
                    wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                )
            finally:
                activities.release.set()
            assert await update.result() is AppealStatus.AUTO_DECLINED
            await runner.settled(appeal_id, AppealStatus.PENDING_REVIEW)
