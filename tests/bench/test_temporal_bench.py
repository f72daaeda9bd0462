"""bench/temporal_bench.py's references: the no-op of the shape issue 11 measured (timed unless
--no-issue-noop) and the floor's recorded activity results (--floor), both from a real stored
history; the I/O floor's S3 calls and sends (--io-floor) on the real S3 server and SMTP sink;
the server's work per run, read from a dev server's own metrics."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Worker

from bench.noop_plan import NoopPlan, Step, plan_from_history
from bench.noop_workflow import NoopAppealWorkflow, noop_local, noop_step
from bench.server_metrics import server_work
from bench.temporal_bench import ISSUE_11_HISTORY, ExternalIo, dev_server, recorded_results
from core.appeals.service import NewAppeal, create_appeal
from core.db import session_scope
from core.db.case_tables import Document
from core.db.ledger_tables import Customer
from core.notifications.outbox import EMAIL, SMS, plan_notifications
from core.settings import Settings
from core.storage import document_key, ensure_bucket, evidence_key, make_s3_client
from launcher.dev import temporal_ready
from launcher.mail import read_mail, start_smtp_sink
from launcher.stack import free_port, wait_until
from tests.conftest import make_settings
from tests.core.notifications.samples import SAMPLES
from tests.eventually import eventually
from tests.factories import make_customer
from tests.workflows.actions import count_actions


def issue_11_history() -> WorkflowHistory:
    return WorkflowHistory.from_json("issue-11", ISSUE_11_HISTORY.read_text())


def test_the_issue_noop_has_the_shape_issue_11_measured() -> None:
    """The stored history is a real auto-approve run from before the lean path, and the no-op
    derived from it has that run's shape."""
    history = issue_11_history()
    count = count_actions(history)
    assert (count.activities_scheduled, count.search_attribute_upserts, count.signals_received) == (11, 6, 1)
    assert count.local_activity_tasks == 5
    totals = plan_from_history(history.events).totals()
    assert totals["workflow tasks"] == 11
    assert totals["activities"] == 11
    assert totals["local activities"] == 5
    assert totals["upserts"] == 6


def test_the_floor_returns_what_each_activity_returned_in_the_history() -> None:
    results = asyncio.run(recorded_results(DataConverter.default, issue_11_history().events))
    assert results["check_eligibility"]["eligible"] is True
    assert results["assess_appeal"]["recommendation"] == "AUTO_APPROVE"
    assert {"prepare_checklist", "verify_document", "apply_limit", "deliver_notification"} <= set(results)


async def test_the_server_work_counts_a_queued_activity_on_a_dev_server_of_its_own(tmp_path: Path) -> None:
    """bench/server_metrics.py reads the counters a dev server started as the bench starts it
    publishes: a run whose one activity cannot be taken eagerly (eager dispatch off) shows a
    queued activity task, the poll that took it and the run's state writes."""
    port, metrics_port = free_port(), free_port()
    server = dev_server(tmp_path, port, metrics_port).start()
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    queue = f"server-work-{uuid.uuid4().hex[:8]}"
    try:
        # temporal_ready runs an event loop of its own: not on this test's
        ready = partial(temporal_ready, f"127.0.0.1:{port}", "default")
        await asyncio.to_thread(wait_until, ready, server, 60)
        client = await Client.connect(f"127.0.0.1:{port}")
        before = await asyncio.to_thread(server_work, metrics_url)
        with ThreadPoolExecutor(max_workers=2) as executor:
            async with Worker(
                client,
                task_queue=queue,
                workflows=[NoopAppealWorkflow],
                activities=[noop_step, noop_local],
                activity_executor=executor,
                max_concurrent_activities=2,
                disable_eager_activity_execution=True,
            ):
                plan = NoopPlan([Step(start_activities=[0]), Step(wait_activities=[0])])
                await client.execute_workflow(NoopAppealWorkflow.run, plan, id=queue, task_queue=queue)

        def grown(now: dict[str, float]) -> bool:
            return all(now[name] >= before[name] + 1 for name in ("activity tasks queued", "activity polls"))

        after = await eventually(
            partial(asyncio.to_thread, server_work, metrics_url),
            grown,
            what="the server to publish the run's queued activity task and its poll",
        )
        assert after["state writes"] > before["state writes"]
        assert after["workflow task polls"] > before["workflow task polls"]
    finally:
        server.stop()


def test_the_io_floor_does_the_appeals_s3_calls_and_sends_its_messages_anew_each_run(
    sqlite_engine: Engine, s3_endpoint: str, tmp_path: Path
) -> None:
    """--io-floor's ExternalIo: learned from a reference appeal's rows, each run copies, reads
    and locks its own upload and sends the reference's messages again under keys of its own
    (the sink and the SMS provider drop a key they already hold, which would leave runs free)."""
    port = free_port()
    mail_dir = tmp_path / "mail"
    sink = start_smtp_sink(host="127.0.0.1", port=port, mail_dir=mail_dir, log_path=tmp_path / "sink.log")
    try:
        settings = make_settings(tmp_path, s3_endpoint_url=s3_endpoint, smtp_host="127.0.0.1", smtp_port=port)
        s3 = make_s3_client(settings)
        ensure_bucket(s3, settings.s3_bucket)
        reference = _reference_appeal(sqlite_engine, settings, s3)

        io = ExternalIo(settings, s3)
        io.learn(sqlite_engine, reference)
        assert {n: sorted(m.channel for m in ms) for n, ms in io.notices.items()} == {1: [EMAIL, SMS]}

        for run in ("run-1", "run-2"):
            io.store_upload(run)
            io.perform("open_appeal", {"appeal_id": run, "notice_seq": 1})
            io.perform("check_documents", {"appeal_id": run, "notice_seq": 2})
            [document] = io.documents[run]
            kept = evidence_key(run, document.id)
            assert s3.get_object(Bucket=settings.s3_bucket, Key=kept)["Body"].read() == b"%PDF-1.4 statement"
        io.senders[EMAIL].close()  # type: ignore[attr-defined]
        mails = read_mail(mail_dir)
        assert len(mails) == 2
        assert len({m["Message-ID"] for _, m in mails}) == 2
        texts = (settings.data_dir / "sms" / "messages.jsonl").read_text().splitlines()
        assert len(texts) == 2
    finally:
        sink.stop()


def _reference_appeal(engine: Engine, settings: Settings, s3: Any) -> str:
    """An appeal with what its steps leave: a stored upload and notice 1 planned by email and SMS."""
    customer = make_customer(engine)
    with session_scope(engine) as session:
        row = session.get(Customer, customer.customer_id)
        assert row is not None
        row.email, row.phone = "li.wei@example.com", "+8613800138000"
        appeal, _ = create_appeal(session, NewAppeal(customer.customer_id, customer.account_id, 600_000))
        notice = dict(SAMPLES["appeal_received"]["one_document"])
        plan_notifications(
            session, appeal=appeal, event="appeal_received", sequence=1, context=notice, channels=[EMAIL, SMS]
        )
        key = document_key(appeal.id, "doc-1")
        session.add(
            Document(
                id="doc-1",
                appeal_id=appeal.id,
                customer_id=customer.customer_id,
                doc_type="BANK_STATEMENT",
                s3_key=key,
                filename="statement.pdf",
                declared_content_type="application/pdf",
            )
        )
        appeal_id = appeal.id
    s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=b"%PDF-1.4 statement")
    return appeal_id
