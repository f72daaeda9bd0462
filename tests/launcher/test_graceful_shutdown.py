"""SIGTERM stops `appeals api` and `appeals worker` gracefully, as real processes: the API says
it is draining, then finishes the request in flight; the worker stops polling, lets the activity
in flight finish, and exits 0, and the work is carried on by another worker."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError

from core.auth import Role, mint_token
from core.clock import SYSTEM_CLOCK
from core.db import make_engine, session_scope
from core.db.migrate import create_all_at_head
from core.db.review_tables import ReviewAction
from core.ledger.generator import seed_population
from core.lender.review import restricted_account_ids
from core.seed import seed_demo_ledger
from core.settings import Settings
from core.storage import ensure_bucket, make_s3_client
from gateway.codec import new_key
from gateway.temporal import connect_temporal
from launcher.dev import settings_env
from launcher.review_schedule import review_schedule_id
from launcher.stack import ManagedProcess, free_port, http_ok, python_module, tcp_open
from launcher.sweep_schedule import sweep_schedule_id
from tests.conftest import make_settings
from tests.eventually import eventually, eventually_sync, patience
from workflows.portfolio_review import PortfolioReviewInput, PortfolioReviewWorkflow

# Long enough to see readiness 503 while the API still serves, on a busy machine too.
DRAIN_SECONDS = patience(3)
GRACEFUL_SECONDS = 30
TODAY = SYSTEM_CLOCK.today()


@pytest.fixture
def process_settings(tmp_path: Path, s3_endpoint: str, temporal_address: str) -> Settings:
    return make_settings(
        tmp_path,
        database_url=f"sqlite:///{tmp_path / 'appeals.db'}",
        s3_endpoint_url=s3_endpoint,
        temporal_address=temporal_address,
        payload_keys={"shutdown-test": new_key()},
        api_port=free_port(),
        smtp_port=9,  # nothing listens: e-mail stays in the outbox, not the point here
    )


@pytest.fixture
def process_engine(process_settings: Settings) -> Iterator[Engine]:
    engine = make_engine(process_settings.effective_database_url)
    create_all_at_head(engine)
    yield engine
    engine.dispose()


def _process(name: str, argv: list[str], settings: Settings, log_dir: Path, **extra: str) -> ManagedProcess:
    env = {**settings_env(settings), "PYTHONUNBUFFERED": "1", **extra}
    return python_module(name, argv, env=env, log_path=log_dir / f"{name}.log").start()


def _exit_code_within(proc: ManagedProcess, seconds: float) -> int:
    assert proc.process is not None
    try:
        return proc.process.wait(seconds)
    except Exception as exc:
        raise AssertionError(
            f"{proc.name} still running {seconds:.0f}s after SIGTERM:\n{proc.tail(40)}"
        ) from exc


@pytest.mark.parametrize("workers", [1, 2])  # 2: as docker-compose.yml runs it (a supervisor)
def test_sigterm_drains_the_api_then_finishes_the_request_in_flight(
    process_settings: Settings, process_engine: Engine, tmp_path: Path, workers: int
) -> None:
    with session_scope(process_engine) as session:
        seed_demo_ledger(session, TODAY)
    settings = process_settings
    ensure_bucket(make_s3_client(settings), settings.s3_bucket)
    base = f"http://127.0.0.1:{settings.api_port}"
    api = _process(
        "api",
        ["api", "--workers", str(workers)],
        settings,
        tmp_path,
        APPEALS_API_SHUTDOWN_DRAIN_SECONDS=str(DRAIN_SECONDS),
        APPEALS_API_GRACEFUL_SHUTDOWN_SECONDS=str(GRACEFUL_SECONDS),
    )
    try:
        eventually_sync(lambda: http_ok(f"{base}/health/live"), what=f"the API to answer ({api.log_path})")
        # Ready before: the 503 below is the drain's, not a dependency's.
        with httpx.Client(base_url=base, timeout=30) as http:
            assert http.get("/health/ready").json()["status"] == "ok"
        sent_half, rest = threading.Event(), threading.Event()
        body = json.dumps({"account_id": "acct-1001", "requested_limit_minor": 800_000}).encode()

        def slowly() -> Iterator[bytes]:
            yield body[: len(body) // 2]
            sent_half.set()
            rest.wait(patience(60))
            yield body[len(body) // 2 :]

        token = mint_token(settings, role=Role.CUSTOMER, subject="c-1001")
        answer: list[httpx.Response | BaseException] = []

        def post() -> None:
            try:
                with httpx.Client(base_url=base, timeout=patience(60)) as http:
                    answer.append(
                        http.post(
                            "/appeals",
                            content=slowly(),
                            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
                        )
                    )
            except BaseException as exc:  # reported by the test, not lost in the thread
                answer.append(exc)

        poster = threading.Thread(target=post)
        poster.start()
        assert sent_half.wait(patience(30)), "the request never started"
        assert api.process is not None
        os.kill(api.process.pid, signal.SIGTERM)
        signalled = time.monotonic()

        # Draining: still serving, but not ready, so a load balancer stops sending requests.
        with httpx.Client(base_url=base, timeout=10) as http:
            # (With workers, the supervisor passes SIGTERM on within half a second.)
            ready = eventually_sync(
                lambda: http.get("/health/ready"),
                lambda r: r.status_code == 503,
                what="readiness 503",
            )
            assert ready.json() == {"status": "draining", "checks": {}}
            assert http.get("/health/live").status_code == 200
        # Then uvicorn shuts down: no new connections, the request in flight goes on.
        eventually_sync(
            lambda: "Waiting for connections to close" in api.log_path.read_text(),
            what="uvicorn to wait for the request in flight",
        )
        if workers == 1:
            # (With workers the supervisor holds the listening socket until every worker is done.)
            assert not _accepts(settings.api_port), "still accepting connections"
        assert time.monotonic() - signalled >= DRAIN_SECONDS - 0.5, "the drain was cut short"
        assert api.alive(), api.tail()
        rest.set()
        poster.join(patience(60))
        [response] = answer
        assert isinstance(response, httpx.Response), response
        assert response.status_code == 201, response.text
        assert response.json()["account_id"] == "acct-1001"
        assert _exit_code_within(api, GRACEFUL_SECONDS) == 0, api.tail(40)
    finally:
        api.stop()


def _accepts(port: int) -> bool:
    try:
        return tcp_open("127.0.0.1", port)
    except OSError:
        return False


# --- the worker --------------------------------------------------------------------------

BATCH = 40  # accounts per review_batch activity: long enough to be caught mid-way


def _decided(engine: Engine) -> int:
    with session_scope(engine, read_only=True) as session:
        return len(session.exec(select(ReviewAction.account_id).where(ReviewAction.run_date == TODAY)).all())


@pytest.mark.asyncio(loop_scope="session")
async def test_sigterm_lets_the_activity_in_flight_finish_and_another_worker_goes_on(
    process_settings: Settings, process_engine: Engine, tmp_path: Path
) -> None:
    settings = process_settings
    with session_scope(process_engine) as session:
        seed_population(session, 400, 15, today=TODAY)
    with session_scope(process_engine, read_only=True) as session:
        restricted = restricted_account_ids(session, after=None, limit=100_000)
    assert len(restricted) > 3 * BATCH, "the book must take several batches"

    client = await connect_temporal(settings)
    workflow_id = f"portfolio-review-sigterm-{uuid.uuid4().hex[:8]}"
    env = {"APPEALS_WORKER_GRACEFUL_SHUTDOWN_SECONDS": str(GRACEFUL_SECONDS)}
    first = _process("worker-1", ["worker"], settings, tmp_path, **env)
    second: ManagedProcess | None = None
    try:
        handle = await client.start_workflow(
            PortfolioReviewWorkflow.run,
            PortfolioReviewInput(run_date=TODAY, batch_size=BATCH, batches_per_run=10),
            id=workflow_id,
            task_queue=settings.temporal_task_queue,
        )
        # Mid-batch: some of a batch decided, not all of it.
        caught = await eventually(
            lambda: _decided(process_engine),
            lambda n: n % BATCH != 0,
            what=f"the first worker to be mid-batch ({first.log_path})",
        )
        assert first.process is not None
        os.kill(first.process.pid, signal.SIGTERM)
        code = await asyncio.to_thread(_exit_code_within, first, GRACEFUL_SECONDS + 15)
        assert code == 0, first.tail(40)
        log = first.log_path.read_text()
        assert "SIGTERM: stopping" in log and "worker stopped" in log, log[-3000:]
        # The batch in flight was finished by the first worker, not abandoned: whole batches only.
        stopped_at = _decided(process_engine)
        assert (stopped_at > caught and stopped_at % BATCH == 0) or stopped_at == len(restricted), (
            caught,
            stopped_at,
        )

        second = _process("worker-2", ["worker"], settings, tmp_path, **env)
        summary = await asyncio.wait_for(handle.result(), patience(90))
    finally:
        first.stop()
        if second is not None:
            second.stop()
        for schedule in (review_schedule_id(settings), sweep_schedule_id(settings)):
            with contextlib.suppress(RPCError):
                await client.get_schedule_handle(schedule).delete()

    assert summary.counts.examined == len(restricted)
    with session_scope(process_engine, read_only=True) as session:
        decided = session.exec(select(ReviewAction.account_id).where(ReviewAction.run_date == TODAY)).all()
    assert sorted(decided) == sorted(restricted)  # each exactly once
    # No batch was tried twice: the one in flight at SIGTERM completed on its first attempt.
    history = await handle.fetch_history()
    failures = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT]
    assert failures == []
