"""Temporal actions per appeal path, counted from real histories (tests/workflows/actions.py),
within issue 11's budgets. Counts are deterministic, unlike times, so a change that adds
actions to a path fails here. Run with `-s` to see each path's counts."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.engine import Engine
from temporalio.client import Client

from core.settings import Settings
from tests.workflows.actions import table
from tests.workflows.appeal_paths import AppealPath, run_paths

pytestmark = pytest.mark.asyncio(loop_scope="session")

BUDGET = {
    AppealPath.AUTO_APPROVE: 12,
    AppealPath.AUTO_DECLINE: 12,  # closed after the human-review window
    AppealPath.MANUAL: 20,  # claim and decide
    AppealPath.FOUR_EYES: 28,  # two stages, two seniors
}


@pytest.fixture
def s3(settings: Settings) -> Any:
    from core.storage import make_s3_client

    return make_s3_client(settings)


async def test_each_path_is_within_its_action_budget(
    temporal_client: Client, settings: Settings, sqlite_engine: Engine, s3: Any
) -> None:
    runs = await run_paths(temporal_client, settings, sqlite_engine, s3)
    print("\n" + table((f"{run.path} (<= {BUDGET[run.path]})", run.count) for run in runs))
    over = {
        str(run.path): (run.count.actions, BUDGET[run.path])
        for run in runs
        if run.count.actions > BUDGET[run.path]
    }
    assert not over, f"over budget (actions, budget): {over}"
