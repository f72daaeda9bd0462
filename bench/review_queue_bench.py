"""Review-queue latency with 100,000 open tasks, on SQLite and on PostgreSQL.

    .venv/bin/python bench/review_queue_bench.py [--tasks 100000] [--reps 200] [--db sqlite --db postgresql]
                                                 [--proposed-index]

For each database: a fresh store (a temp SQLite file; a private PostgreSQL schema, dropped at
the end) is bulk-filled with open review tasks (priorities 0-20, due times over +-3 days, 90 %
reviewer / 10 % senior_reviewer, risk tiers, one customer and appeal per task). Then, through
the real core.reviews.queue functions, each sample in its own transaction:

- a 50-row page of the default queue (status OPEN) with its total count, sort due and sort
  priority, at random positions reached by keyset (cursors collected by walking the queue);
- the count(*) alone, to show its share of a page;
- claim_next by distinct reviewers, one after another, then from 8 threads at once.

It prints p50/p99 per operation and the query plans of the statements queue.py actually
issues (captured from the engine), so index use is visible.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, insert, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.appeals.audit import GENESIS_HASH, event_hash
from core.auth import Principal, Role
from core.db import make_engine, session_scope
from core.db.case_tables import AppealEvent, TaskStatus
from core.db.ledger_tables import AccountStatus
from core.db.migrate import upgrade
from core.reviews.queue import TaskFilter, TaskSort, claim_next, list_tasks
from core.status import AppealStatus

PG_URL = os.environ.get("APPEALS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
PAGE = 50
CHUNK = 5_000
RISK_TIERS = ("LOW", "MEDIUM", "HIGH")
RISK_WEIGHTS = (30, 45, 25)
# Most tasks sit at the base priority; escalations and large amounts push a few up.
PRIORITY_WEIGHTS = [0.75**p for p in range(21)]


# --- filling ---------------------------------------------------------------------------------


def _rows(n: int, rng: random.Random, now: datetime) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Chunks of rows for every table, so 100k tasks never sit in memory as objects at once."""
    for start in range(0, n, CHUNK):
        chunk: dict[str, list[dict[str, Any]]] = {
            "customer": [],
            "credit_account": [],
            "appeal": [],
            "appeal_event": [],
            "review_task": [],
        }
        for i in range(start, min(n, start + CHUNK)):
            customer_id, account_id = f"bc-{i:06d}", f"ba-{i:06d}"
            appeal_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            created = now - timedelta(seconds=rng.uniform(0, 5 * 86_400))
            chunk["customer"].append(
                {
                    "id": customer_id,
                    "name": f"Bench Customer {i}",
                    "locale": "zh-CN" if i % 3 else "en",
                    "created_at": created - timedelta(days=400),
                }
            )
            chunk["credit_account"].append(
                {
                    "id": account_id,
                    "customer_id": customer_id,
                    "status": AccountStatus.FROZEN,
                    "currency": "CNY",
                    "original_limit_minor": 800_000,
                    "current_limit_minor": 0,
                    "opened_on": date(2022, 1, 1),
                }
            )
            chunk["appeal"].append(
                {
                    "id": appeal_id,
                    "customer_id": customer_id,
                    "account_id": account_id,
                    "requested_limit_minor": 600_000,
                    "customer_statement": "",
                    "status": AppealStatus.PENDING_REVIEW,
                    "is_open": True,
                    "version": 4,
                    "workflow_id": f"appeal-{appeal_id}",
                    "workflow_started": True,
                    "created_at": created,
                    "updated_at": created,
                }
            )
            chunk["appeal_event"].extend(_events(appeal_id, customer_id, created))
            senior = rng.random() < 0.10
            priority = rng.choices(range(21), weights=PRIORITY_WEIGHTS)[0]
            chunk["review_task"].append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "appeal_id": appeal_id,
                    "customer_id": customer_id,
                    "round": 1,
                    "stage": 2 if senior else 1,
                    "risk_tier": rng.choices(RISK_TIERS, weights=RISK_WEIGHTS)[0],
                    "queue": "escalation" if priority >= 15 else "review",
                    "status": TaskStatus.OPEN,
                    "priority": priority,
                    "required_role": "senior_reviewer" if senior else "reviewer",
                    "assignee": None,
                    "excluded_reviewer": f"bench-r-{rng.randrange(500)}" if senior else None,
                    "escalated": priority >= 15,
                    "version": 1,
                    "due_at": now + timedelta(seconds=rng.uniform(-3 * 86_400, 3 * 86_400)),
                    "created_at": created,
                }
            )
        yield chunk


def _events(appeal_id: str, customer_id: str, at: datetime) -> list[dict[str, Any]]:
    """The two events a queued appeal has at least, properly chained."""
    out: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for seq, (actor, kind, frm, to) in enumerate(
        (
            (f"customer:{customer_id}", "submitted", None, AppealStatus.SUBMITTED),
            ("workflow", "status_changed", AppealStatus.CHECKING, AppealStatus.PENDING_REVIEW),
        ),
        start=1,
    ):
        e = AppealEvent(
            appeal_id=appeal_id,
            seq=seq,
            at=at + timedelta(seconds=seq),
            actor=actor,
            kind=kind,
            from_status=frm,
            to_status=to,
            details={},
            prev_hash=prev,
            hash="",
        )
        e.hash = event_hash(e)
        prev = e.hash
        out.append(e.model_dump(exclude={"id"}))
    return out


def fill(engine: Engine, n: int, seed: int) -> float:
    # Parents first: the foreign keys are enforced on both databases.
    names = ("customer", "credit_account", "appeal", "appeal_event", "review_task")
    tables = [SQLModel.metadata.tables[name] for name in names]
    rng = random.Random(seed)
    start = time.perf_counter()
    for chunk in _rows(n, rng, datetime.now(UTC)):
        with session_scope(engine) as session:
            for table in tables:
                session.execute(insert(table), chunk[table.name])
    # What autovacuum (PostgreSQL) or a periodic ANALYZE (SQLite) would have done by now.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    return time.perf_counter() - start


# Not in core/db/case_tables.py: measured with --proposed-index to show what it would change.
PROPOSED_INDEX = (
    "CREATE INDEX ix_review_task_open_priority ON review_task (status, priority DESC, due_at, id)"
)


# --- measuring --------------------------------------------------------------------------------


@dataclass
class Stat:
    name: str
    samples: list[float]

    def line(self) -> str:
        s = sorted(self.samples)
        p50 = statistics.median(s)
        p99 = s[max(0, -(-99 * len(s) // 100) - 1)]
        return (
            f"  {self.name:<44} p50 {p50 * 1e3:8.2f} ms   p99 {p99 * 1e3:8.2f} ms   "
            f"max {s[-1] * 1e3:8.2f} ms   (n={len(s)})"
        )


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def collect_cursors(engine: Engine, sort: TaskSort, step: int) -> list[str | None]:
    """Walk the whole open queue by keyset in `step`-row pages; every boundary is a cursor."""
    cursors: list[str | None] = [None]
    cursor: str | None = None
    with session_scope(engine, read_only=True) as session:
        while True:
            _, cursor, _ = list_tasks(session, TaskFilter(), sort=sort, cursor=cursor, limit=step)
            if cursor is None:
                return cursors
            cursors.append(cursor)


def bench_pages(engine: Engine, sort: TaskSort, reps: int, rng: random.Random, n: int) -> list[Stat]:
    started = time.perf_counter()
    cursors = collect_cursors(engine, sort, step=max(PAGE, n // reps))
    walk = time.perf_counter() - started
    samples: list[float] = []
    totals: set[int] = set()
    for _ in range(reps):
        cursor = rng.choice(cursors)

        def page(cursor: str | None = cursor) -> None:
            with session_scope(engine, read_only=True) as session:
                rows, _, total = list_tasks(session, TaskFilter(), sort=sort, cursor=cursor, limit=PAGE)
                assert rows
                totals.add(total)

        samples.append(timed(page))
    print(
        f"  (walked the queue by {sort.value} in {len(cursors)} keyset pages: {walk:.1f} s; totals {totals})"
    )
    return [Stat(f"page sort={sort.value} (50 rows + count)", samples)]


def bench_count(engine: Engine, reps: int) -> Stat:
    def count() -> None:
        with session_scope(engine, read_only=True) as session:
            session.execute(text("SELECT count(*) FROM review_task WHERE status = 'OPEN'")).one()

    return Stat("count(*) of OPEN tasks alone", [timed(count) for _ in range(reps)])


def _reviewer(n: int) -> Principal:
    role = Role.SENIOR_REVIEWER if n % 10 == 0 else Role.REVIEWER
    return Principal(subject=f"bench-r-{n}", role=role)


def bench_claims(engine: Engine, reps: int) -> Stat:
    samples: list[float] = []
    for n in range(reps):
        reviewer = _reviewer(n)

        def one(principal: Principal = reviewer) -> None:
            with session_scope(engine) as session:
                assert claim_next(session, principal) is not None

        samples.append(timed(one))
    return Stat("claim_next, one reviewer after another", samples)


def bench_parallel_claims(engine: Engine, threads: int, per_thread: int) -> tuple[Stat, float]:
    samples: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        mine: list[float] = []
        try:
            barrier.wait()
            for k in range(per_thread):
                principal = _reviewer(10_000 + t * per_thread + k)

                def one(principal: Principal = principal) -> None:
                    with session_scope(engine) as session:
                        assert claim_next(session, principal) is not None

                mine.append(timed(one))
        except BaseException as exc:  # reported below
            errors.append(exc)
        with lock:
            samples.extend(mine)

    pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    started = time.perf_counter()
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return Stat(f"claim_next, {threads} reviewers at once", samples), len(samples) / elapsed


# --- query plans ------------------------------------------------------------------------------


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE")):
            statements.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", capture)


def explain(engine: Engine, label: str, statement: str, parameters: Any) -> None:
    postgres = engine.dialect.name == "postgresql"
    prefix = "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " if postgres else "EXPLAIN QUERY PLAN "
    print(f"\n  -- {label}")
    sql = re.sub(
        r"^SELECT review_task\.id, .*? FROM",
        "SELECT review_task.<all columns> FROM",
        statement.strip(),
        flags=re.S,
    )
    print("     " + " ".join(sql.split()))
    with engine.connect() as connection:
        rows = connection.exec_driver_sql(prefix + statement, parameters).all()
        connection.rollback()  # EXPLAIN ANALYZE of UPDATE / FOR UPDATE really runs it
    for row in rows:
        print("     | " + (row[0] if postgres else f"{'  ' * (row[1] > 0)}{row[-1]}"))


def show_plans(engine: Engine, n: int) -> None:
    print("\n query plans of the statements queue.py issues:")
    at = int(n * 0.4)
    for sort in (TaskSort.DUE, TaskSort.PRIORITY):
        with session_scope(engine, read_only=True) as session:
            _, cursor, _ = list_tasks(session, TaskFilter(), sort=sort, cursor=None, limit=at)
        with captured(engine) as statements, session_scope(engine, read_only=True) as session:
            list_tasks(session, TaskFilter(), sort=sort, cursor=cursor, limit=PAGE)
        page, count = statements[0], statements[1]
        explain(engine, f"page sort={sort.value}, cursor after row {at:,}", *page)
        if sort is TaskSort.DUE:
            explain(engine, "total count", *count)
    for principal in (_reviewer(90_001), _reviewer(90_000)):
        with captured(engine) as statements, session_scope(engine) as session:
            claim_next(session, principal)
        explain(engine, f"claim_next candidate ({principal.role.value})", *statements[0])
    # Re-explained after the claim committed, so it matches no row now; the plan is the point.
    explain(engine, "claim_next conditional update", *statements[1])


# --- running ----------------------------------------------------------------------------------


@contextmanager
def database(kind: str, pg_url: str) -> Iterator[tuple[Engine, str]]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="queue-bench-") as tmp:
            engine = make_engine(f"sqlite:///{tmp}/appeals.db")
            try:
                yield engine, f"SQLite file {tmp}/appeals.db"
            finally:
                engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine, f"PostgreSQL schema {schema}"
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def run(kind: str, args: argparse.Namespace) -> None:
    with database(kind, args.pg_url) as (engine, where):
        upgrade(engine)
        filled = fill(engine, args.tasks, args.seed)
        if args.proposed_index:
            with engine.begin() as connection:
                connection.exec_driver_sql(PROPOSED_INDEX)
        with engine.connect() as connection:
            version = connection.exec_driver_sql(
                "SELECT sqlite_version()" if kind == "sqlite" else "SHOW server_version"
            ).scalar()
            connection.rollback()
        print(f"\n== {kind} {version} ({where}): {args.tasks} open tasks, filled in {filled:.1f} s")
        if args.proposed_index:
            print(f"   with the proposed index: {PROPOSED_INDEX}")
        rng = random.Random(args.seed + 1)
        stats: list[Stat] = []
        for sort in (TaskSort.DUE, TaskSort.PRIORITY):
            stats.extend(bench_pages(engine, sort, args.reps, rng, args.tasks))
        stats.append(bench_count(engine, args.reps))
        stats.append(bench_claims(engine, args.reps))
        parallel, rate = bench_parallel_claims(engine, threads=8, per_thread=max(1, args.reps // 8))
        stats.append(parallel)
        for stat in stats:
            print(stat.line())
        print(f"  {'':<44} 8 reviewers at once: {rate:.0f} claims/s")
        show_plans(engine, args.tasks)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20250615)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument(
        "--proposed-index",
        action="store_true",
        help="Add the index proposed for claim-next and sort=priority.",
    )
    args = parser.parse_args()
    for kind in args.db or ["sqlite", "postgresql"]:
        run(kind, args)


if __name__ == "__main__":
    main()
