"""Supervisor dashboard latency with 100,000 open tasks and a month of decisions, on SQLite and
on PostgreSQL.

    .venv/bin/python bench/dashboard_bench.py [--tasks 100000] [--decisions 30000] [--reps 30]
                                              [--db sqlite --db postgresql] [--proposed-index]

For each database: a fresh store is filled with open review tasks exactly as
bench/review_queue_bench.py does (two audit events each), plus `--decisions` decided appeals
spread over the last 30 days (automatic and manual, approve/partial/decline, an assessment each,
four audit events each). Then it times, each sample in its own transaction:

- core.reviews.dashboard.supervisor_dashboard (the four queries), for 14 and 30 days;
- the whole page, GET /dashboard, through the app in-process (rendering included);

and prints p50/p99 and the query plans of the four statements. With --proposed-index it first
adds an index on appeal_event (to_status, at) that core/db/case_tables.py does not have, to show
what it would change for the two decision queries (they scan the audit trail otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from api.app import create_app
from api.pages.dashboard import WARNING_FRACTION
from bench.review_queue_bench import PG_URL, Stat, captured, database, explain, fill, timed
from core.appeals.audit import GENESIS_HASH, event_hash
from core.auth import Role, mint_token
from core.db import session_scope
from core.db.case_tables import AppealEvent
from core.db.ledger_tables import AccountStatus
from core.db.migrate import upgrade
from core.reviews.dashboard import supervisor_dashboard
from core.settings import Settings
from core.status import AppealStatus
from gateway.temporal import TemporalGateway

S = AppealStatus
CHUNK = 5_000
SHANGHAI = ZoneInfo("Asia/Shanghai")
OUTCOMES = (
    (S.AUTO_APPROVED, 30),
    (S.AUTO_DECLINED, 25),
    (S.APPROVED, 20),
    (S.PARTIALLY_APPROVED, 10),
    (S.DECLINED, 15),
)


def _chain(appeal_id: str, steps: list[tuple[datetime, str, S | None, S]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    prev = GENESIS_HASH
    for seq, (at, kind, frm, to) in enumerate(steps, start=1):
        e = AppealEvent(
            appeal_id=appeal_id,
            seq=seq,
            at=at,
            actor="workflow",
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


def _decided(n: int, rng: random.Random, now: datetime) -> Iterator[dict[str, list[dict[str, Any]]]]:
    statuses = [status for status, _ in OUTCOMES]
    weights = [weight for _, weight in OUTCOMES]
    for start in range(0, n, CHUNK):
        chunk: dict[str, list[dict[str, Any]]] = {
            "customer": [],
            "credit_account": [],
            "appeal": [],
            "appeal_event": [],
            "assessment": [],
        }
        for i in range(start, min(n, start + CHUNK)):
            customer_id, account_id = f"dc-{i:06d}", f"da-{i:06d}"
            appeal_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            decided_at = now - timedelta(seconds=rng.uniform(0, 30 * 86_400))
            status: S = rng.choices(statuses, weights=weights)[0]
            automatic = status in (S.AUTO_APPROVED, S.AUTO_DECLINED)
            submitted = decided_at - timedelta(hours=rng.uniform(0.5, 6) if automatic else rng.uniform(8, 72))
            decided_limit: int | None = None
            if status in (S.APPROVED, S.AUTO_APPROVED):
                decided_limit = 600_000 if status is S.APPROVED or rng.random() < 0.5 else 400_000
            elif status is S.PARTIALLY_APPROVED:
                decided_limit = 300_000
            chunk["customer"].append(
                {"id": customer_id, "name": f"Decided {i}", "locale": "zh-CN", "created_at": submitted}
            )
            chunk["credit_account"].append(
                {
                    "id": account_id,
                    "customer_id": customer_id,
                    "status": AccountStatus.ACTIVE,
                    "currency": "CNY",
                    "original_limit_minor": 800_000,
                    "current_limit_minor": 800_000,
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
                    "status": S.CLOSED,
                    "is_open": False,
                    "version": 6,
                    "workflow_id": f"appeal-{appeal_id}",
                    "workflow_started": True,
                    "decided_limit_minor": decided_limit,
                    "created_at": submitted,
                    "updated_at": decided_at,
                }
            )
            checked = submitted + (decided_at - submitted) / 2
            before = S.CHECKING if automatic else S.IN_REVIEW
            chunk["appeal_event"].extend(
                _chain(
                    appeal_id,
                    [
                        (submitted, "submitted", None, S.SUBMITTED),
                        (
                            submitted + timedelta(seconds=1),
                            "status_changed",
                            S.SUBMITTED,
                            S.AWAITING_DOCUMENTS,
                        ),
                        (checked, "status_changed", S.AWAITING_DOCUMENTS, S.CHECKING),
                        (decided_at, "status_changed", before, status),
                    ],
                )
            )
            chunk["assessment"].append(
                {
                    "appeal_id": appeal_id,
                    "run": 1,
                    "rule_id": "limit-restore-v1",
                    "rule_hash": "0" * 64,
                    "score": rng.randrange(300, 850),
                    "risk_tier": rng.choice(("LOW", "MEDIUM", "HIGH")),
                    "recommendation": "MANUAL_REVIEW",
                    "suggested_limit_minor": 400_000,
                    "reasons": [],
                    "four_eyes_required": False,
                    "inputs": {},
                    "result": {},
                    "created_at": checked,
                }
            )
        yield chunk


def fill_decisions(engine: Engine, n: int, seed: int) -> float:
    names = ("customer", "credit_account", "appeal", "appeal_event", "assessment")
    tables = [SQLModel.metadata.tables[name] for name in names]
    started = time.perf_counter()
    for chunk in _decided(n, random.Random(seed), datetime.now(UTC)):
        with session_scope(engine) as session:
            for table in tables:
                session.execute(insert(table), chunk[table.name])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    return time.perf_counter() - started


def bench_use_case(engine: Engine, days: int, reps: int) -> tuple[Stat, Any]:
    board = None

    def once() -> None:
        nonlocal board
        with session_scope(engine, read_only=True) as session:
            board = supervisor_dashboard(
                session, now=datetime.now(UTC), zone=SHANGHAI, days=days, warning_fraction=WARNING_FRACTION
            )

    return Stat(f"supervisor_dashboard, {days} days", [timed(once) for _ in range(reps)]), board


async def bench_page(engine: Engine, reps: int) -> Stat:
    settings = Settings(data_dir=Path("/tmp"))
    app = create_app(settings, engine=engine, s3_client=object(), gateway=TemporalGateway(settings))
    token = mint_token(settings, role=Role.SUPERVISOR, subject="sup-bench")
    samples: list[float] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", cookies={"appeals_session": token}
        ) as http:
            for _ in range(reps):
                started = time.perf_counter()
                answer = await http.get("/dashboard")
                samples.append(time.perf_counter() - started)
                assert answer.status_code == 200, answer.text[:500]
    return Stat("GET /dashboard (14 days, rendered)", samples)


# Not in core/db/case_tables.py: measured with --proposed-index.
PROPOSED_INDEX = "CREATE INDEX ix_appeal_event_outcome ON appeal_event (to_status, at)"


def run(kind: str, args: argparse.Namespace) -> None:
    with database(kind, args.pg_url) as (engine, where):
        upgrade(engine)
        if args.proposed_index:
            with engine.begin() as connection:
                connection.exec_driver_sql(PROPOSED_INDEX)
        filled = fill(engine, args.tasks, args.seed) + fill_decisions(engine, args.decisions, args.seed + 7)
        print(
            f"\n== {kind} ({where}): {args.tasks} open tasks, {args.decisions} decisions over 30 days, "
            f"filled in {filled:.1f} s"
            + (f"\n   with the proposed index: {PROPOSED_INDEX}" if args.proposed_index else "")
        )
        stats = []
        for days in (14, 30):
            stat, board = bench_use_case(engine, days, args.reps)
            stats.append(stat)
        stats.append(asyncio.run(bench_page(engine, args.reps)))
        for stat in stats:
            print(stat.line())
        assert board is not None
        print(
            f"  (30 days: {board.open_total} open, {board.breached_total} past due, "
            f"{board.decided.total} decisions)"
        )
        print("\n query plans of the four statements:")
        with captured(engine) as statements, session_scope(engine, read_only=True) as session:
            supervisor_dashboard(
                session, now=datetime.now(UTC), zone=SHANGHAI, days=30, warning_fraction=WARNING_FRACTION
            )
        for label, (statement, parameters) in zip(
            ("open tasks", "decisions", "medians", "most urgent"), statements, strict=True
        ):
            explain(engine, label, statement, parameters)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=30_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=20250615)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_URL)
    parser.add_argument(
        "--proposed-index", action="store_true", help="Add an index on appeal_event (to_status, at)."
    )
    args = parser.parse_args()
    for kind in args.db or ["sqlite", "postgresql"]:
        run(kind, args)


if __name__ == "__main__":
    main()
