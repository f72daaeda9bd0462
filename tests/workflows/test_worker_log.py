"""The worker's log: one structured line per activity start and end (with its duration) and
one per status change, each naming the appeal and none naming the customer."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import Client

from activities.activity_log import ACTIVITY_LOGGER, TRANSITION_LOGGER, log_line
from core.db import session_scope
from core.db.case_tables import Appeal, AppealEvent
from core.db.ledger_tables import Customer
from core.settings import Settings
from core.status import AppealStatus
from launcher.mail import start_smtp_sink
from launcher.stack import free_port
from tests.conftest import make_settings
from tests.eventually import eventually, patience
from tests.factories import make_customer
from tests.workflows.conftest import running_worker, start_appeal
from workflows.appeal import AppealWorkflow
from workflows.messages import WithdrawRequest

pytestmark = pytest.mark.asyncio(loop_scope="session")

NAME, EMAIL, PHONE = "Zhou Xiaoming", "zhou.xiaoming@example.com", "+8613912345678"


@pytest.fixture
def mail_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings whose email goes to a real SMTP sink, so the notices are delivered."""
    port = free_port()
    sink = start_smtp_sink(
        host="127.0.0.1", port=port, mail_dir=tmp_path / "mail", log_path=tmp_path / "smtp.log"
    )
    try:
        yield make_settings(tmp_path, smtp_host="127.0.0.1", smtp_port=port)
    finally:
        sink.stop()


def _status(engine: Engine, appeal_id: str) -> AppealStatus:
    with session_scope(engine, read_only=True) as session:
        appeal = session.get(Appeal, appeal_id)
        assert appeal is not None
        return AppealStatus(appeal.status)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = getattr(record, "log_fields", {})
    return fields


async def test_each_activity_and_transition_is_one_line_without_personal_data(
    temporal_client: Client, sqlite_engine: Engine, mail_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    c = make_customer(sqlite_engine)
    with session_scope(sqlite_engine) as session:
        customer = session.get(Customer, c.customer_id)
        assert customer is not None
        customer.name, customer.email, customer.phone = NAME, EMAIL, PHONE

    async with running_worker(temporal_client, mail_settings, sqlite_engine):
        handle = await start_appeal(
            temporal_client,
            mail_settings,
            sqlite_engine,
            c.customer_id,
            c.account_id,
            requested_limit_minor=700_000,
        )
        appeal_id = handle.id.removeprefix("appeal-")
        await eventually(
            lambda: _status(sqlite_engine, appeal_id),
            lambda status: status == AppealStatus.AWAITING_DOCUMENTS,
            what=f"appeal {appeal_id} to await documents",
        )
        await handle.signal(
            AppealWorkflow.withdraw, WithdrawRequest(requested_by=f"customer:{c.customer_id}")
        )
        # The run ends once every notice (in-app, email, SMS) is delivered.
        result = await asyncio.wait_for(handle.result(), patience(60))
    assert result.status == AppealStatus.WITHDRAWN

    ours = [r for r in caplog.records if _fields(r).get("appeal_id") == appeal_id]
    activity_lines = [r for r in ours if r.name == ACTIVITY_LOGGER]
    transition_lines = [r for r in ours if r.name == TRANSITION_LOGGER]

    # One line per status change, in order, as the audit trail has them.
    with session_scope(sqlite_engine, read_only=True) as session:
        events = session.exec(
            select(AppealEvent).where(AppealEvent.appeal_id == appeal_id).order_by(col(AppealEvent.seq))
        ).all()
    changes = [e.to_status for e in events if e.to_status is not None and e.from_status is not None]
    assert changes == [AppealStatus.AWAITING_DOCUMENTS, AppealStatus.WITHDRAWN]
    assert [(_fields(r)["from_status"], _fields(r)["to_status"]) for r in transition_lines] == [
        ("SUBMITTED", "AWAITING_DOCUMENTS"),
        ("AWAITING_DOCUMENTS", "WITHDRAWN"),
    ]

    # Each activity run: one start line and one end line with its duration.
    starts = Counter(
        (_fields(r)["activity"], _fields(r)["attempt"])
        for r in activity_lines
        if r.msg.startswith("activity_started")
    )
    ends = [r for r in activity_lines if not r.getMessage().startswith("activity_started")]
    assert Counter((_fields(r)["activity"], _fields(r)["attempt"]) for r in ends) == starts
    assert all(r.getMessage().startswith("activity_finished") for r in ends), [r.getMessage() for r in ends]
    assert all(
        isinstance(_fields(r)["duration_ms"], float) and "duration_ms=" in r.getMessage() for r in ends
    )
    ran = Counter(activity for activity, _ in starts.elements())
    # Each step is one activity that records its status and sends its notice itself.
    assert ran == Counter({"open_appeal": 1, "withdraw": 1}), ran
    # Every line carries the appeal id, on one line, key=value.
    for record in activity_lines + transition_lines:
        message = record.getMessage()
        assert "\n" not in message and f"appeal_id={appeal_id}" in message
        assert message == log_line(message.split(" ", 1)[0], _fields(record))
    for record in activity_lines:
        assert f"workflow_id=appeal-{appeal_id}" in record.getMessage()

    # Nothing the worker logged names the customer or how to reach them.
    for record in caplog.records:
        text = record.getMessage() + repr(_fields(record))
        for personal in (NAME, EMAIL, PHONE, "Zhou", "zhou.xiaoming"):
            assert personal not in text, (record.name, text)
