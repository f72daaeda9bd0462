"""What the request metrics (api/metrics.py) cost per request: the middleware around a trivial
ASGI app that answers at once (as the router does, it leaves its route in the scope), against
the same app bare, in this process's memory and in multiprocess mode (the counts in files under
PROMETHEUS_MULTIPROC_DIR, as `appeals api` runs them).

    .venv/bin/python bench/metrics_bench.py [--requests 200000] [--rounds 5]

Prints the best round's microseconds per request for each, and the difference: the overhead.
Multiprocess mode is measured in a child process (the mode is chosen when prometheus_client is
imported).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class _Route:
    path = "/appeals/{appeal_id}"


_ROUTE = _Route()


async def _bare_app(scope: MutableMapping[str, Any], receive: Any, send: Any) -> None:
    scope["route"] = _ROUTE
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def _receive() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _send(message: dict[str, Any]) -> None:
    return None


async def _per_request(app: Any, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        scope = {"type": "http", "method": "GET", "path": "/appeals/a1", "root_path": "", "headers": []}
        await app(scope, _receive, _send)
    return (time.perf_counter() - started) / requests * 1e6


def measure(requests: int, rounds: int) -> tuple[float, float]:
    from api.metrics import HttpMetrics, MetricsMiddleware

    wrapped = MetricsMiddleware(_bare_app, HttpMetrics())
    bare, with_metrics = [], []
    for _ in range(rounds):  # alternated, so both see the same machine
        bare.append(asyncio.run(_per_request(_bare_app, requests)))
        with_metrics.append(asyncio.run(_per_request(wrapped, requests)))
    return min(bare), min(with_metrics)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        bare, with_metrics = measure(args.requests, args.rounds)
        print(f"{bare} {with_metrics}")
        return
    bare, with_metrics = measure(args.requests, args.rounds)
    with tempfile.TemporaryDirectory() as directory:
        child = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--requests",
                str(args.requests),
                "--rounds",
                str(args.rounds),
            ],
            env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory},
            check=True,
            capture_output=True,
            text=True,
        )
    mp_bare, mp_with = (float(x) for x in child.stdout.split())
    print(f"{args.requests} requests x {args.rounds} rounds, best round, microseconds per request:")
    for mode, (plain, metered) in (("in memory", (bare, with_metrics)), ("multiprocess", (mp_bare, mp_with))):
        overhead = metered - plain
        print(f"  {mode + ':':<14} bare {plain:6.2f}  with metrics {metered:6.2f}  overhead {overhead:5.2f}")


if __name__ == "__main__":
    main()
