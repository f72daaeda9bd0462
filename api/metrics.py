"""The API's Prometheus metrics (docs/metrics.md): every HTTP request counted and timed by the
route's template (`/appeals/{appeal_id}`, never the path a client sent: no ids in labels), its
method and status; served at GET /metrics.

`appeals api` runs several uvicorn processes: it points PROMETHEUS_MULTIPROC_DIR at an empty
directory before any of them starts (launcher/metrics_dir.py), each process writes its counts to
files there, and /metrics, whichever process answers it, sums every process's files. Without
that directory (an app built in a test) the counts are this process's, in a registry of the
app's own.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.responses import Response
from starlette.routing import Mount, get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.request_guard import rules_of

REQUESTS = "appeals_http_requests"  # exposed as appeals_http_requests_total
DURATION = "appeals_http_request_duration_seconds"
# From a cached read (~1 ms) to an upload verified in the request (seconds).
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# A path no route matched (a 404): one label value, whatever was asked for.
UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
LABELS = ("method", "route", "status")


def multiprocess_mode() -> bool:
    """Counts go to PROMETHEUS_MULTIPROC_DIR: it was set before prometheus_client was imported
    (the value class is chosen at import)."""
    return bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")) and (
        prometheus_values.ValueClass is not prometheus_values.MutexValue
    )


class HttpMetrics:
    """The request counter and latency histogram, with the labelled children cached by label
    values: the hot path is one dict lookup, an increment and an observation."""

    def __init__(self) -> None:
        self.multiprocess = multiprocess_mode()
        # In multiprocess mode the values live in files, read by a collector per scrape.
        self.registry: CollectorRegistry | None = None if self.multiprocess else CollectorRegistry()
        self._requests = Counter(
            REQUESTS,
            "HTTP requests answered, by route template, method and status.",
            LABELS,
            registry=self.registry,
        )
        self._duration = Histogram(
            DURATION,
            "Seconds from a request's arrival to the end of its answer, by route template, method, status.",
            LABELS,
            buckets=BUCKETS,
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        # Any method a client makes up is one label (and one cache entry): OTHER.
        key = (method if method in METHODS else "OTHER", route, status)
        children = self._children.get(key)
        if children is None:
            labels = (key[0], route, str(status))
            children = self._children[key] = (self._requests.labels(*labels), self._duration.labels(*labels))
        children[0].inc()
        children[1].observe(seconds)

    def exposition(self) -> bytes:
        if self.registry is not None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        return generate_latest(registry)


def route_template(scope: Scope, path: str) -> str:
    """The template of the route that answered, as the router left it in the scope; for a request
    answered before routing (the request guard's 4xx), the route that matches `path` (the route
    path the request arrived with: a mount rewrites the scope's); else UNMATCHED."""
    route = scope.get("route")
    if route is not None:
        template = getattr(route, "path", None)
        return template if isinstance(template, str) and template else UNMATCHED
    app = scope.get("app")
    if app is None:
        return UNMATCHED
    method = "GET" if scope["method"] == "HEAD" else scope["method"]
    for rule in rules_of(app):
        if method in rule.methods and rule.regex.match(path):
            return rule.path
    # A mounted app (the static files) leaves no route in the scope: its prefix names it.
    for mount in app.router.routes:
        if isinstance(mount, Mount) and path.startswith(mount.path + "/"):
            return mount.path + "/{path}"
    return UNMATCHED


class MetricsMiddleware:
    """A pure ASGI middleware (no request object, no body buffering): the time from the call to
    the end of the answer, and the status the answer started with (500 when none was sent)."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path = get_route_path(scope)
        status = 500

        async def send_with_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_with_status)
        finally:
            self.metrics.observe(
                scope["method"], route_template(scope, path), status, time.perf_counter() - started
            )


def metrics_endpoint(metrics: HttpMetrics) -> Any:
    async def metrics_page() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return metrics_page
