"""One portfolio review of a large seeded book on a Temporal dev server: accounts per second,
wall time, and the Temporal actions per 1,000 accounts counted from the real histories.

    .venv/bin/python bench/portfolio_review_bench.py [--accounts 100000] [--seed 42]
                                                     [--batch-size 200] [--batches-per-run 25]
                                                     [--url sqlite:///...]

What it does:

1. Starts a Temporal dev server (in memory) and the SMTP sink on free ports through
   launcher/stack.py, as tests/conftest.py does, with a fresh SQLite database in a temporary
   folder (or `--url`, e.g. PostgreSQL, in a private schema dropped afterwards).
2. Seeds `--accounts` generated customers (core/ledger/generator.py, bulk insert), each with a
   credit account; the restricted ones (FROZEN or REDUCED) are what the review reads.
3. Runs PortfolioReviewWorkflow once for the generator's date on a worker built as the real one
   (launcher.worker.build_worker with PortfolioReviewActivities; payloads encrypted as deployed),
   and waits for its result.
4. Counts the actions of every run in the continue-as-new chain from its history
   (tests/workflows/actions.py, Temporal Cloud's rules: the start of each run, activities
   scheduled and retried, timers, signals, ...) plus the heartbeats that reach the server, seen
   on the worker by HeartbeatCounter with the SDK's throttling.

Prints the outcome counts, the wall time of the review (start to result), accounts reviewed per
second, and actions in total, per kind and per 1,000 accounts (reviewed, and in the book).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # also as `python bench/...py`

from sqlalchemy import text
from sqlalchemy.engine import Engine
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from activities.appeal import AppealActivities
from activities.portfolio_review import PortfolioReviewActivities, RunSummary
from core.db import make_engine, session_scope
from core.db.migrate import upgrade
from core.ledger.generator import generate_population, insert_population
from core.lender.review import restricted_account_ids
from gateway.codec import AesGcmCodec, PayloadKeys
from gateway.temporal import converter_with
from launcher.dev import temporal_ready
from launcher.mail import start_smtp_sink
from launcher.stack import ManagedProcess, free_port, temporal_dev_server, wait_until
from launcher.worker import build_worker
from tests.conftest import make_settings
from tests.workflows.actions import ActionCount, HeartbeatCounter, count_actions, counting_client
from workflows.portfolio_review import PortfolioReviewInput, PortfolioReviewWorkflow

RUN_DATE = date(2026, 6, 15)


@dataclass
class Stack:
    temporal_address: str
    smtp_port: int


@contextmanager
def stack(directory: Path) -> Iterator[Stack]:
    started: list[ManagedProcess] = []
    try:
        port = free_port()
        temporal = temporal_dev_server(
            host="127.0.0.1",
            port=port,
            ui_port=free_port(),
            db_file=None,
            log_path=directory / "temporal.log",
            headless=True,
        ).start()
        started.append(temporal)
        smtp_port = free_port()
        started.append(
            start_smtp_sink(
                host="127.0.0.1", port=smtp_port, mail_dir=directory / "mail", log_path=directory / "smtp.log"
            )
        )
        wait_until(lambda: temporal_ready(f"127.0.0.1:{port}", "default"), temporal, 60)
        yield Stack(f"127.0.0.1:{port}", smtp_port)
    finally:
        for process in reversed(started):
            process.stop()


@contextmanager
def bench_engine(url: str) -> Iterator[Engine]:
    if not url.startswith("postgresql"):
        engine = make_engine(url)
        upgrade(engine)
        yield engine
        engine.dispose()
        return
    schema = f"review_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def seed(engine: Engine, n: int, seed_number: int) -> tuple[int, float]:
    started = time.perf_counter()
    customers = generate_population(n, seed_number, today=RUN_DATE)
    chunk = 20_000
    for first in range(0, n, chunk):
        with session_scope(engine) as session:
            insert_population(session, customers[first : first + chunk])
    with session_scope(engine, read_only=True) as session:
        restricted = len(restricted_account_ids(session, after=None, limit=n + 1))
    return restricted, time.perf_counter() - started


async def chain_actions(client: Client, workflow_id: str, first_run_id: str) -> tuple[ActionCount, int]:
    """The actions of every run of the chain, summed (heartbeats apart), and the runs."""
    total: dict[str, int] = {}
    run_id: str | None = first_run_id
    runs = 0
    while run_id is not None:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        count = count_actions(history)
        for name, value in count.as_dict().items():
            if isinstance(value, int) and name != "actions":
                total[name] = total.get(name, 0) + value
        runs += 1
        last = history.events[-1]
        run_id = (
            last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
            if last.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
            else None
        )
    return ActionCount(**total, heartbeats=0), runs


async def review(args: argparse.Namespace, st: Stack, engine: Engine, directory: Path) -> None:
    settings = make_settings(
        directory, temporal_address=st.temporal_address, smtp_host="127.0.0.1", smtp_port=st.smtp_port
    )
    codec = AesGcmCodec(PayloadKeys.generate("bench"))
    counter = HeartbeatCounter()
    client = counting_client(
        await Client.connect(st.temporal_address, data_converter=converter_with(codec)), counter
    )
    workflow_id = f"portfolio-review-bench-{uuid.uuid4().hex[:6]}"
    with ThreadPoolExecutor(max_workers=16, thread_name_prefix="activity") as executor:
        appeal = AppealActivities(engine=engine, s3_client=None, settings=settings)
        activities = PortfolioReviewActivities(engine=engine, settings=settings)
        async with build_worker(client, settings, appeal, executor, review=activities):
            started = time.perf_counter()
            handle = await client.start_workflow(
                PortfolioReviewWorkflow.run,
                PortfolioReviewInput(
                    run_date=RUN_DATE, batch_size=args.batch_size, batches_per_run=args.batches_per_run
                ),
                id=workflow_id,
                task_queue=settings.temporal_task_queue,
            )
            summary = await client.get_workflow_handle(workflow_id, result_type=RunSummary).result()
            wall = time.perf_counter() - started
    assert handle.first_execution_run_id is not None
    actions, runs = await chain_actions(client, workflow_id, handle.first_execution_run_id)
    actions = dataclasses.replace(actions, heartbeats=counter.for_workflow(workflow_id))
    total = actions.actions
    reviewed = summary.counts.examined
    c = summary.counts
    print(f"reviewed:      {reviewed} accounts in {wall:.1f} s ({reviewed / wall:.0f} accounts/s)")
    print(f"outcomes:      restored {c.restored}, invited {c.invited}, nothing {c.nothing}")
    print(f"by reason:     {dict(sorted(c.by_reason.items()))}")
    print(
        f"runs:          {runs} (continue-as-new every {args.batches_per_run} batches of "
        f"{args.batch_size or 'the policy batch_size'})"
    )
    print(f"actions:       {actions.breakdown()}")
    print(f"history:       {actions.history_events} events, {actions.workflow_tasks} workflow tasks")
    print(f"per 1,000 reviewed accounts: {1000 * total / max(reviewed, 1):.1f} actions")
    print(f"per 1,000 accounts in the book: {1000 * total / args.accounts:.1f} actions")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batch-size", type=int, default=None, help="default: the policy's batch_size")
    parser.add_argument("--batches-per-run", type=int, default=25)
    parser.add_argument("--url", default=None, help="database URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="review-bench-") as tmp:
        directory = Path(tmp)
        url = args.url or f"sqlite:///{directory / 'appeals.db'}"
        with bench_engine(url) as engine, stack(directory) as st:
            restricted, seconds = seed(engine, args.accounts, args.seed)
            print(f"seeded:        {args.accounts} customers, {restricted} restricted in {seconds:.1f} s")
            asyncio.run(review(args, st, engine, directory))


if __name__ == "__main__":
    main()
