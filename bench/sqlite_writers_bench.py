"""Write transactions from many threads of one process on one SQLite file, with this process's
writer gate (core/db/engine.py: writers queue on a lock) and without it (they wait in SQLite's
busy handler, which sleeps 1 ms, 2 ms ... up to 100 ms between tries).

    .venv/bin/python bench/sqlite_writers_bench.py [--threads 16] [--transactions 60] [--rounds 6]

Each transaction inserts a row, counts the table and does about half a millisecond of Python
work while it holds the write lock, as an activity's ORM flush does. Rounds alternate (AB, BA,
...); prints each round's transactions per second and CPU per transaction, the medians, the
median of the rounds' ratios (gated / ungated) and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import text

from core.db.engine import make_engine


def busy_work() -> int:
    return sum(i * i for i in range(3000))


def one_round(directory: Path, *, gated: bool, threads: int, transactions: int) -> tuple[float, float]:
    path = directory / f"{'gated' if gated else 'ungated'}-{time.monotonic_ns()}.db"
    engine = make_engine(f"sqlite:///{path}", writer_gate=gated)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")

    def work() -> None:
        for _ in range(transactions):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO t (v) VALUES ('x')"))
                connection.execute(text("SELECT count(*) FROM t")).scalar()
                busy_work()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    wall, cpu = time.perf_counter(), time.process_time()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    engine.dispose()
    done = threads * transactions
    return done / wall, cpu / done * 1000


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--transactions", type=int, default=60, help="per thread and round")
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}  ({os.cpu_count()} CPUs)")
    print(f"{args.threads} threads x {args.transactions} write transactions per round\n")
    print("  round  gated tx/s  ungated tx/s  ratio  gated ms CPU/tx  ungated ms CPU/tx")
    rates: dict[bool, list[float]] = {True: [], False: []}
    cpus: dict[bool, list[float]] = {True: [], False: []}
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        for round_no in range(1, args.rounds + 1):
            order = (True, False) if round_no % 2 else (False, True)
            got = {}
            for gated in order:
                got[gated] = one_round(
                    Path(folder), gated=gated, threads=args.threads, transactions=args.transactions
                )
                rates[gated].append(got[gated][0])
                cpus[gated].append(got[gated][1])
            ratios.append(got[True][0] / got[False][0])
            print(
                f"  {round_no:5d}  {got[True][0]:10.0f}  {got[False][0]:12.0f}  {ratios[-1]:5.2f}"
                f"  {got[True][1]:15.3f}  {got[False][1]:17.3f}"
            )
    print(
        f"  median: gated {statistics.median(rates[True]):.0f} tx/s, ungated "
        f"{statistics.median(rates[False]):.0f} tx/s, ratio {statistics.median(ratios):.2f}"
        f" (median of the rounds' ratios); CPU/tx {statistics.median(cpus[True]):.3f} vs "
        f"{statistics.median(cpus[False]):.3f} ms"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
