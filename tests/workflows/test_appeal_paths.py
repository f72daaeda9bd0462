"""The driver of the four paths (tests/workflows/appeal_paths.py) takes each appeal where its
path says, through the appeal's public messages only, and its counts show those messages."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from core.settings import Settings
from core.status import AppealStatus
from tests.workflows.actions import table
from tests.workflows.appeal_paths import HUMAN_REVIEW_WINDOW, AppealPath, run_paths

pytestmark = pytest.mark.asyncio(loop_scope="session")

S = AppealStatus


@pytest.fixture
def s3(settings: Settings) -> Any:
    from core.storage import make_s3_client

    return make_s3_client(settings)


async def test_each_path_ends_where_it_should(
    temporal_client: Client, settings: Settings, sqlite_engine: Engine, s3: Any
) -> None:
    runs = {run.path: run for run in await run_paths(temporal_client, settings, sqlite_engine, s3)}
    print("\n" + table((str(path), run.count) for path, run in runs.items()))

    assert set(runs) == set(AppealPath)
    for run in runs.values():
        assert run.final_status is S.CLOSED, run
        assert run.statuses[-1] is S.CLOSED, run.statuses
        assert run.count.workflow_started == 1 and run.count.workflow_task_failures == 0
        assert run.count.history_events == len(run.history.events)
        assert run.count.heartbeats is not None  # observed on the worker
    # The messages each path sends: a document signal per checklist item, a claim signal and a
    # decision update per review stage, nothing else.
    documents = runs[AppealPath.AUTO_APPROVE].count.signals_received
    assert documents >= 1
    for path, stages in ((AppealPath.AUTO_APPROVE, 0), (AppealPath.AUTO_DECLINE, 0)):
        assert runs[path].count.updates_accepted == stages
    manual, four_eyes = runs[AppealPath.MANUAL], runs[AppealPath.FOUR_EYES]
    assert manual.count.updates_accepted == 1 and manual.count.signals_received >= 2
    assert four_eyes.count.updates_accepted == 2 and four_eyes.count.signals_received >= 3
    assert manual.statuses.count(S.IN_REVIEW) == 1 and S.APPROVED in manual.statuses
    assert S.IN_SECOND_REVIEW in four_eyes.statuses and S.PARTIALLY_APPROVED in four_eyes.statuses
    assert S.AUTO_APPROVED in runs[AppealPath.AUTO_APPROVE].statuses
    # The automatic decline closed because its human-review window passed: a timer that fired,
    # started for (at most) the configured window.
    declined = runs[AppealPath.AUTO_DECLINE]
    assert S.AUTO_DECLINED in declined.statuses and S.PENDING_REVIEW not in declined.statuses
    window_timers = [
        event.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta()
        for event in declined.history.events
        if event.event_type == EventType.EVENT_TYPE_TIMER_STARTED
    ]
    assert any(timedelta(0) < started <= HUMAN_REVIEW_WINDOW for started in window_timers), window_timers
    assert any(e.event_type == EventType.EVENT_TYPE_TIMER_FIRED for e in declined.history.events)
