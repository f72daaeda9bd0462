"""The Temporal worker process: AppealWorkflow plus its activities, the document sweep (and its
schedule), and the reconciler."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import py_compile
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import ModuleType
from typing import Any

from temporalio.client import Client
from temporalio.worker import Interceptor, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.activity_log import ActivityLogInterceptor
from activities.appeal import AppealActivities
from activities.limit_action import LimitActionActivities
from activities.portfolio_review import PortfolioReviewActivities
from activities.sweep import SweepActivities
from core.db import make_engine
from core.db.migrate import require_head
from core.settings import Settings
from core.storage import make_s3_client
from core.tracing import WORKER_SERVICE, Tracing, tracing_from_settings
from gateway.temporal import TemporalGateway, connect_temporal, forward_core_logs
from launcher.reconciler import Reconciler
from launcher.review_schedule import ensure_review_schedule
from launcher.sweep_schedule import ensure_sweep_schedule
from launcher.worker_metrics import serve_business_metrics, temporal_runtime
from workflows import appeal as appeal_workflow_module
from workflows.appeal import AppealWorkflow
from workflows.limit_action import LimitActionWorkflow
from workflows.portfolio_review import PortfolioReviewWorkflow
from workflows.sweep import DocumentSweepWorkflow

log = logging.getLogger(__name__)


def write_bytecode(module: ModuleType) -> None:
    """Writes a workflow module's bytecode: the sandbox imports a workflow's module afresh
    for every run it starts, and without bytecode on disk (PYTHONDONTWRITEBYTECODE, a read-only
    tree) each of those imports compiles the source again. Where the tree cannot be written,
    runs compile as before."""
    source = module.__file__
    if source is None:
        return
    try:
        py_compile.compile(source, cfile=importlib.util.cache_from_source(source), doraise=True)
    except (py_compile.PyCompileError, OSError) as exc:
        log.info("workflow bytecode not written (%s): each run compiles %s", exc, source)


def build_worker(
    client: Client,
    settings: Settings,
    activities: AppealActivities,
    executor: ThreadPoolExecutor,
    *,
    sweep: SweepActivities | None = None,
    review: PortfolioReviewActivities | None = None,
    limit_actions: LimitActionActivities | None = None,
    tracing: Tracing | None = None,
) -> Worker:
    """With `sweep`, the worker also runs the document sweep its schedule starts; with
    `review`, the portfolio review its schedule starts."""
    write_bytecode(appeal_workflow_module)
    # The limit actions of risk events (workflows/limit_action.py) run wherever appeals do.
    limit_actions = limit_actions or LimitActionActivities(
        engine=activities._engine, settings=settings, clock=activities._clock
    )
    return Worker(
        client,
        task_queue=settings.temporal_task_queue,
        workflows=[
            AppealWorkflow,
            LimitActionWorkflow,
            *([DocumentSweepWorkflow] if sweep else []),
            *([PortfolioReviewWorkflow] if review else []),
        ],
        activities=[
            *activities.all(),
            *limit_actions.all(),
            *(sweep.all() if sweep else []),
            *(review.all() if review else []),
        ],
        activity_executor=executor,
        max_concurrent_activities=executor._max_workers,
        # Tracing first (unless the client brings it), so that the activity's log lines are
        # written inside its span; then one structured line per activity run.
        interceptors=[*tracing_interceptors(client, tracing), ActivityLogInterceptor()],
        **traced_runner(tracing),
        # On shutdown activities in flight get this long to finish before they are cancelled
        # (then retried elsewhere: the long ones heartbeat, the others are retried whole).
        graceful_shutdown_timeout=timedelta(seconds=settings.worker_graceful_shutdown_seconds),
    )


def tracing_interceptors(client: Client, tracing: Tracing | None) -> list[Interceptor]:
    """The tracing interceptor for the worker, unless its client already has it (a worker
    runs its client's interceptors first)."""
    if tracing is None or tracing.interceptor in client.config()["interceptors"]:
        return []
    return [tracing.interceptor]


def traced_runner(tracing: Tracing | None) -> dict[str, Any]:
    """With traces on, the workflow sandbox passes opentelemetry through, as the SDK's
    interceptor needs: its workflow side runs in the sandbox, which would otherwise import
    opentelemetry afresh for every run (and its context loads lazily with open(), which the
    sandbox refuses once a run has started)."""
    if tracing is None:
        return {}
    restrictions = SandboxRestrictions.default.with_passthrough_modules("opentelemetry")
    return {"workflow_runner": SandboxedWorkflowRunner(restrictions=restrictions)}


async def start_sweep_schedule(client: Client, settings: Settings) -> None:
    """The document sweep's schedule, as the settings say; a worker starts without it (and
    says so) rather than not at all."""
    try:
        await ensure_sweep_schedule(client, settings)
    except Exception:
        log.warning("document sweep schedule not created; the next worker start tries again", exc_info=True)


async def start_review_schedule(client: Client, settings: Settings) -> None:
    """The portfolio review's schedule (launcher/review_schedule.py), like the sweep's."""
    try:
        await ensure_review_schedule(client, settings)
    except Exception:
        log.warning("portfolio review schedule not created; the next worker start tries again", exc_info=True)


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGTERM (an orchestrator stopping the container) and SIGINT (Ctrl-C) set `stop`: the
    worker then shuts down gracefully instead of dying with its activities mid-way."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _stopping, signum, stop)


def _stopping(signum: int, stop: asyncio.Event) -> None:
    # A second Ctrl-C is not waited on: it interrupts (KeyboardInterrupt) as it always did.
    asyncio.get_running_loop().remove_signal_handler(signal.SIGINT)
    if stop.is_set():
        return
    log.info("%s: stopping: no more polling, activities in flight may finish", signal.Signals(signum).name)
    stop.set()


async def run_worker(settings: Settings, *, stop: asyncio.Event | None = None) -> None:
    """Runs until `stop` is set, then shuts down: polling stops, activities in flight get
    worker_graceful_shutdown_seconds to finish, the reconciler stops between passes."""
    forward_core_logs()
    engine = make_engine(settings.effective_database_url)
    require_head(engine)  # migrated beforehand (`appeals db upgrade`), as the API's
    # Traces only when an OTLP endpoint is configured; on the client, so that the reconciler's
    # starts and signals are traced too and the worker runs the same interceptor.
    tracing = tracing_from_settings(settings, WORKER_SERVICE)
    client = await connect_temporal(
        settings, [tracing.interceptor] if tracing else [], runtime=temporal_runtime(settings)
    )
    metrics_server = serve_business_metrics(settings, engine)
    s3 = make_s3_client(settings)
    activities = AppealActivities(engine=engine, s3_client=s3, settings=settings)
    reconciler = Reconciler(engine, TemporalGateway(settings, client), settings, s3_client=s3)
    sweep = SweepActivities(engine=engine, s3_client=s3, settings=settings)
    review = PortfolioReviewActivities(engine=engine, settings=settings)
    await start_sweep_schedule(client, settings)
    await start_review_schedule(client, settings)
    try:
        with ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity") as executor:
            worker = build_worker(
                client, settings, activities, executor, sweep=sweep, review=review, tracing=tracing
            )
            log.info("worker polling task queue %s", settings.temporal_task_queue)
            async with worker:
                reconcile_task = asyncio.create_task(reconciler.run_forever())
                try:
                    await (stop.wait() if stop else asyncio.Event().wait())
                finally:
                    # The reconciler first: it would start workflows a stopping worker never runs.
                    reconcile_task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reconcile_task
                    log.info(
                        "worker shutting down: activities in flight have %gs to finish",
                        settings.worker_graceful_shutdown_seconds,
                    )
            log.info("worker stopped")
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
            metrics_server.server_close()
    engine.dispose()
    if tracing:
        tracing.shutdown()  # sends the spans still batched
