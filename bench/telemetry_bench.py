"""What tracing and the access line cost the API per request, in-process (no server, no
network: the ASGI app called directly, so the differences are not lost in uvicorn's noise).

    .venv/bin/python bench/telemetry_bench.py [--requests 3000] [--rounds 5]

Variants of the same app (core/tracing.py, api/request_log.py), on a SQLite file:
- `bare`: no access line (RequestLog taken out), no tracing;
- `off`: as `appeals api` runs with no OTLP endpoint: the access line, no tracing;
- `traced`: tracing on, spans batched to an exporter that drops them (the OTLP exporter's
  network time is a background thread's, not the request's).
Endpoints: `GET /health/live` (no I/O; not traced: health checks are excluded) and
`GET /appeals/{id}` as a customer (token check, a database read, a 404 problem). Printed: CPU
microseconds per request (process time, median over rounds) and the ratio to `off`. The access
line is written to a handler that drops it, as when its level is on but the sink is cheap.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from api.app import create_app
from api.request_log import ACCESS_LOGGER, RequestLog
from core.auth import Role, mint_token
from core.db import make_engine
from core.db.migrate import upgrade
from core.logs import JsonFormatter
from core.settings import Settings
from core.tracing import API_SERVICE, Tracing
from gateway.temporal import TemporalGateway


class Dropping(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


def _app(settings: Settings, engine: Any, variant: str) -> Any:
    tracing = Tracing(Dropping(), API_SERVICE) if variant == "traced" else None
    app = create_app(
        settings, engine=engine, s3_client=object(), gateway=TemporalGateway(settings), tracing=tracing
    )
    if variant == "bare":
        app.user_middleware = [m for m in app.user_middleware if m.cls is not RequestLog]
    return app


async def _call(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> None:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("bench", 80),
        "state": {},
    }
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    await app(scope, receive, send)


async def _measure(apps: dict[str, Any], settings: Settings, requests: int, rounds: int) -> None:
    token = mint_token(settings, role=Role.CUSTOMER, subject="c-bench")
    auth = [(b"authorization", f"Bearer {token}".encode())]
    endpoints = {"GET /health/live": ("/health/live", []), "GET /appeals/{id}": ("/appeals/a-missing", auth)}
    async with contextlib.AsyncExitStack() as stack:
        for app in apps.values():
            await stack.enter_async_context(app.router.lifespan_context(app))
        results = await _rounds(apps, endpoints, requests, rounds)
    print(f"{'endpoint':<22}" + "".join(f"{v:>10}" for v in apps) + "   (CPU us/request, median)")
    for endpoint in endpoints:
        medians = {v: statistics.median(results[(endpoint, v)]) for v in apps}
        cells = "".join(f"{medians[v]:>10.1f}" for v in apps)
        ratios = ", ".join(f"{v}/off {medians[v] / medians['off']:.3f}" for v in apps if v != "off")
        print(f"{endpoint:<22}{cells}   {ratios}")


async def _rounds(
    apps: dict[str, Any], endpoints: dict[str, Any], requests: int, rounds: int
) -> dict[tuple[str, str], list[float]]:
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for endpoint, (path, headers) in endpoints.items():
            for variant, app in apps.items():
                for _ in range(requests // 10):  # warm-up
                    await _call(app, path, headers)
                started = time.process_time()
                for _ in range(requests):
                    await _call(app, path, headers)
                elapsed = time.process_time() - started
                results.setdefault((endpoint, variant), []).append(elapsed / requests * 1e6)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    handler = logging.NullHandler()
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger(ACCESS_LOGGER)
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    access.propagate = False
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        engine = make_engine(f"sqlite:///{Path(tmp) / 'appeals.db'}")
        upgrade(engine)
        apps = {variant: _app(settings, engine, variant) for variant in ("bare", "off", "traced")}
        asyncio.run(_measure(apps, settings, args.requests, args.rounds))
        engine.dispose()


if __name__ == "__main__":
    main()
