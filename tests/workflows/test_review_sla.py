"""Review SLAs on the time-skipping server: a warning at 80% of the due time, escalation at
breach; and the SLA clock pauses while the appeal waits on the customer."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from core.db import session_scope
from core.db.case_tables import AppealEvent, Notification, ReviewTask
from core.settings import Settings
from core.status import AppealStatus
from core.storage import make_s3_client
from tests.eventually import eventually
from tests.factories import make_customer
from tests.workflows.conftest import register_search_attributes, running_worker, start_appeal
from tests.workflows.test_document_deadline import _test_server
from tests.workflows.test_review_update import LATE_PAYER, upload_documents, wait_status

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _staff_events(engine: Engine, appeal_id: str) -> list[str]:
    with session_scope(engine, read_only=True) as session:
        rows = session.exec(
            select(Notification).where(Notification.appeal_id == appeal_id, Notification.audience == "staff")
        ).all()
        return sorted(n.event for n in rows)


async def test_warning_then_escalation(sqlite_engine: Engine, settings: Settings, tmp_path: Path) -> None:
    s3 = make_s3_client(settings)
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER)
    async with await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=_test_server(), data_converter=pydantic_data_converter
    ) as env:
        await register_search_attributes(env.client)
        async with running_worker(env.client, settings, sqlite_engine, s3):
            handle = await start_appeal(
                env.client,
                settings,
                sqlite_engine,
                customer.customer_id,
                customer.account_id,
                review_due=timedelta(hours=24),
            )
            appeal_id = handle.id.removeprefix("appeal-")
            await wait_status(sqlite_engine, appeal_id, AppealStatus.AWAITING_DOCUMENTS)
            await upload_documents(handle, settings, sqlite_engine, s3, customer.customer_id, appeal_id)
            await wait_status(sqlite_engine, appeal_id, AppealStatus.PENDING_REVIEW)
            assert _staff_events(sqlite_engine, appeal_id) == []

            await env.sleep(timedelta(hours=20))  # past 80% of 24 hours
            await eventually(
                lambda: _staff_events(sqlite_engine, appeal_id),
                lambda events: events == ["sla_warning"],
                what="the SLA warning notice to staff",
            )
            with session_scope(sqlite_engine, read_only=True) as session:
                task = session.exec(select(ReviewTask).where(ReviewTask.appeal_id == appeal_id)).one()
            assert not task.escalated and task.queue == "review" and task.priority == 0

            await env.sleep(timedelta(hours=5))  # past the due time
            await eventually(
                lambda: _staff_events(sqlite_engine, appeal_id),
                lambda events: events == ["sla_breach", "sla_warning"],
                what="the SLA breach notice to staff, after the warning",
            )
            with session_scope(sqlite_engine, read_only=True) as session:
                task = session.exec(select(ReviewTask).where(ReviewTask.appeal_id == appeal_id)).one()
                kinds = [
                    e.kind
                    for e in session.exec(select(AppealEvent).where(AppealEvent.appeal_id == appeal_id))
                ]
            assert task.escalated and task.queue == "escalation" and task.priority == 10
            assert "sla_warning" in kinds and "task_escalated" in kinds
            await handle.terminate("test done")
