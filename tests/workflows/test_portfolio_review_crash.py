"""A portfolio review whose worker process is killed (SIGKILL) mid-batch: a new worker process
finishes the run and no account is acted on twice.

The worker runs as `appeals worker` does in production (launcher/stack.py `python_module`,
started as `appeals dev` starts it) against the session's Temporal dev server and a SQLite file
shared with the test. The review runs with a short heartbeat timeout, so the server gives up on
the killed attempt in seconds and a retry, resumed from the last heartbeat it heard, runs on the
second worker. Every restricted account is then decided exactly once (one `review_action` row),
restored at most once by the review (one `limit_event` of source portfolio-review), the run's
counts equal the rows, and every account's audit chain verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RPCError

from core.db import make_engine, session_scope
from core.db.ledger_tables import LimitEvent
from core.db.migrate import create_all_at_head
from core.db.review_tables import ReviewAction, ReviewOutcome, ReviewRun
from core.ledger.account_audit import verify_account_trail
from core.ledger.eligibility import REVIEW_SOURCE
from core.ledger.generator import seed_population
from core.lender.review import restricted_account_ids
from core.settings import Settings
from gateway.codec import new_key
from gateway.temporal import connect_temporal
from launcher.dev import settings_env
from launcher.review_schedule import review_schedule_id
from launcher.stack import ManagedProcess, python_module
from launcher.sweep_schedule import sweep_schedule_id
from tests.conftest import make_settings
from tests.eventually import eventually, patience
from workflows.portfolio_review import PortfolioReviewInput, PortfolioReviewWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

TODAY = date(2026, 6, 15)
ACCOUNTS = 300
BATCH = 15
# The server retries the killed worker's batch this long after its last heartbeat.
HEARTBEAT_TIMEOUT = timedelta(seconds=2)


@pytest.fixture
def crash_settings(tmp_path: Path, s3_endpoint: str, temporal_address: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'appeals.db'}",
        s3_endpoint_url=s3_endpoint,
        temporal_address=temporal_address,
        # Encrypted payloads, as every deployment has them; the worker gets the key by its env.
        payload_keys={"crash-test": new_key()},
        # Nothing listens there: a notice's e-mail stays in the outbox, which is not the point.
        smtp_port=9,
    )


@pytest.fixture
def crash_engine(crash_settings: Settings) -> Iterator[Engine]:
    engine = make_engine(crash_settings.effective_database_url)
    create_all_at_head(engine)
    yield engine
    engine.dispose()


class WorkerProcess:
    """`appeals worker` as its own process (and process group), killed with SIGKILL."""

    def __init__(self, settings: Settings, log_dir: Path) -> None:
        self._settings = settings
        self._log_dir = log_dir
        self.started: list[ManagedProcess] = []

    def start(self) -> ManagedProcess:
        env = {**settings_env(self._settings), "PYTHONUNBUFFERED": "1"}
        name = f"worker-{len(self.started) + 1}"
        proc = python_module(name, ["worker"], env=env, log_path=self._log_dir / f"{name}.log")
        self.started.append(proc.start())
        return proc

    @staticmethod
    def kill(proc: ManagedProcess) -> None:
        assert proc.process is not None and proc.alive(), proc.tail()
        os.killpg(proc.process.pid, signal.SIGKILL)
        assert proc.process.wait(patience(30)) == -signal.SIGKILL

    def stop_all(self) -> None:
        for proc in self.started:
            proc.stop()


def _decided(engine: Engine) -> int:
    with session_scope(engine, read_only=True) as session:
        return int(
            session.exec(
                select(func.count()).select_from(ReviewAction).where(ReviewAction.run_date == TODAY)
            ).one()
        )


def _frozen_mid_batch(proc: ManagedProcess, engine: Engine, low: int) -> Callable[[], int]:
    """A probe that stops the worker's process group and counts the decided accounts: left
    stopped, the count, when at least `low` are decided and the last batch is part-way (batches
    are BATCH consecutive accounts); else the process goes on and the probe says 0."""

    def probe() -> int:
        assert proc.process is not None and proc.alive(), proc.tail()
        group = proc.process.pid
        os.killpg(group, signal.SIGSTOP)
        decided = 0
        try:
            decided = _decided(engine)
        finally:
            if not (decided >= low and decided % BATCH):
                os.killpg(group, signal.SIGCONT)
        return decided if decided >= low and decided % BATCH else 0

    return probe


async def _batch_attempts(client: Client, workflow_id: str, first_run_id: str | None) -> list[int]:
    """The attempt numbers of every review_batch activity across the continue-as-new chain."""
    attempts: list[int] = []
    run_id = first_run_id
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        attempts += [
            e.activity_task_started_event_attributes.attempt
            for e in history.events
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED
        ]
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return attempts
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id


async def test_a_worker_killed_mid_batch_leaves_a_run_a_new_worker_finishes_once(
    crash_settings: Settings, crash_engine: Engine, tmp_path: Path
) -> None:
    with session_scope(crash_engine) as session:
        seed_population(session, ACCOUNTS, 15, today=TODAY)
    with session_scope(crash_engine, read_only=True) as session:
        restricted = restricted_account_ids(session, after=None, limit=100_000)
    assert len(restricted) > 4 * BATCH, "the book must take several batches"

    client: Client = await connect_temporal(crash_settings)
    workers = WorkerProcess(crash_settings, tmp_path / "logs")
    workflow_id = f"portfolio-review-crash-{uuid.uuid4().hex[:8]}"
    try:
        first = workers.start()
        handle = await client.start_workflow(
            PortfolioReviewWorkflow.run,
            PortfolioReviewInput(
                run_date=TODAY, batch_size=BATCH, batches_per_run=3, heartbeat_timeout=HEARTBEAT_TIMEOUT
            ),
            id=workflow_id,
            task_queue=crash_settings.temporal_task_queue,
        )
        # Frozen (SIGSTOP) at a moment it is mid-batch, past its first batch and with at least two
        # batches still to go, then killed. (Not "before half": on a loaded machine the probe's
        # next look may come a few batches later, and a faster review reaches half sooner.)
        low, high = BATCH + 1, len(restricted) - 2 * BATCH
        frozen_at = await eventually(
            _frozen_mid_batch(first, crash_engine, low),
            lambda n: n > 0,
            what=f"the first worker to be mid-batch past {low} accounts (log: {first.log_path})",
        )
        workers.kill(first)
        # A commit the frozen worker had written to SQLite's log but not yet published shows once
        # the log is recovered after its death: at most one more account (one per transaction).
        killed_at = _decided(crash_engine)
        assert frozen_at <= killed_at <= frozen_at + 1, (frozen_at, killed_at)
        assert killed_at < high, f"killed too near the end ({killed_at} decided)"

        second = workers.start()
        try:
            summary = await asyncio.wait_for(handle.result(), patience(45))
        except TimeoutError as exc:
            raise AssertionError(f"the second worker did not finish the run: {second.tail()}") from exc
    finally:
        workers.stop_all()
        # The schedules each worker start creates for its task queue, unused here.
        for schedule in (review_schedule_id(crash_settings), sweep_schedule_id(crash_settings)):
            with contextlib.suppress(RPCError):
                await client.get_schedule_handle(schedule).delete()

    counts = summary.counts
    # The killed worker's batch was tried again (attempt 2), the others once; the summary too.
    attempts = await _batch_attempts(client, workflow_id, handle.first_execution_run_id)
    assert sorted(attempts)[-2:] == [1, 2] and attempts.count(2) == 1, attempts
    with session_scope(crash_engine, read_only=True) as session:
        actions = session.exec(select(ReviewAction).where(ReviewAction.run_date == TODAY)).all()
        by_account: dict[str, int] = {}
        for action in actions:
            by_account[action.account_id] = by_account.get(action.account_id, 0) + 1
        restores_per_account = dict(
            session.exec(
                select(LimitEvent.account_id, func.count())
                .where(LimitEvent.source == REVIEW_SOURCE)
                .group_by(col(LimitEvent.account_id))
            ).all()
        )
        runs = session.exec(select(ReviewRun).where(ReviewRun.workflow_id == workflow_id)).all()
        broken = {a: seq for a in restricted if (seq := verify_account_trail(session, a)) is not None}

    # Every restricted account decided exactly once, by this run.
    assert sorted(by_account) == sorted(restricted)
    assert set(by_account.values()) == {1}
    assert {a.workflow_id for a in actions} == {workflow_id}
    # No account restored twice by the review; each restore row has its limit event.
    assert restores_per_account and max(restores_per_account.values()) == 1
    restored_rows = [a for a in actions if a.outcome == ReviewOutcome.RESTORE]
    assert sorted(a.account_id for a in restored_rows) == sorted(restores_per_account)
    assert all(a.limit_event_id is not None for a in restored_rows)
    # The run's result says what the rows say, whatever the killed attempt had done.
    outcomes = {o: sum(1 for a in actions if a.outcome == o) for o in ReviewOutcome}
    assert counts.examined == len(restricted) and counts.already_decided == 0
    assert counts.restored == outcomes[ReviewOutcome.RESTORE]
    assert counts.invited == outcomes[ReviewOutcome.INVITE]
    assert counts.nothing == outcomes[ReviewOutcome.NONE]
    assert counts.restored_minor == sum(
        (a.limit_after_minor or a.limit_before_minor) - a.limit_before_minor for a in restored_rows
    )
    assert counts.restored > 0 and counts.invited > 0 and counts.nothing > 0
    [run] = runs
    assert run.counts["restored"] == counts.restored and run.counts["examined"] == counts.examined
    # Every account's audit chain is intact (restores and invitations wrote to them).
    assert broken == {}
