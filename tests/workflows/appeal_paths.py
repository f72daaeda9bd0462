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
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import Client, WorkflowHistory

from api.review_queue import claim, decide
from api.schemas.review_tasks import DecisionBody
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


class AppealPath(StrEnum):
    AUTO_APPROVE = "auto-approve"
    AUTO_DECLINE = "auto-decline"
    MANUAL = "manual"
    FOUR_EYES = "four-eyes"


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

    async def submit_with_documents(
        self, days_past_due: tuple[int, ...], original: int, requested: int
    ) -> str:
        """`POST /appeals`, then an upload of each checklist item once the appeal asks for them."""
        customer = customer_with_contacts(
            self.engine, days_past_due=days_past_due, original_limit_minor=original
        )
        with session_scope(self.engine) as session:
            appeal, _ = create_appeal(
                session, NewAppeal(customer.customer_id, customer.account_id, requested)
            )
        await self.gateway.start_appeal(appeal)
        await self.settled(appeal.id, S.AWAITING_DOCUMENTS)
        with session_scope(self.engine, read_only=True) as session:
            wanted = missing_types(session, appeal.id)
        self._seed += 1
        handle = self.client.get_workflow_handle(workflow_id_for(appeal.id))
        for index, document in enumerate(document_bodies(wanted, self._seed)):
            if index:
                await self.settled(appeal.id, S.AWAITING_DOCUMENTS)
            await upload_documents(
                handle, self.settings, self.engine, self.s3, customer.customer_id, appeal.id, (document,)
            )
        return appeal.id

    async def review(
        self, appeal_id: str, reviewer: Principal, amount: int, *, stage: int, expect: AppealStatus
    ) -> None:
        """The stage's open task is claimed by `reviewer` and approved with `amount`, each once
        the appeal shows the step before, as through the API."""
        pending, in_review = (
            (S.PENDING_REVIEW, S.IN_REVIEW) if stage == 1 else (S.PENDING_SECOND_REVIEW, S.IN_SECOND_REVIEW)
        )
        await self.settled(appeal_id, pending)
        task_id = await self._open_task(appeal_id)
        await claim(self.engine, self.gateway, reviewer, task_id, None)
        await self.settled(appeal_id, in_review)
        _, accepted = await decide(
            self.engine,
            self.gateway,
            reviewer,
            task_id,
            DecisionBody.model_validate({"outcome": "APPROVE", "approved_limit_minor": amount}),
            idempotency_key=f"paths-{task_id}",
            if_match=None,
        )
        if accepted.status != expect:
            raise AssertionError(f"appeal {appeal_id}: the decision answered {accepted.status}, not {expect}")

    async def _open_task(self, appeal_id: str) -> str:
        def probe() -> str | None:
            with session_scope(self.engine, read_only=True) as session:
                return session.exec(
                    select(ReviewTask.id).where(
                        ReviewTask.appeal_id == appeal_id, ReviewTask.status == TaskStatus.OPEN
                    )
                ).first()

        task_id = await eventually(probe, what=f"an open review task for appeal {appeal_id}")
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
