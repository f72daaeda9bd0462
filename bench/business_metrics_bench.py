"""What one count of the business metrics (core/business_metrics.py) costs, on SQLite and on
PostgreSQL, with many appeals: the queries the worker runs at most once per
APPEALS_BUSINESS_METRICS_CACHE_SECONDS, whatever the number of scrapes.

    .venv/bin/python bench/business_metrics_bench.py [--appeals 100000] [--reps 5]
                                                      [--db sqlite --db postgresql]

Each database is filled as bench/review_queue_bench.py fills it (an appeal, two audit events
and an open review task each); then half of the appeals are closed with a decision, a limit
applied and a completed task (three more events each), so every query has rows to aggregate.
Prints the best and the median of `--reps` counts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import insert, update
from sqlmodel import col, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_queue_bench import database, fill  # noqa: E402
from core.business_metrics import count_business  # noqa: E402
from core.db import session_scope  # noqa: E402
from core.db.case_tables import Appeal, AppealEvent, ReviewTask, TaskStatus  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.status import AppealStatus as S  # noqa: E402


def close_half(engine: object) -> int:
    with session_scope(engine) as session:  # type: ignore[arg-type]
        rows = session.exec(select(Appeal.id, Appeal.created_at).order_by(col(Appeal.id))).all()
        closing = rows[::2]
        events = [
            {
                "appeal_id": appeal_id,
                "seq": seq,
                "at": created + timedelta(hours=seq),
                "actor": "workflow",
                "kind": "status_changed",
                "from_status": frm,
                "to_status": to,
                "details": {},
                "prev_hash": "x",
                "hash": "x",
            }
            for appeal_id, created in closing
            for seq, frm, to in (
                (3, S.IN_REVIEW, S.APPROVED),
                (4, S.APPROVED, S.LIMIT_APPLIED),
                (5, S.LIMIT_APPLIED, S.CLOSED),
            )
        ]
        for start in range(0, len(events), 10_000):
            session.execute(insert(AppealEvent), events[start : start + 10_000])
        ids = [appeal_id for appeal_id, _ in closing]
        for start in range(0, len(ids), 10_000):
            chunk = ids[start : start + 10_000]
            session.execute(
                update(Appeal).where(col(Appeal.id).in_(chunk)).values(status=S.CLOSED, is_open=False)
            )
            session.execute(
                update(ReviewTask)
                .where(col(ReviewTask.appeal_id).in_(chunk))
                .values(status=TaskStatus.COMPLETED)
            )
    return len(closing)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--appeals", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    for kind in args.db or ["sqlite", "postgresql"]:
        with database(kind, args.pg_url) as (engine, where):
            upgrade(engine)
            fill(engine, args.appeals, seed=7)
            closed = close_half(engine)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
                connection.exec_driver_sql("VACUUM ANALYZE" if kind == "postgresql" else "ANALYZE")
            samples = []
            for _ in range(args.reps):
                started = time.perf_counter()
                counts = count_business(engine)
                samples.append(time.perf_counter() - started)
            assert sum(counts.closed.values()) == closed, counts.closed
            print(
                f"{kind} ({where}): {args.appeals} appeals, {closed} closed: one count "
                f"best {min(samples) * 1000:.0f} ms, median {statistics.median(samples) * 1000:.0f} ms"
            )


if __name__ == "__main__":
    main()
