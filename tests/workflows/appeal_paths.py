"""The four paths of issue 11, each driven to completion on a real worker, for counting their
Temporal actions: the action-budget test (tests/workflows/test_action_budget.py) and
bench/temporal_bench.py use it.

    async with path_runner(client, settings, engine, s3) as runner:
        run = await runner.run(AppealPath.AUTO_APPROVE)
        run.count.actions, run.history

Each path goes through the appeal's public doors only, as the API does, so that the workflow's
insides may change freely: the gateway's start (its input built from settings, like
`POST /appeals`), documents stored as an upload stores them (S3 object, Document row) and the
`document_uploaded` signal (tests.workflows.test_review_update.upload_documents), the queue's
claim use case (the database claim, then the `review_claim_changed` signal, as
`POST /review-tasks/{id}/claim`) and its decision use case (the `decide` update, as
`POST /review-tasks/{id}/decision`).

At a person's pace: the customer uploads, and a reviewer claims or decides, only once the
appeal shows the previous step and the workflow has settled (no activity and no workflow task
pending, so the notices of the step before are delivered), never in the same instant, one file
at a time. So the counts are those of a real case, and do not depend on how fast the driver or
the machine is. The customer has an email address and a phone number, as real customers do:
each customer notice is planned, then delivered by email (to an SMTP sink the runner starts)
and SMS (the recording provider); no partner webhook is configured.

- AUTO_APPROVE: a steady payer (12 bills on time) asks for 6,000 of 8,000: AUTO_APPROVED, the
  limit applied, CLOSED.
- AUTO_DECLINE: one bill 95 days late (repaid): the severe-delinquency knock-out, AUTO_DECLINED;
  nobody asks for a human review, so the appeal closes when the window passes (a few seconds
  here: `HUMAN_REVIEW_WINDOW`).
- MANUAL: a late payer goes to review; a reviewer claims it and approves in full.
- FOUR_EYES: a late payer asks for 25,000 of 30,000; a senior reviewer approves 25,000 (at or
  above the policy's four-eyes amount), a second senior claims the second task and approves
  20,000.

The document deadline is an hour (never reached; reminders scale with it) and the review SLA
the settings' (an hour in the tests), so no reminder or SLA timer fires during a run.

`TerminalPath` names every way an appeal ends, for the saved histories that
tests/workflows/test_replay.py replays (scripts/export_histories.py records them with
`run_terminal_paths`): the four above under their own names, and

- PARTIAL_APPROVE: a late payer asks for 6,000; the reviewer approves 5,000.
- MANUAL_DECLINE: a late payer; the reviewer declines with a policy reason code.
- AUTO_DECLINE_HUMAN_REVIEW: the automatic decline above; the customer asks for a human review
  within the window (an hour for this appeal), a reviewer claims it and declines.
- REQUEST_INFO: a late payer; the reviewer asks for an employment proof, the customer uploads
  it, the checks rerun and the task comes back to the same reviewer, who approves.
- WITHDRAW: a late payer withdraws while a reviewer holds the task.
- EXPIRED: nothing is uploaded; two reminders, then the deadline (seconds for this appeal).
- LIMIT_REFUSED: a steady payer is approved automatically, and the credit-line API refuses the
  limit (409): LIMIT_APPLY_FAILED. Its worker has the API configured (`refusing_credit_line_api`),
  so `run_terminal_paths` runs it on a second runner.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import Client, WorkflowHistory

from api.review_queue import claim, decide
from api.schemas.review_tasks import DecisionBody
from api.services import request_human_review, withdraw_appeal
from core.appeals.service import NewAppeal, create_appeal, workflow_id_for
from core.auth import Principal, Role
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.case_tables import Appeal, AppealEvent, ReviewTask, TaskStatus
from core.db.ledger_tables import Customer
from core.documents.checklist import missing_types
from core.months import full_calendar_months_range
from core.settings import Settings
from core.status import AppealStatus
from gateway.temporal import TemporalGateway
from launcher.mail import start_smtp_sink
from launcher.stack import free_port
from tests.core.documents.factories import rows_covering
from tests.documents import recent_statement_csv, text_pdf
from tests.eventually import eventually, patience
from tests.factories import LedgerCustomer, make_customer
from tests.workflows.actions import ActionCount, HeartbeatCounter, count_actions, counting_client
from tests.workflows.conftest import running_worker
from tests.workflows.test_review_update import LATE_PAYER, upload_documents

S = AppealStatus

STEADY = (0,) * 12
SEVERELY_LATE = (0, 0, 95, 0, 0, 0, 0, 0, 0, 0, 0, 0)  # the severe-delinquency knock-out
HUMAN_REVIEW_WINDOW = timedelta(seconds=3)
DOCUMENT_DEADLINE = timedelta(hours=1)
# AUTO_DECLINE_HUMAN_REVIEW asks within a window no machine is too slow for; EXPIRED waits out
# a deadline of seconds, with the policy's two reminders scaled into it.
ASKING_WINDOW = timedelta(hours=1)
EXPIRING_DEADLINE = timedelta(seconds=4)


class AppealPath(StrEnum):
    AUTO_APPROVE = "auto-approve"
    AUTO_DECLINE = "auto-decline"
    MANUAL = "manual"
    FOUR_EYES = "four-eyes"


class TerminalPath(StrEnum):
    """Every way an appeal ends (the module's docstring says how each is driven); the value
    names its saved history, tests/histories/<value>.json."""

    AUTO_APPROVE = "auto-approve"
    AUTO_DECLINE_CLOSED = "auto-decline-closed"
    AUTO_DECLINE_HUMAN_REVIEW = "auto-decline-human-review"
    MANUAL_APPROVE = "manual-approve"
    PARTIAL_APPROVE = "partial-approve"
    MANUAL_DECLINE = "manual-decline"
    FOUR_EYES = "four-eyes"
    REQUEST_INFO = "request-info"
    WITHDRAW = "withdraw"
    EXPIRED = "expired"
    LIMIT_REFUSED = "limit-refused"


# The issue-11 paths among them, driven by `PathRunner.run`.
AS_APPEAL_PATH = {
    TerminalPath.AUTO_APPROVE: AppealPath.AUTO_APPROVE,
    TerminalPath.AUTO_DECLINE_CLOSED: AppealPath.AUTO_DECLINE,
    TerminalPath.MANUAL_APPROVE: AppealPath.MANUAL,
    TerminalPath.FOUR_EYES: AppealPath.FOUR_EYES,
}

# What each path must show: statuses in its audit trail, in this order (others may come between),
# and the status it ends in.
TERMINAL_TRAILS: dict[TerminalPath, tuple[tuple[AppealStatus, ...], AppealStatus]] = {
    TerminalPath.AUTO_APPROVE: ((S.AUTO_APPROVED, S.LIMIT_APPLIED), S.CLOSED),
    TerminalPath.AUTO_DECLINE_CLOSED: ((S.AUTO_DECLINED,), S.CLOSED),
    TerminalPath.AUTO_DECLINE_HUMAN_REVIEW: (
        (S.AUTO_DECLINED, S.PENDING_REVIEW, S.IN_REVIEW, S.DECLINED),
        S.CLOSED,
    ),
    TerminalPath.MANUAL_APPROVE: ((S.PENDING_REVIEW, S.IN_REVIEW, S.APPROVED, S.LIMIT_APPLIED), S.CLOSED),
    TerminalPath.PARTIAL_APPROVE: ((S.IN_REVIEW, S.PARTIALLY_APPROVED, S.LIMIT_APPLIED), S.CLOSED),
    TerminalPath.MANUAL_DECLINE: ((S.IN_REVIEW, S.DECLINED), S.CLOSED),
    TerminalPath.FOUR_EYES: (
        (S.IN_REVIEW, S.PENDING_SECOND_REVIEW, S.IN_SECOND_REVIEW, S.PARTIALLY_APPROVED),
        S.CLOSED,
    ),
    TerminalPath.REQUEST_INFO: (
        (S.IN_REVIEW, S.INFO_REQUESTED, S.AWAITING_DOCUMENTS, S.IN_REVIEW, S.APPROVED),
        S.CLOSED,
    ),
    TerminalPath.WITHDRAW: ((S.IN_REVIEW,), S.WITHDRAWN),
    TerminalPath.EXPIRED: ((S.AWAITING_DOCUMENTS,), S.EXPIRED),
    TerminalPath.LIMIT_REFUSED: ((S.AUTO_APPROVED,), S.LIMIT_APPLY_FAILED),
}


@dataclass(frozen=True)
class TerminalRun:
    path: TerminalPath
    appeal_id: str
    workflow_id: str
    final_status: AppealStatus
    statuses: list[AppealStatus]  # the audit trail's transitions, in order
    history: WorkflowHistory


@dataclass(frozen=True)
class PathRun:
    path: AppealPath
    appeal_id: str
    workflow_id: str
    final_status: AppealStatus
    statuses: list[AppealStatus]  # the audit trail's transitions, in order
    history: WorkflowHistory
    count: ActionCount


def path_settings(settings: Settings, **overrides: Any) -> Settings:
    """The settings the paths run with: a short human-review window, a deadline never reached,
    and a task queue of their own (so another worker on `settings`' queue takes none of it)."""
    return settings.model_copy(
        update={
            "human_review_window": HUMAN_REVIEW_WINDOW,
            "document_deadline": DOCUMENT_DEADLINE,
            "temporal_task_queue": f"{settings.temporal_task_queue}-paths",
            **overrides,
        }
    )


def statement_csv(seed: int, months: int = 3) -> bytes:
    """`recent_statement_csv` for the first of the seeds `seed * 100 + k` (disjoint from every
    other seed's) whose transactions reach both ends of the last `months` full months. A random
    statement may start or stop a few days inside them; the assessment would then find it too
    short and send a steady payer to review."""
    today = SYSTEM_CLOCK.today()
    window = full_calendar_months_range(today, months)
    for candidate in range(seed * 100, seed * 100 + 100):
        rows = rows_covering(today, months, lead_days=3, seed=candidate)
        if rows[0].date <= window.start and rows[-1].date >= window.end:
            return recent_statement_csv(today, months, seed=candidate)
    raise AssertionError(f"no statement from seed {seed} covers {window}")


def document_bodies(doc_types: list[str], seed: int) -> list[tuple[str, bytes, str]]:
    """One good file per checklist item, unlike any other appeal's (the worker flags files it
    has seen before): a statement covering the required months, a PDF for everything else."""
    return [
        ("BANK_STATEMENT", statement_csv(seed), "text/csv")
        if doc_type == "BANK_STATEMENT"
        else (
            doc_type,
            text_pdf(doc_type.replace("_", " ").title(), (f"Reference {seed}",)),
            "application/pdf",
        )
        for doc_type in doc_types
    ]


def customer_with_contacts(engine: Engine, **ledger: Any) -> LedgerCustomer:
    """`make_customer` with an email address and a phone number, so notices go out on both."""
    customer = make_customer(engine, **ledger)
    with session_scope(engine) as session:
        row = session.get(Customer, customer.customer_id)
        assert row is not None
        row.email, row.phone = f"{customer.customer_id}@example.test", "+8613800000000"
    return customer


def audit_statuses(engine: Engine, appeal_id: str) -> list[AppealStatus]:
    with session_scope(engine, read_only=True) as session:
        rows = session.exec(
            select(AppealEvent.to_status)
            .where(AppealEvent.appeal_id == appeal_id, col(AppealEvent.to_status).is_not(None))
            .order_by(col(AppealEvent.seq))
        ).all()
    return [AppealStatus(status) for status in rows if status is not None]


def appeal_status(engine: Engine, appeal_id: str) -> AppealStatus:
    with session_scope(engine, read_only=True) as session:
        appeal = session.get(Appeal, appeal_id)
        assert appeal is not None
        return AppealStatus(appeal.status)


class PathRunner:
    """Drives appeals along the four paths on a worker started by `path_runner`."""

    def __init__(
        self, client: Client, settings: Settings, engine: Engine, s3: Any, heartbeats: HeartbeatCounter
    ) -> None:
        self.client = client
        self.settings = settings
        self.engine = engine
        self.s3 = s3
        self.heartbeats = heartbeats
        self.gateway = TemporalGateway(settings, client)
        self._seed = 700 + uuid.uuid4().int % 10_000

    async def run(self, path: AppealPath) -> PathRun:
        if path is AppealPath.AUTO_APPROVE:
            appeal_id = await self.submit_with_documents(STEADY, 800_000, 600_000)
        elif path is AppealPath.AUTO_DECLINE:
            appeal_id = await self.submit_with_documents(SEVERELY_LATE, 800_000, 600_000)
        elif path is AppealPath.MANUAL:
            appeal_id = await self.submit_with_documents(LATE_PAYER, 800_000, 600_000)
            reviewer = Principal("r-paths-1", Role.REVIEWER)
            await self.review(appeal_id, reviewer, 600_000, stage=1, expect=S.APPROVED)
        else:
            appeal_id = await self.submit_with_documents(LATE_PAYER, 3_000_000, 2_500_000)
            first = Principal("s-paths-1", Role.SENIOR_REVIEWER)
            await self.review(appeal_id, first, 2_500_000, stage=1, expect=S.PENDING_SECOND_REVIEW)
            second = Principal("s-paths-2", Role.SENIOR_REVIEWER)
            await self.review(appeal_id, second, 2_000_000, stage=2, expect=S.PARTIALLY_APPROVED)
        return await self.finished(path, appeal_id)

    async def settled(self, appeal_id: str, status: AppealStatus) -> None:
        """Until the appeal shows `status` and its workflow has nothing pending (no activity,
        no workflow task): what a person would see before acting."""
        handle = self.client.get_workflow_handle(workflow_id_for(appeal_id))

        async def idle() -> bool:
            if appeal_status(self.engine, appeal_id) != status:
                return False
            described = (await handle.describe()).raw_description
            return not described.pending_activities and not described.HasField("pending_workflow_task")

        await eventually(idle, what=f"appeal {appeal_id} to settle in {status.value}")

    async def submit(
        self,
        days_past_due: tuple[int, ...],
        original: int,
        requested: int,
        *,
        gateway: TemporalGateway | None = None,
    ) -> tuple[LedgerCustomer, str]:
        """`POST /appeals` for a new customer: the appeal row, then its workflow's start (by
        `gateway`, whose settings give the appeal its timings; the runner's by default)."""
        customer = customer_with_contacts(
            self.engine, days_past_due=days_past_due, original_limit_minor=original
        )
        with session_scope(self.engine) as session:
            appeal, _ = create_appeal(
                session, NewAppeal(customer.customer_id, customer.account_id, requested)
            )
        await (gateway or self.gateway).start_appeal(appeal)
        return customer, appeal.id

    async def upload_missing(self, customer_id: str, appeal_id: str) -> None:
        """Once the appeal asks for documents, an upload of each missing checklist item, one at
        a time."""
        await self.settled(appeal_id, S.AWAITING_DOCUMENTS)
        with session_scope(self.engine, read_only=True) as session:
            wanted = missing_types(session, appeal_id)
        self._seed += 1
        handle = self.client.get_workflow_handle(workflow_id_for(appeal_id))
        for index, document in enumerate(document_bodies(wanted, self._seed)):
            if index:
                await self.settled(appeal_id, S.AWAITING_DOCUMENTS)
            await upload_documents(
                handle, self.settings, self.engine, self.s3, customer_id, appeal_id, (document,)
            )

    async def submit_with_documents(
        self,
        days_past_due: tuple[int, ...],
        original: int,
        requested: int,
        *,
        gateway: TemporalGateway | None = None,
    ) -> str:
        """`POST /appeals`, then an upload of each checklist item once the appeal asks for them."""
        customer, appeal_id = await self.submit(days_past_due, original, requested, gateway=gateway)
        await self.upload_missing(customer.customer_id, appeal_id)
        return appeal_id

    async def review(
        self, appeal_id: str, reviewer: Principal, amount: int, *, stage: int, expect: AppealStatus
    ) -> None:
        """The stage's open task is claimed by `reviewer` and approved with `amount`, each once
        the appeal shows the step before, as through the API."""
        task_id = await self.claim_task(appeal_id, reviewer, stage=stage)
        approve = {"outcome": "APPROVE", "approved_limit_minor": amount}
        await self.decide_task(appeal_id, reviewer, task_id, approve, expect=expect)

    async def claim_task(self, appeal_id: str, reviewer: Principal, *, stage: int = 1) -> str:
        """Once the appeal waits for the stage's reviewer, `reviewer` claims its open task (as
        `POST /review-tasks/{id}/claim`); returns the task's id once the claim shows."""
        pending, in_review = (
            (S.PENDING_REVIEW, S.IN_REVIEW) if stage == 1 else (S.PENDING_SECOND_REVIEW, S.IN_SECOND_REVIEW)
        )
        await self.settled(appeal_id, pending)
        task_id = await self._open_task(appeal_id)
        await claim(self.engine, self.gateway, reviewer, task_id, None)
        await self.settled(appeal_id, in_review)
        return task_id

    async def decide_task(
        self,
        appeal_id: str,
        reviewer: Principal,
        task_id: str,
        body: dict[str, Any],
        *,
        expect: AppealStatus,
    ) -> None:
        """`POST /review-tasks/{id}/decision` with `body`; the decision must answer `expect`."""
        _, accepted = await decide(
            self.engine,
            self.gateway,
            reviewer,
            task_id,
            DecisionBody.model_validate(body),
            idempotency_key=f"paths-{task_id}",
            if_match=None,
        )
        if accepted.status != expect:
            raise AssertionError(f"appeal {appeal_id}: the decision answered {accepted.status}, not {expect}")

    async def _open_task(self, appeal_id: str, status: TaskStatus = TaskStatus.OPEN) -> str:
        def probe() -> str | None:
            with session_scope(self.engine, read_only=True) as session:
                return session.exec(
                    select(ReviewTask.id).where(
                        ReviewTask.appeal_id == appeal_id, ReviewTask.status == status
                    )
                ).first()

        task_id = await eventually(probe, what=f"a {status.value} review task for appeal {appeal_id}")
        assert task_id is not None
        return task_id

    async def finished(self, path: AppealPath, appeal_id: str) -> PathRun:
        handle = self.client.get_workflow_handle(workflow_id_for(appeal_id))
        await asyncio.wait_for(handle.result(), patience(60))  # raises if the workflow failed
        history = await handle.fetch_history()
        final = appeal_status(self.engine, appeal_id)
        statuses = audit_statuses(self.engine, appeal_id)
        expected = {
            AppealPath.AUTO_APPROVE: S.AUTO_APPROVED,
            AppealPath.AUTO_DECLINE: S.AUTO_DECLINED,
            AppealPath.MANUAL: S.APPROVED,
            AppealPath.FOUR_EYES: S.PENDING_SECOND_REVIEW,
        }[path]
        if expected not in statuses or final != S.CLOSED:
            raise AssertionError(f"{path}: appeal {appeal_id} went {statuses}, never {expected} then CLOSED")
        return PathRun(
            path=path,
            appeal_id=appeal_id,
            workflow_id=handle.id,
            final_status=final,
            statuses=statuses,
            history=history,
            count=count_actions(history, heartbeats=self.heartbeats.for_workflow(handle.id)),
        )

    # -- every terminal path (TerminalPath) ---------------------------------------------------

    async def run_terminal(self, path: TerminalPath) -> TerminalRun:
        """One appeal driven along `path` to its end. LIMIT_REFUSED needs a runner whose worker
        has a refusing credit-line API (`run_terminal_paths` makes one)."""
        if path in AS_APPEAL_PATH:
            appeal_id = (await self.run(AS_APPEAL_PATH[path])).appeal_id
        else:
            appeal_id = await self._drive(path)
        return await self.ended(path, appeal_id)

    def _with_timing(self, **timing: Any) -> TemporalGateway:
        """A gateway starting appeals with other timings (its settings make the start's input);
        the worker is the runner's."""
        return TemporalGateway(self.settings.model_copy(update=timing), self.client)

    async def _drive(self, path: TerminalPath) -> str:
        reviewer = Principal("r-paths-1", Role.REVIEWER)
        if path is TerminalPath.PARTIAL_APPROVE:
            appeal_id = await self.submit_with_documents(LATE_PAYER, 800_000, 600_000)
            await self.review(appeal_id, reviewer, 500_000, stage=1, expect=S.PARTIALLY_APPROVED)
        elif path is TerminalPath.MANUAL_DECLINE:
            appeal_id = await self.submit_with_documents(LATE_PAYER, 800_000, 600_000)
            task_id = await self.claim_task(appeal_id, reviewer)
            decline = {"outcome": "DECLINE", "reasons": ["RC_LATE_PAYMENTS"]}
            await self.decide_task(appeal_id, reviewer, task_id, decline, expect=S.DECLINED)
        elif path is TerminalPath.AUTO_DECLINE_HUMAN_REVIEW:
            asking = self._with_timing(human_review_window=ASKING_WINDOW)
            customer, appeal_id = await self.submit(SEVERELY_LATE, 800_000, 600_000, gateway=asking)
            await self.upload_missing(customer.customer_id, appeal_id)
            await self.settled(appeal_id, S.AUTO_DECLINED)
            me = Principal(customer.customer_id, Role.CUSTOMER)
            await request_human_review(self.engine, self.gateway, me, appeal_id, "Please look again.")
            task_id = await self.claim_task(appeal_id, reviewer)
            decline = {"outcome": "DECLINE", "reasons": ["RC_SEVERE_DELINQUENCY"]}
            await self.decide_task(appeal_id, reviewer, task_id, decline, expect=S.DECLINED)
        elif path is TerminalPath.REQUEST_INFO:
            customer, appeal_id = await self.submit(LATE_PAYER, 800_000, 600_000)
            await self.upload_missing(customer.customer_id, appeal_id)
            task_id = await self.claim_task(appeal_id, reviewer)
            ask = {
                "outcome": "REQUEST_INFO",
                "requested_documents": ["EMPLOYMENT_PROOF"],
                "note": "Please add a letter from your employer.",
            }
            await self.decide_task(appeal_id, reviewer, task_id, ask, expect=S.INFO_REQUESTED)
            await self.upload_missing(customer.customer_id, appeal_id)
            # The checks rerun and the next round's task comes back to the same reviewer, claimed.
            await self.settled(appeal_id, S.IN_REVIEW)
            again = await self._open_task(appeal_id, TaskStatus.CLAIMED)
            approve = {"outcome": "APPROVE", "approved_limit_minor": 600_000}
            await self.decide_task(appeal_id, reviewer, again, approve, expect=S.APPROVED)
        elif path is TerminalPath.WITHDRAW:
            customer, appeal_id = await self.submit(LATE_PAYER, 800_000, 600_000)
            await self.upload_missing(customer.customer_id, appeal_id)
            await self.claim_task(appeal_id, reviewer)
            me = Principal(customer.customer_id, Role.CUSTOMER)
            await withdraw_appeal(self.engine, self.gateway, me, appeal_id, "I no longer need it.")
        elif path is TerminalPath.EXPIRED:
            expiring = self._with_timing(document_deadline=EXPIRING_DEADLINE)
            _, appeal_id = await self.submit(STEADY, 800_000, 600_000, gateway=expiring)
        elif path is TerminalPath.LIMIT_REFUSED:
            if self.settings.credit_line_api_url is None:
                raise ValueError("LIMIT_REFUSED needs a runner whose worker has a refusing credit-line API")
            appeal_id = await self.submit_with_documents(STEADY, 800_000, 600_000)
        else:
            raise ValueError(f"{path} is driven by PathRunner.run")
        return appeal_id

    async def ended(self, path: TerminalPath, appeal_id: str) -> TerminalRun:
        """The appeal's workflow completed (it raises if it failed) and its audit trail shows
        `TERMINAL_TRAILS[path]`; its history."""
        handle = self.client.get_workflow_handle(workflow_id_for(appeal_id))
        await asyncio.wait_for(handle.result(), patience(60))
        history = await handle.fetch_history()
        final = appeal_status(self.engine, appeal_id)
        statuses = audit_statuses(self.engine, appeal_id)
        trail, end = TERMINAL_TRAILS[path]
        remaining = iter(statuses)
        in_order = all(status in remaining for status in trail)  # a subsequence of the trail
        if path is TerminalPath.AUTO_DECLINE_CLOSED and S.PENDING_REVIEW in statuses:
            in_order = False
        if final != end or not in_order:
            raise AssertionError(f"{path}: appeal {appeal_id} went {statuses}, not {list(trail)} ... {end}")
        return TerminalRun(
            path=path,
            appeal_id=appeal_id,
            workflow_id=handle.id,
            final_status=final,
            statuses=statuses,
            history=history,
        )


@asynccontextmanager
async def path_runner(
    client: Client, settings: Settings, engine: Engine, s3: Any
) -> AsyncIterator[PathRunner]:
    """A worker built as the real one is (launcher.worker.build_worker) on `path_settings`' own
    task queue, on a client that counts heartbeats, with an SMTP sink of its own for the email
    notices; the runner drives appeals through it."""
    port = free_port()
    logs = settings.data_dir / "paths"
    sink = start_smtp_sink(host="127.0.0.1", port=port, mail_dir=logs / "mail", log_path=logs / "smtp.log")
    try:
        heartbeats = HeartbeatCounter()
        counted = counting_client(client, heartbeats)
        run_settings = path_settings(settings, smtp_host="127.0.0.1", smtp_port=port)
        async with running_worker(counted, run_settings, engine, s3):
            yield PathRunner(counted, run_settings, engine, s3, heartbeats)
    finally:
        sink.stop()


async def run_paths(
    client: Client,
    settings: Settings,
    engine: Engine,
    s3: Any,
    paths: tuple[AppealPath, ...] = tuple(AppealPath),
) -> list[PathRun]:
    """Each path once, one after the other (a lone appeal's history, not one under load)."""
    async with path_runner(client, settings, engine, s3) as runner:
        return [await runner.run(path) for path in paths]


@contextmanager
def refusing_credit_line_api() -> Iterator[str]:
    """A credit-line API (its URL) that refuses every limit, as a closed credit line is refused:
    409 with a reason. A worker configured with it stops an approved appeal at LIMIT_APPLY_FAILED."""

    class Refusing(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"error": "credit line is closed"}).encode()
            self.send_response(409)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def run_terminal_paths(
    client: Client,
    settings: Settings,
    engine: Engine,
    s3: Any,
    paths: tuple[TerminalPath, ...] = tuple(TerminalPath),
) -> list[TerminalRun]:
    """Each path once, one after the other, in `paths`' order; LIMIT_REFUSED on a worker of its
    own (its own task queue) whose credit-line API refuses."""
    runs: dict[TerminalPath, TerminalRun] = {}
    ordinary = [path for path in paths if path is not TerminalPath.LIMIT_REFUSED]
    if ordinary:
        async with path_runner(client, settings, engine, s3) as runner:
            for path in ordinary:
                runs[path] = await runner.run_terminal(path)
    if TerminalPath.LIMIT_REFUSED in paths:
        with refusing_credit_line_api() as url:
            refusing = settings.model_copy(
                update={
                    "credit_line_api_url": url,
                    "temporal_task_queue": f"{settings.temporal_task_queue}-refusing",
                }
            )
            async with path_runner(client, refusing, engine, s3) as runner:
                runs[TerminalPath.LIMIT_REFUSED] = await runner.run_terminal(TerminalPath.LIMIT_REFUSED)
    return [runs[path] for path in paths]
