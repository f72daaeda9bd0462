"""Throughput of the automatic appeal path against a no-op workflow of the same shape, and the
Temporal actions of each appeal path, on a Temporal dev server, S3 and SMTP sink of its own.

    .venv/bin/python bench/temporal_bench.py [--appeals 60] [--rounds 8] [--warmup 10]
                                             [--executor 16] [--no-paths] [--no-encrypt]
                                             [--floor] [--io-floor] [--no-issue-noop]

What it does, in one run:

1. Starts a Temporal dev server (in memory), moto's S3 server and the SMTP sink through
   launcher/stack.py on free ports, as tests/conftest.py does, with a SQLite database in a
   temporary directory; all are stopped and removed at the end.
2. Actions per path: drives one appeal along each of the four paths of issue 11 (auto-approve,
   auto-decline closed after the human-review window, manual approve, four eyes) with
   tests/workflows/appeal_paths.py and counts the actions of each real history with
   tests/workflows/actions.py (start, activities, timers, signals, accepted updates, upserts,
   local activities at one per workflow task, heartbeats seen on the worker), so a change that
   adds actions shows up here as in tests/workflows/test_action_budget.py.
3. Workers built alike on one client: the real one (launcher.worker.build_worker, with
   AppealActivities), one for the no-op (bench/noop_workflow.py) and one for the floor (6.),
   each on its own task queue with its own thread pool of `--executor` threads (16, as
   `appeals worker` has), the same activity slots and the same activity-log interceptor.
   Payloads are encrypted as deployed (gateway/codec.py, a key made for the run);
   `--no-encrypt` leaves them plain, to see what the codec costs.
4. The no-op's shape: one auto-approve appeal is run as the timed ones are, and the plan of the
   no-op is derived from its history (bench/noop_plan.py `plan_from_history`): the same
   workflow tasks, each woken by the same activity completions, timers and signals and then
   running the same local activities, upserts, timers and activities; the no-op's activities
   return at once. Both shapes are printed, and the actions of one timed run of each.
5. Rounds: `--rounds` times, `--appeals` appeals and as many runs of each other kind, one kind
   after another, the order rotating each round (AB, BA, ...; ABC, BCA, CAB, ...), after an
   untimed warm-up of `--warmup` of each. Before the clock starts, each
   appeal's customer, account and bills, the appeal row and its documents (the S3 object and
   the Document row, as an upload stores them) are written. The clock then covers, for all of
   them at once: the start (TemporalGateway.start_appeal, as `POST /appeals`), one
   `document_uploaded` signal per document, sent right after the start, and the workflow's run
   to its end (CLOSED). The no-op gets the same start options and the same signals. Documents
   are stored before the start (an appeal only takes uploads once it asks for them, but its
   workflow is woken by the signal and verifies what the database holds), so the clock
   measures the workflow and none of the upload; every appeal is checked to be AUTO_APPROVED
   and CLOSED afterwards.
6. With `--floor`, a third kind runs in each round: the real AppealWorkflow, started as an
   appeal is (the gateway, one signal per document), on a third worker built alike whose
   activities do no work: one dynamic activity returns, for each activity type, the result the
   reference appeal's real activity returned (decoded from its history). Its rate against the
   no-op's is the most any appeal could reach with this workflow if every step cost nothing;
   its CPU shows what the workflow's own shape and payloads cost the worker and the server.
   Unless `--no-issue-noop`, another kind: the no-op of the shape the auto-approve appeal had
   when issue 11 measured its ratio (0.42), derived the same way from a real history of that
   code stored in bench/fixtures/ (commit 5fa1da1: 11 activities, 11 workflow tasks, 5 local
   activities, 6 upserts), so today's appeal is also compared with the reference the issue
   was measured against, in the same run. Both ratios are printed: appeal : issue no-op is the
   one issue 11 set at 0.42 and asked to raise to 0.7 by making the appeal's shape leaner;
   appeal : no-op compares with a no-op that shrinks with the appeal, so it says what the
   appeal's own work costs beside what Temporal costs for its shape: a leaner shape lowers it
   unless that work gets cheaper too.
   With `--io-floor`, another kind: the floor on a fourth worker whose activities first do what
   the real ones do outside the database (ExternalIo): check_documents copies the run's upload
   to its evidence key, reads the copy and locks it (the three S3 calls of core/documents/
   verification.py), and each step that notifies sends the reference appeal's own email and
   SMS again through the real senders, under keys of the run's own. No SQL, rendering or
   assessment: its rate against the no-op's is the most an appeal could reach with the I/O it
   must do; what lies between it and the appeal is the steps' database work and logic.
7. Prints each round's rates (per second), the median rates, the median of the rounds' ratios
   (appeals / no-op; floor / no-op, I/O floor / no-op and appeals / the issue's no-op when
   those run), the CPU per run of each kind by process (this process: the worker, the SQLite
   database and the client that starts and awaits them, by time.process_time; the dev server,
   S3 and the SMTP sink from /proc, each with its children), what the dev server did per run
   by its own metrics (bench/server_metrics.py: activity tasks queued rather than taken
   eagerly, polls, state writes), and the load average before, during and after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also as `python bench/...py`

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.common import RawValue, SearchAttributePair, TypedSearchAttributes, WorkflowIDConflictPolicy
from temporalio.converter import DataConverter
from temporalio.worker import Worker

from activities.activity_log import ActivityLogInterceptor
from activities.appeal import AppealActivities
from bench import noop_workflow
from bench.noop_workflow import NoopAppealWorkflow, NoopPlan, noop_local, noop_step, plan_from_history
from bench.server_metrics import PUBLISH_SECONDS, server_work
from core.appeals.service import NewAppeal, create_appeal, workflow_id_for
from core.clock import SYSTEM_CLOCK
from core.db import make_engine, session_scope
from core.db.case_tables import Appeal, Document, Notification
from core.db.ledger_tables import Customer
from core.db.migrate import upgrade
from core.documents.evidence import keep_for_inspection, lock_kept
from core.notifications.channels import OutboundMessage, senders_from_settings
from core.notifications.channels.email import email_message_id
from core.notifications.outbox import outbound_message
from core.notifications.service import notification_key
from core.policy.loader import load_default_policy
from core.policy.requirements import document_requirements
from core.settings import Settings
from core.status import AppealStatus
from core.storage import document_key, ensure_bucket, make_s3_client, read_object
from gateway.codec import AesGcmCodec, PayloadKeys
from gateway.temporal import TemporalGateway, converter_with
from launcher.dev import temporal_ready
from launcher.mail import start_smtp_sink
from launcher.stack import (
    ManagedProcess,
    free_port,
    http_ok,
    s3_server,
    tcp_open,
    temporal_dev_server,
    wait_until,
)
from launcher.worker import build_worker, write_bytecode
from tests.conftest import make_settings
from tests.workflows.actions import ActionCount, count_actions, table
from tests.workflows.appeal_paths import (
    STEADY,
    audit_statuses,
    customer_with_contacts,
    document_bodies,
    run_paths,
)
from workflows.appeal import AppealWorkflow
from workflows.search_attributes import APPEAL_CUSTOMER_ID, APPEAL_STATUS

S = AppealStatus
ORIGINAL_MINOR, REQUESTED_MINOR = 800_000, 600_000  # the auto-approve path's case
RESULT_TIMEOUT = 600.0
# One auto-approve appeal's real history as it ran before issue 11's lean path (commit 5fa1da1:
# 11 activities, 11 workflow tasks, 5 local activities, 6 upserts): the shape of the no-op the
# issue's ratio was measured against.
ISSUE_11_HISTORY = Path(__file__).parent / "fixtures" / "auto_approve_history_before_issue_11.json"


# -- the stack --------------------------------------------------------------------------------


@dataclass
class Stack:
    temporal: ManagedProcess
    s3: ManagedProcess
    smtp: ManagedProcess
    temporal_address: str
    s3_endpoint: str
    smtp_port: int
    metrics_url: str  # the dev server's Prometheus metrics


def dev_server(directory: Path, port: int, metrics_port: int) -> ManagedProcess:
    """The bench's Temporal dev server (not started): in memory, headless, its own Prometheus
    metrics on `metrics_port` (bench/server_metrics.py reads them)."""
    return temporal_dev_server(
        host="127.0.0.1",
        port=port,
        metrics_port=metrics_port,
        ui_port=free_port(),
        db_file=None,
        log_path=directory / "temporal.log",
        headless=True,
    )


@contextmanager
def stack(directory: Path) -> Iterator[Stack]:
    """The dev server, S3 and the SMTP sink on free ports, stopped however the run ends."""
    started: list[ManagedProcess] = []
    try:
        port, metrics_port = free_port(), free_port()
        temporal = dev_server(directory, port, metrics_port).start()
        started.append(temporal)
        s3_port = free_port()
        s3 = s3_server(host="127.0.0.1", port=s3_port, log_path=directory / "s3.log").start()
        started.append(s3)
        smtp_port = free_port()
        smtp = start_smtp_sink(
            host="127.0.0.1", port=smtp_port, mail_dir=directory / "mail", log_path=directory / "smtp.log"
        )
        started.append(smtp)
        wait_until(lambda: temporal_ready(f"127.0.0.1:{port}", "default"), temporal, 60)
        wait_until(lambda: tcp_open("127.0.0.1", s3_port) and http_ok(f"http://127.0.0.1:{s3_port}/"), s3, 30)
        yield Stack(
            temporal,
            s3,
            smtp,
            f"127.0.0.1:{port}",
            f"http://127.0.0.1:{s3_port}",
            smtp_port,
            f"http://127.0.0.1:{metrics_port}/metrics",
        )
    finally:
        for process in reversed(started):
            process.stop()


# -- CPU --------------------------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK")


def group_cpu_seconds(pgid: int) -> float:
    """User and system CPU of every process in the process group (each managed process leads
    its own), with that of their reaped children, from /proc."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:  # pgrp; then utime, stime, cutime, cstime
            total += sum(int(value) for value in fields[11:15])
    return total / _TICK


def cpu_snapshot(st: Stack) -> dict[str, float]:
    def pid(process: ManagedProcess) -> int:
        assert process.process is not None
        return process.process.pid

    return {
        "worker": time.process_time(),
        "temporal": group_cpu_seconds(pid(st.temporal)),
        "s3": group_cpu_seconds(pid(st.s3)),
        "smtp": group_cpu_seconds(pid(st.smtp)),
    }


# -- the two kinds of run ---------------------------------------------------------------------


@dataclass
class Prepared:
    """An appeal whose rows and documents are written, ready to start."""

    appeal: Appeal
    document_ids: list[str]


def prepare_appeal(settings: Settings, engine: Engine, s3: Any, seed: int) -> Prepared:
    """The auto-approve case with its documents stored as an upload stores them (S3, row)."""
    customer = customer_with_contacts(engine, days_past_due=STEADY, original_limit_minor=ORIGINAL_MINOR)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(
            session, NewAppeal(customer.customer_id, customer.account_id, REQUESTED_MINOR)
        )
        row = session.get(Customer, customer.customer_id)
        assert row is not None
        wanted = document_requirements(
            load_default_policy().policy,
            requested_limit_minor=REQUESTED_MINOR,
            declared_monthly_income_minor=row.declared_monthly_income_minor,
            worst_dpd_12m=max(STEADY),
        )
    ids = []
    for doc_type, body, content_type in document_bodies([w.document_type.value for w in wanted], seed):
        document_id = str(uuid.uuid4())
        key = document_key(appeal.id, document_id)
        s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=body, ContentType=content_type)
        with session_scope(engine) as session:
            session.add(
                Document(
                    id=document_id,
                    appeal_id=appeal.id,
                    customer_id=customer.customer_id,
                    doc_type=doc_type,
                    s3_key=key,
                    filename="upload",
                    declared_content_type=content_type,
                )
            )
        ids.append(document_id)
    return Prepared(appeal, ids)


async def start_appeal(gateway: TemporalGateway, prepared: Prepared) -> None:
    await gateway.start_appeal(prepared.appeal)
    for document_id in prepared.document_ids:
        await gateway.document_uploaded(prepared.appeal.id, document_id)


async def start_noop(client: Client, queue: str, plan: NoopPlan, signals: int) -> WorkflowHandle[Any, Any]:
    """As the gateway starts an appeal (id policy, search attributes, summary), then the same
    number of document signals."""
    run_id = uuid.uuid4().hex
    handle = await client.start_workflow(
        NoopAppealWorkflow.run,
        plan,
        id=f"noop-{run_id}",
        task_queue=queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        search_attributes=TypedSearchAttributes(
            [
                SearchAttributePair(APPEAL_STATUS, S.SUBMITTED.value),
                SearchAttributePair(APPEAL_CUSTOMER_ID, f"noop-{run_id[:8]}"),
            ]
        ),
        static_summary=f"Limit-restore appeal {run_id} · account noop · requested ¥6,000.00",
        static_details=f"Customer `noop`; case file: `GET /appeals/{run_id}`",
    )
    for number in range(signals):
        await handle.signal("document_uploaded", {"document_id": f"{run_id}-{number}"})
    return handle


async def recorded_results(converter: DataConverter, events: Sequence[HistoryEvent]) -> dict[str, Any]:
    """Each activity type's result in a history, decoded (the codec too) to plain values."""
    scheduled: dict[int, str] = {}
    results: dict[str, Any] = {}
    for event in events:
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed = event.activity_task_completed_event_attributes
            values = await converter.decode(completed.result.payloads)
            results[scheduled[completed.scheduled_event_id]] = values[0] if values else None
    return results


class ExternalIo:
    """What a real auto-approve appeal does outside the database, done again for the I/O floor:
    per document, the evidence copy, the read of the copy and its lock (core/documents/
    verification.py's three S3 calls); per notice, the reference appeal's own messages (the
    bytes its outbox sent) through the real senders. No SQL, no rendering, no assessment."""

    def __init__(self, settings: Settings, s3: Any) -> None:
        self.settings, self.s3 = settings, s3
        self.senders = senders_from_settings(settings)
        self.notices: dict[int, list[OutboundMessage]] = {}  # notice sequence -> its messages
        self.uploads: list[tuple[Document, bytes]] = []  # the reference appeal's, with their bytes
        self.documents: dict[str, list[Document]] = {}  # appeal id -> its stored uploads

    def learn(self, engine: Engine, appeal_id: str) -> None:
        """The reference appeal's messages, each under the notice sequence of the step that
        sent it, and its uploads with their bytes, to store again for each run."""
        with session_scope(engine, read_only=True) as session:
            rows = session.exec(select(Notification).where(Notification.appeal_id == appeal_id)).all()
            uploads = session.exec(select(Document).where(Document.appeal_id == appeal_id)).all()
        for row in rows:
            if row.channel in self.senders:
                key = row.idempotency_key
                sequence = next(
                    n for n in range(1, 100) if notification_key(appeal_id, row.event, n, row.channel) == key
                )
                self.notices.setdefault(sequence, []).append(outbound_message(row))
        for upload in uploads:
            body = self.s3.get_object(Bucket=self.settings.s3_bucket, Key=upload.s3_key)["Body"].read()
            self.uploads.append((upload, body))

    def store_upload(self, appeal_id: str) -> None:
        """Untimed, as an upload is before an appeal's clock starts."""
        assert self.uploads, "learn() first"
        self.documents[appeal_id] = []
        for upload, body in self.uploads:
            document_id = str(uuid.uuid4())
            key = document_key(appeal_id, document_id)
            self.s3.put_object(Bucket=self.settings.s3_bucket, Key=key, Body=body)
            self.documents[appeal_id].append(
                Document(
                    id=document_id,
                    appeal_id=appeal_id,
                    customer_id="io",
                    doc_type=upload.doc_type,
                    s3_key=key,
                    filename=upload.filename,
                    declared_content_type=upload.declared_content_type,
                )
            )

    def perform(self, activity_type: str, step: dict[str, Any]) -> None:
        """What the real `activity_type` does outside the database for this step's input."""
        appeal_id = step["appeal_id"]
        for document in self.documents[appeal_id] if activity_type == "check_documents" else []:
            kept = keep_for_inspection(self.s3, self.settings, document)
            assert kept is not None
            stored = read_object(
                self.s3,
                self.settings.s3_bucket,
                kept.key,
                max_bytes=self.settings.document_max_bytes,
                version_id=kept.version_id,
            )
            assert stored is not None and stored.data is not None
            lock_kept(self.s3, self.settings, kept, today=SYSTEM_CLOCK.today())
        for message in self.notices.get(step.get("notice_seq", 0), []):
            key = f"{message.idempotency_key}:{appeal_id}"  # each run's own message, as sent
            message_id = email_message_id(key) if message.message_id else None
            self.senders[message.channel].send(replace(message, idempotency_key=key, message_id=message_id))


def floor_worker(
    client: Client,
    queue: str,
    results: dict[str, Any],
    executor: ThreadPoolExecutor,
    io: ExternalIo | None = None,
) -> Worker:
    """The real AppealWorkflow on a worker built as the real one is, with activities that do no
    work: each returns what the reference appeal's activity of that type returned; with `io`,
    after doing what the real one does outside the database (the I/O floor)."""

    @activity.defn(dynamic=True)
    def recorded_result(args: Sequence[RawValue]) -> Any:
        if io is not None:
            io.perform(
                activity.info().activity_type,
                activity.payload_converter().from_payload(args[0].payload, dict),
            )
        return results[activity.info().activity_type]

    return Worker(
        client,
        task_queue=queue,
        workflows=[AppealWorkflow],
        activities=[recorded_result],
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        interceptors=[ActivityLogInterceptor()],
    )


@dataclass
class Batch:
    seconds: float
    cpu: dict[str, float]  # seconds per process, for the whole batch
    server: dict[str, float]  # bench/server_metrics.py's counts, for the whole batch

    def rate(self, n: int) -> float:
        return n / self.seconds

    def cpu_ms_per_run(self, n: int) -> dict[str, float]:
        per = {name: 1000 * value / n for name, value in self.cpu.items()}
        return {**per, "total": sum(per.values())}

    def server_per_run(self, n: int) -> dict[str, float]:
        return {name: value / n for name, value in self.server.items()}


async def timed(
    st: Stack, starts: list[Callable[[], Awaitable[Any]]], results: Callable[[], Awaitable[Any]]
) -> Batch:
    # The server's counters are read outside the clock and the CPU counts (serving them costs
    # the server), once it has published all it did before.
    await asyncio.sleep(PUBLISH_SECONDS)
    work_before = await asyncio.to_thread(server_work, st.metrics_url)
    before, clock = cpu_snapshot(st), time.perf_counter()
    await asyncio.gather(*(start() for start in starts))
    await results()
    seconds = time.perf_counter() - clock
    after = cpu_snapshot(st)
    await asyncio.sleep(PUBLISH_SECONDS)
    work_after = await asyncio.to_thread(server_work, st.metrics_url)
    return Batch(
        seconds,
        {name: after[name] - before[name] for name in before},
        {name: work_after[name] - work_before[name] for name in work_before},
    )


class Bench:
    def __init__(self, st: Stack, settings: Settings, engine: Engine, s3: Any, client: Client) -> None:
        self.st, self.settings, self.engine, self.s3, self.client = st, settings, engine, s3, client
        self.gateway = TemporalGateway(settings, client)
        self.noop_queue = f"{settings.temporal_task_queue}-noop"
        self.floor_queue = f"{settings.temporal_task_queue}-floor"
        floor_settings = settings.model_copy(update={"temporal_task_queue": self.floor_queue})
        self.floor_gateway = TemporalGateway(floor_settings, client)
        self.io_floor_queue = f"{settings.temporal_task_queue}-io-floor"
        io_floor_settings = settings.model_copy(update={"temporal_task_queue": self.io_floor_queue})
        self.io_floor_gateway = TemporalGateway(io_floor_settings, client)
        self.io = ExternalIo(settings, s3)
        self.seed = 5_000
        self.plan = NoopPlan()

    def prepare(self, n: int) -> list[Prepared]:
        prepared = []
        for _ in range(n):
            self.seed += 1
            prepared.append(prepare_appeal(self.settings, self.engine, self.s3, self.seed))
        return prepared

    async def appeals(self, n: int) -> tuple[Batch, list[str]]:
        prepared = self.prepare(n)
        handles = [self.client.get_workflow_handle(workflow_id_for(p.appeal.id)) for p in prepared]

        async def results() -> None:
            await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), RESULT_TIMEOUT)

        batch = await timed(self.st, [partial(start_appeal, self.gateway, p) for p in prepared], results)
        for p in prepared:
            statuses = audit_statuses(self.engine, p.appeal.id)
            if S.AUTO_APPROVED not in statuses or statuses[-1] != S.CLOSED:
                raise SystemExit(f"appeal {p.appeal.id} did not take the auto-approve path: {statuses}")
        return batch, [h.id for h in handles]

    async def noops(self, n: int, plan: NoopPlan | None = None) -> tuple[Batch, list[str]]:
        """`n` no-op runs of `plan` (default: the shape of today's appeal)."""
        plan = plan or self.plan
        signals = plan.totals()["signals"]
        handles: list[WorkflowHandle[Any, Any]] = []

        async def start() -> None:
            handles.append(await start_noop(self.client, self.noop_queue, plan, signals))

        async def results() -> None:
            done = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), RESULT_TIMEOUT)
            if done != [signals] * n:
                raise SystemExit(f"a no-op run ended badly: {done}")

        batch = await timed(self.st, [start] * n, results)
        return batch, [h.id for h in handles]

    async def floors(self, n: int) -> tuple[Batch, list[str]]:
        """The real workflow with recorded results for activities: no rows, no files, so the
        appeals are made up in memory (the gateway reads only their ids and amounts)."""
        return await self._floor_runs(n, self.floor_gateway)

    async def io_floors(self, n: int) -> tuple[Batch, list[str]]:
        """The floor whose activities also do the real appeal's S3 calls and sends (ExternalIo);
        each run's upload is stored before the clock starts."""
        return await self._floor_runs(n, self.io_floor_gateway, before=self.io.store_upload)

    async def _floor_runs(
        self, n: int, gateway: TemporalGateway, before: Callable[[str], None] | None = None
    ) -> tuple[Batch, list[str]]:
        ids = [str(uuid.uuid4()) for _ in range(n)]
        appeals = [
            Appeal(
                id=appeal_id,
                workflow_id=workflow_id_for(appeal_id),
                status=S.SUBMITTED,
                customer_id=f"floor-{i}",
                account_id=f"floor-{i}",
                requested_limit_minor=REQUESTED_MINOR,
            )
            for i, appeal_id in enumerate(ids)
        ]
        if before is not None:
            for appeal_id in ids:
                before(appeal_id)
        handles = [self.client.get_workflow_handle(a.workflow_id) for a in appeals]
        signals = self.plan.totals()["signals"]  # the documents of the appeal the plan came from

        async def start(appeal: Appeal) -> None:
            await gateway.start_appeal(appeal)
            for number in range(signals):
                await gateway.document_uploaded(appeal.id, f"{appeal.id}-{number}")

        async def results() -> None:
            done = await asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), RESULT_TIMEOUT)
            ended = {result["status"] for result in done}
            if ended != {S.CLOSED}:
                raise SystemExit(f"a floor run ended badly: {ended}")

        batch = await timed(self.st, [partial(start, a) for a in appeals], results)
        return batch, [h.id for h in handles]

    async def count(self, workflow_id: str) -> ActionCount:
        return count_actions(await self.client.get_workflow_handle(workflow_id).fetch_history())


def noop_worker(client: Client, queue: str, executor: ThreadPoolExecutor) -> Worker:
    """Built as launcher.worker.build_worker builds the real one, with the no-op's definitions."""
    write_bytecode(noop_workflow)
    return Worker(
        client,
        task_queue=queue,
        workflows=[NoopAppealWorkflow],
        activities=[noop_step, noop_local],
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        interceptors=[ActivityLogInterceptor()],
    )


# -- the report -------------------------------------------------------------------------------


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def cpu_line(label: str, per_run: dict[str, float]) -> str:
    parts = "  ".join(f"{name} {value:6.1f}" for name, value in per_run.items() if name != "total")
    return f"  {label:<12} {per_run['total']:6.1f} ms  ({parts})"


def work_line(label: str, per_run: dict[str, float]) -> str:
    return f"  {label:<12} " + "  ".join(f"{name} {value:5.2f}" for name, value in per_run.items())


def medians(rows: list[dict[str, float]]) -> dict[str, float]:
    return {name: statistics.median(row[name] for row in rows) for name in rows[0]}


async def run(args: argparse.Namespace, st: Stack, directory: Path) -> None:
    settings = make_settings(
        directory,
        s3_endpoint_url=st.s3_endpoint,
        temporal_address=st.temporal_address,
        smtp_host="127.0.0.1",
        smtp_port=st.smtp_port,
        document_deadline=timedelta(hours=1),
    )
    s3 = make_s3_client(settings)
    ensure_bucket(s3, settings.s3_bucket)
    engine = make_engine(f"sqlite:///{directory / 'appeals.db'}")
    upgrade(engine)
    codec = None if args.no_encrypt else AesGcmCodec(PayloadKeys.generate("bench"))
    print(f"payloads: {'plain' if codec is None else 'encrypted (AES-256-GCM)'}")
    client = await Client.connect(st.temporal_address, data_converter=converter_with(codec))
    try:
        if not args.no_paths:
            runs = await run_paths(client, settings, engine, s3)
            print("\nTemporal actions per appeal path (one appeal each, from its real history):")
            print(table((str(r.path), r.count) for r in runs))
        await measure(args, Bench(st, settings, engine, s3, client))
    finally:
        engine.dispose()


async def measure(args: argparse.Namespace, bench: Bench) -> None:
    with (
        ThreadPoolExecutor(max_workers=args.executor, thread_name_prefix="appeal") as real_pool,
        ThreadPoolExecutor(max_workers=args.executor, thread_name_prefix="noop") as noop_pool,
        ThreadPoolExecutor(max_workers=args.executor, thread_name_prefix="floor") as floor_pool,
        ThreadPoolExecutor(max_workers=args.executor, thread_name_prefix="io-floor") as io_floor_pool,
    ):
        activities = AppealActivities(engine=bench.engine, s3_client=bench.s3, settings=bench.settings)
        results: dict[str, Any] = {}  # the floor's activity results, filled in from the reference
        async with (
            build_worker(bench.client, bench.settings, activities, real_pool),
            noop_worker(bench.client, bench.noop_queue, noop_pool),
            floor_worker(bench.client, bench.floor_queue, results, floor_pool),
            floor_worker(bench.client, bench.io_floor_queue, results, io_floor_pool, io=bench.io),
        ):
            # The no-op's shape, from an appeal run as the timed ones are.
            _, (reference_id,) = await bench.appeals(1)
            reference = await bench.client.get_workflow_handle(reference_id).fetch_history()
            bench.plan = plan_from_history(reference.events)
            results.update(await recorded_results(bench.client.data_converter, reference.events))
            bench.io.learn(bench.engine, reference_id.removeprefix(workflow_id_for("")))
            print("\nThe no-op's shape, from a timed auto-approve appeal's history:")
            print("  " + ", ".join(f"{name} {value}" for name, value in bench.plan.totals().items()))
            kinds: dict[str, Callable[[int], Awaitable[tuple[Batch, list[str]]]]] = {
                "appeal": bench.appeals,
                "no-op": bench.noops,
            }
            if args.floor:
                kinds["floor"] = bench.floors
                print("The floor: AppealWorkflow whose activities return these results at once:")
                for name, value in results.items():
                    print(f"  {name}: {value}")
            if args.io_floor:
                kinds["io floor"] = bench.io_floors
                sent = sorted(f"{m.channel} (notice {n})" for n, ms in bench.io.notices.items() for m in ms)
                print(
                    "The I/O floor: the floor, each activity first doing the appeal's S3 calls "
                    "(copy, read and lock of the upload) and sends: " + ", ".join(sent)
                )
            if args.issue_noop:
                issue_plan = plan_from_history(
                    WorkflowHistory.from_json("issue-11", ISSUE_11_HISTORY.read_text()).events
                )
                kinds["issue no-op"] = partial(bench.noops, plan=issue_plan)
                print(
                    "The issue's no-op: the shape of the auto-approve appeal before issue 11 "
                    f"({ISSUE_11_HISTORY.name}):"
                )
                print("  " + ", ".join(f"{name} {value}" for name, value in issue_plan.totals().items()))
            if args.warmup:
                await bench.appeals(args.warmup)
                _, noop_ids = await bench.noops(args.warmup)
                rows = [
                    ("appeal", await bench.count(reference_id)),
                    ("no-op", await bench.count(noop_ids[0])),
                ]
                if args.floor:
                    _, floor_ids = await bench.floors(args.warmup)
                    rows.append(("floor", await bench.count(floor_ids[0])))
                if args.io_floor:
                    _, io_floor_ids = await bench.io_floors(args.warmup)
                    rows.append(("io floor", await bench.count(io_floor_ids[0])))
                print("\nOne run of each as timed (the no-op has no heartbeats; its payloads are tiny):")
                print(table(rows))
                noop_history = await bench.client.get_workflow_handle(noop_ids[0]).fetch_history()
                print(
                    f"  history size: appeal {sum(e.ByteSize() for e in reference.events):,} bytes, "
                    f"no-op {sum(e.ByteSize() for e in noop_history.events):,} bytes (payloads as stored)"
                )

            n = args.appeals
            names = list(kinds)
            # What each rate is compared with: the appeal with each no-op, the floor with today's.
            ratios = [("appeal", "no-op")]
            ratios += [("floor", "no-op")] if args.floor else []
            ratios += [("io floor", "no-op")] if args.io_floor else []
            ratios += [("appeal", "issue no-op")] if args.issue_noop else []
            print(f"\n{args.rounds} rounds of {n} runs of each kind, the order rotating each round:")
            print(
                f"  {'round':>5} "
                + " ".join(f"{name + '/s':>14}" for name in names)
                + " "
                + " ".join(f"{a + ' : ' + b:>24}" for a, b in ratios)
                + "  load"
            )
            rates: dict[str, list[float]] = {kind: [] for kind in kinds}
            cpu: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
            server: dict[str, list[dict[str, float]]] = {kind: [] for kind in kinds}
            for number in range(args.rounds):
                # AB, BA, ... with two kinds; ABC, BCA, CAB, ... with more
                shift = number % len(names)
                order = names[shift:] + names[:shift]
                batches = {}
                for kind in order:
                    batches[kind], _ = await kinds[kind](n)
                for kind, batch in batches.items():
                    rates[kind].append(batch.rate(n))
                    cpu[kind].append(batch.cpu_ms_per_run(n))
                    server[kind].append(batch.server_per_run(n))
                print(
                    f"  {number + 1:>5} "
                    + " ".join(f"{rates[name][-1]:>14.2f}" for name in names)
                    + " "
                    + " ".join(f"{rates[a][-1] / rates[b][-1]:>24.2f}" for a, b in ratios)
                    + f"  {load()}"
                )
            print("  median of the rounds:")
            for name in names:
                print(f"    {name:<12} {statistics.median(rates[name]):6.2f} runs/s")
            for a, b in ratios:
                ratio = statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True))
                print(f"    {a} : {b:<12} ratio {ratio:.2f} (median of the rounds' ratios)")
            if args.issue_noop:
                print(
                    "    (issue 11 measured appeal : issue no-op at 0.42 and set its goal at 0.7;\n"
                    "     appeal : no-op is against a no-op of today's leaner shape: see the docstring)"
                )
            print("CPU per run (median of the rounds; worker = this process):")
            for name in names:
                print(cpu_line(name, medians(cpu[name])))
            scheduled = bench.plan.totals()["activities"]
            print(f"Dev server work per run, of {scheduled} activities (median of the rounds; its metrics):")
            for name in names:
                print(work_line(name, medians(server[name])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appeals", type=int, default=60, help="appeals (and no-op runs) per round")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=10, help="untimed runs of each first")
    parser.add_argument("--executor", type=int, default=16, help="activity threads per worker")
    parser.add_argument("--no-paths", action="store_true", help="skip the actions per path")
    parser.add_argument("--no-encrypt", action="store_true", help="plain payloads (no codec)")
    parser.add_argument(
        "--floor", action="store_true", help="also time AppealWorkflow with activities that do no work"
    )
    parser.add_argument(
        "--io-floor",
        action="store_true",
        help="also time the floor with the appeal's S3 calls and sends done for real",
    )
    parser.add_argument(
        "--issue-noop",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time a no-op of the auto-approve shape issue 11 measured (bench/fixtures/); on unless "
        "--no-issue-noop",
    )
    args = parser.parse_args(argv)
    print(f"load average before: {load()}  ({os.cpu_count()} CPUs)")
    # The stack starts outside the event loop: its readiness checks run loops of their own.
    with tempfile.TemporaryDirectory(prefix="temporal-bench-") as tmp, stack(Path(tmp)) as st:
        asyncio.run(run(args, st, Path(tmp)))
    print(f"\nload average after: {load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
