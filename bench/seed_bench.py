"""Seeding at scale: generate a population and bulk-insert it into a fresh database.

    .venv/bin/python bench/seed_bench.py [--n 10000] [--seed 42] [--url sqlite:///...] [--statements]

Prints the time to generate the rows, to insert them (one transaction), the rows per table, and
with --statements the time to render every customer's bank statement (not written to disk). The
default database is a fresh SQLite file in a temporary folder; a PostgreSQL URL gets a private
schema for the run, dropped afterwards.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.db import make_engine, session_scope
from core.db.migrate import upgrade
from core.ledger.generator import generate_population, insert_population, population_counts


@contextmanager
def bench_engine(url: str) -> Iterator[Engine]:
    if not url.startswith("postgresql"):
        engine = make_engine(url)
        yield engine
        engine.dispose()
        return
    schema = f"seed_bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(url, connect_args={"options": f"-csearch_path={schema}"})
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--url", default=None, help="database URL (default: a fresh SQLite file)")
    parser.add_argument("--statements", action="store_true", help="also render every bank statement")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as folder:
        url = args.url or f"sqlite:///{Path(folder) / 'bench.db'}"
        with bench_engine(url) as engine:
            run(engine, url, args.n, args.seed, args.statements)


def run(engine: Engine, url: str, n: int, seed: int, statements: bool) -> None:
    upgrade(engine)
    today = datetime.now(UTC).date()

    t0 = time.perf_counter()
    customers = generate_population(n, seed, today=today)
    generated = time.perf_counter() - t0
    t1 = time.perf_counter()
    with session_scope(engine) as session:
        outcome = insert_population(session, customers)
    inserted = time.perf_counter() - t1

    print(f"database {url.split('://')[0]}, {n} customers (seed {seed}, as of {today})")
    print(f"generate: {generated:.2f} s")
    print(f"insert:   {inserted:.2f} s  ({outcome.inserted} new, {outcome.skipped} already there)")
    print(f"total:    {generated + inserted:.2f} s")
    print("rows: " + ", ".join(f"{table} {rows}" for table, rows in outcome.rows.items()))
    counts = population_counts(customers)
    print("populations: " + ", ".join(f"{p.value} {count}" for p, count in counts.items()))
    if statements:
        t2 = time.perf_counter()
        size = sum(len(c.statement_csv()) for c in customers)
        print(f"statements: {time.perf_counter() - t2:.2f} s for {n} ({size / 1e6:.1f} MB of CSV)")


if __name__ == "__main__":
    main()
