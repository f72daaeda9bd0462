"""Reviewer console latency with 100,000 open review tasks, on SQLite and on PostgreSQL.

    .venv/bin/python bench/pages_bench.py [--tasks 100000] [--cases 50] [--reps 300]
                                          [--db sqlite --db postgresql]

For each database: a fresh store (a temp SQLite file; a private PostgreSQL schema, dropped at
the end) is filled with open review tasks exactly as bench/review_queue_bench.py does. Then
`--cases` of those appeals get a full case file: twelve monthly bills (three of them late), an
accepted bank statement of about a hundred lines (one line that does not add up) and a PDF,
their checklist, a real assessment (core.appeals.assessment.run_assessment on that ledger) and
ten more audit events.

It then times, through the real app in-process (httpx ASGI transport: no network, no Temporal
— the gateway refuses any call), with a reviewer's session cookie:

- GET /review: the queue's first page (50 rows, the default filter and sort), and the same
  sorted by priority;
- GET /review/tasks/{id}: the case page, round-robin over the full case files;

and prints p50/p99 per page as a table, with the SQL statements each page runs (counted from
the engine; SQLite's driver-level BEGIN left out).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import event, insert
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app
from bench.review_queue_bench import PG_URL, Stat, database, fill
from core.appeals.assessment import run_assessment
from core.appeals.audit import append_event
from core.auth import Role, mint_token
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.case_tables import ChecklistState, DocumentState, ReviewTask, TaskStatus
from core.db.migrate import upgrade
from core.months import billing_dates
from core.policy.loader import load_default_policy
from core.settings import Settings

PAGE = 50
LATE = {3: 5, 6: 45, 9: 20}  # bill index -> days past due


class NoTemporal:
    """The pages must not call Temporal: any use of the gateway fails the bench."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a page called Temporal ({name})")


def _case_rows(
    appeal_id: str, customer_id: str, account_id: str, rng: random.Random, today: date
) -> dict[str, Any]:
    rows: dict[str, list[dict[str, Any]]] = {
        "bill": [],
        "document": [],
        "checklist_item": [],
        "statement_transaction": [],
    }
    for index, due in enumerate(billing_dates(15, today, 12)):
        dpd = LATE.get(index, 0)
        rows["bill"].append(
            {
                "account_id": account_id,
                "due_date": due,
                "amount_due_minor": 40_000,
                "paid_minor": 40_000,
                "paid_at": datetime.combine(due + timedelta(days=dpd), dt_time(9), UTC),
                "days_past_due": dpd,
            }
        )
    statement_id, report_id = str(uuid.uuid4()), str(uuid.uuid4())
    now = datetime.now(UTC)
    for doc_id, doc_type, name, declared, sniffed in (
        (statement_id, "BANK_STATEMENT", "statement.csv", "text/csv", "CSV"),
        (report_id, "CREDIT_REPORT", "credit-report.pdf", "application/pdf", "PDF"),
    ):
        rows["document"].append(
            {
                "id": doc_id,
                "appeal_id": appeal_id,
                "customer_id": customer_id,
                "doc_type": doc_type,
                "s3_key": f"appeals/{appeal_id}/{doc_id}",
                "filename": name,
                "declared_content_type": declared,
                "size_bytes": 4_000,
                "sha256": uuid.uuid4().hex * 2,
                "sniffed_type": sniffed,
                "state": DocumentState.ACCEPTED,
                "flags": [],
                "upload_method": "multipart",
                "created_at": now,
                "verified_at": now,
            }
        )
        rows["checklist_item"].append(
            {
                "appeal_id": appeal_id,
                "doc_type": doc_type,
                "required": True,
                "reasons": ["always"],
                "state": ChecklistState.ACCEPTED,
                "document_id": doc_id,
                "updated_at": now,
            }
        )
    balance, day, row = 500_000, today - timedelta(days=100), 0
    while day < today:
        row += 1
        amount = 1_200_000 if day.day == 10 else -rng.randrange(1_000, 30_000)
        balance += amount
        shown = balance + (12_300 if row == 40 else 0)  # one line that does not add up
        rows["statement_transaction"].append(
            {
                "document_id": statement_id,
                "appeal_id": appeal_id,
                "customer_id": customer_id,
                "row": row,
                "posted_on": day,
                "description": "Salary" if amount > 0 else "Card payment",
                "amount_minor": amount,
                "balance_minor": shown,
                "counterparty": "ACME Ltd" if amount > 0 else "Shop",
            }
        )
        balance = shown
        day += timedelta(days=1)
    return rows


def fill_cases(engine: Engine, n: int, seed: int) -> tuple[list[str], float]:
    """Full case files for `n` of the queued appeals; returns their task ids."""
    started = time.perf_counter()
    rng = random.Random(seed)
    today = SYSTEM_CLOCK.today()
    with session_scope(engine, read_only=True) as session:
        picked = session.exec(
            select(ReviewTask.id, ReviewTask.appeal_id, ReviewTask.customer_id)
            .where(col(ReviewTask.status) == TaskStatus.OPEN)
            .order_by(col(ReviewTask.id))
            .limit(n)
        ).all()
    tables = {
        name: SQLModel.metadata.tables[name]
        for name in ("bill", "document", "checklist_item", "statement_transaction")
    }
    policy = load_default_policy()
    for task_id, appeal_id, customer_id in picked:
        account_id = customer_id.replace("bc-", "ba-")
        with session_scope(engine) as session:
            for name, values in _case_rows(appeal_id, customer_id, account_id, rng, today).items():
                session.execute(insert(tables[name]), values)
            run_assessment(session, appeal_id, 1, policy, today)
            at = datetime.now(UTC)
            for step in range(10):
                append_event(
                    session,
                    appeal_id=appeal_id,
                    at=at + timedelta(seconds=step),
                    actor="workflow",
                    kind="sla_warning" if step % 2 else "task_created",
                    details={"task_id": task_id},
                )
    return [row[0] for row in picked], time.perf_counter() - started


class Statements:
    """Counts the SQL statements one request runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine, self.count = engine, 0

    def _record(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not statement.startswith(("BEGIN", "COMMIT", "ROLLBACK")):
            self.count += 1

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *_: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)


async def bench_pages(engine: Engine, task_ids: list[str], reps: int) -> list[tuple[Stat, int]]:
    settings = Settings(data_dir=Path("/tmp"))
    app = create_app(settings, engine=engine, s3_client=object(), gateway=NoTemporal())  # type: ignore[arg-type]
    token = mint_token(settings, role=Role.REVIEWER, subject="bench-r-console")
    results: list[tuple[Stat, int]] = []
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://bench",
            cookies={"appeals_session": token},
        ) as http,
    ):

        async def measure(label: str, urls: list[str], check: str) -> None:
            for url in urls[:5]:  # warm up: templates compiled, connections open
                assert (await http.get(url)).status_code == 200
            with Statements(engine) as statements:
                answer = await http.get(urls[0])
            assert answer.status_code == 200 and check in answer.text, answer.text[:500]
            samples = []
            for i in range(reps):
                started = time.perf_counter()
                answer = await http.get(urls[i % len(urls)])
                samples.append(time.perf_counter() - started)
                assert answer.status_code == 200
            results.append((Stat(label, samples), statements.count))

        await measure("GET /review (first page, 50 rows)", ["/review"], "Next page")
        await measure("GET /review?sort=priority (first page)", ["/review?sort=priority"], "Next page")
        await measure(
            "GET /review/tasks/{id} (case page)",
            [f"/review/tasks/{task_id}" for task_id in task_ids],
            "Check failed",
        )
    return results


def table(rows: list[tuple[Stat, int]]) -> str:
    lines = [
        f"  {'page':<42} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'n':>5} {'SQL':>4}",
        f"  {'-' * 42} {'-' * 8} {'-' * 8} {'-' * 8} {'-' * 5} {'-' * 4}",
    ]
    for stat, queries in rows:
        s = sorted(stat.samples)
        p50 = s[len(s) // 2]
        p99 = s[max(0, -(-99 * len(s) // 100) - 1)]
        lines.append(
            f"  {stat.name:<42} {p50 * 1e3:8.2f} {p99 * 1e3:8.2f} {s[-1] * 1e3:8.2f} {len(s):5d} {queries:4d}"
        )
    return "\n".join(lines)


def run(kind: str, args: argparse.Namespace) -> None:
    with database(kind, args.pg_url) as (engine, where):
        upgrade(engine)
        filled = fill(engine, args.tasks, args.seed)
        task_ids, enriched = fill_cases(engine, args.cases, args.seed + 1)
        print(
            f"\n== {kind} ({where}): {args.tasks:,} open tasks (filled in {filled:.1f} s), "
            f"{len(task_ids)} full case files ({enriched:.1f} s)"
        )
        print(table(asyncio.run(bench_pages(engine, task_ids, args.reps))))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--cases", type=int, default=50)
    parser.add_argument("--reps", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20250615)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    for kind in args.db or ["sqlite", "postgresql"]:
        run(kind, args)


if __name__ == "__main__":
    main()
