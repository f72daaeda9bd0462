"""The worker's two Prometheus endpoints (docs/metrics.md).

- The Temporal SDK's own metrics (workflow and activity task latencies, pollers, slots, ...) on
  APPEALS_WORKER_METRICS_PORT: the SDK's Rust core serves them itself, from the Runtime the
  worker's Client is connected with, so they cannot share a port with Python's server.
- The business metrics on APPEALS_BUSINESS_METRICS_PORT: prometheus_client's server with one
  collector that counts rows in the database at scrape time (core/business_metrics.py).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString
from sqlalchemy.engine import Engine
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from core.business_metrics import DECISION_BUCKETS, BusinessCounts, count_business
from core.settings import Settings
from gateway.temporal import core_log_config

log = logging.getLogger(__name__)


def temporal_runtime(settings: Settings) -> Runtime | None:
    """A Runtime whose SDK metrics Prometheus scrapes at worker_metrics_port; None when that is 0
    (the SDK's default runtime, no metrics). Durations in seconds, as Prometheus expects. A port
    that is taken is logged as an error, not fatal: appeals keep moving without the metrics."""
    if not settings.worker_metrics_port:
        return None
    address = f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"
    try:
        # Counters end in _total, as Prometheus names them (and its parsers expect).
        prometheus = PrometheusConfig(
            bind_address=address, counters_total_suffix=True, durations_as_seconds=True
        )
        # The core's log forwarded as in every runtime of this service (gateway/temporal.py).
        return Runtime(telemetry=TelemetryConfig(logging=core_log_config(), metrics=prometheus))
    except ValueError:  # the port is taken: another worker on this host, most likely
        log.error(
            "Temporal SDK metrics not served on %s (APPEALS_WORKER_METRICS_PORT): the worker runs without",
            address,
            exc_info=True,
        )
        return None


class BusinessCollector(Collector):
    """The business metrics, counted at most once per `cache_seconds` however often they are
    scraped. A failed count is not an error of the scrape: `appeals_business_metrics_up` is 0
    and the counts are left out (a counter must not drop to zero and back)."""

    def __init__(self, engine: Engine, cache_seconds: float = 30.0) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._counted: tuple[float, BusinessCounts, float] | None = None  # at, counts, took

    def _counts(self) -> tuple[BusinessCounts, float] | None:
        with self._lock:
            now = time.monotonic()
            if self._counted is None or now - self._counted[0] >= self._cache_seconds:
                started = time.perf_counter()
                try:
                    counts = count_business(self._engine)
                except Exception:
                    log.warning("business metrics not counted", exc_info=True)
                    return None
                self._counted = (now, counts, time.perf_counter() - started)
            return self._counted[1], self._counted[2]

    def collect(self) -> Iterator[Metric]:
        counted = self._counts()
        up = GaugeMetricFamily(
            "appeals_business_metrics_up", "1 when the last count of the business metrics succeeded."
        )
        up.add_metric([], 1.0 if counted else 0.0)
        yield up
        if counted is None:
            return
        counts, took = counted
        duration = GaugeMetricFamily(
            "appeals_business_metrics_count_seconds", "How long the last count of the business metrics took."
        )
        duration.add_metric([], took)
        yield duration
        yield from business_families(counts)


def business_families(counts: BusinessCounts) -> Iterator[Metric]:
    started = CounterMetricFamily(
        "appeals_started", "Appeals submitted, by how they came in.", labels=["source"]
    )
    for source, n in sorted(counts.started.items()):
        started.add_metric([source], n)
    yield started

    open_appeals = GaugeMetricFamily("appeals_open", "Open appeals, by status.", labels=["status"])
    for status, n in sorted(counts.open_appeals.items()):
        open_appeals.add_metric([status], n)
    yield open_appeals

    closed = CounterMetricFamily(
        "appeals_closed", "Appeals closed, by who worked them and how they ended.", labels=["path", "outcome"]
    )
    for (path, outcome), n in sorted(counts.closed.items()):
        closed.add_metric([path, outcome], n)
    yield closed

    decisions = HistogramMetricFamily(
        "appeals_time_to_decision_seconds",
        "Seconds from an appeal's submission to each decision on it, by path and outcome.",
        labels=["path", "outcome"],
    )
    for (path, outcome), times in sorted(counts.decisions.items()):
        buckets = [
            (floatToGoString(bound), float(n))
            for bound, n in zip(DECISION_BUCKETS, times.buckets, strict=True)
        ]
        buckets.append(("+Inf", float(times.count)))
        decisions.add_metric([path, outcome], buckets, times.sum_seconds)
    yield decisions

    tasks = GaugeMetricFamily(
        "appeals_review_tasks_open",
        "Review tasks not done yet, by queue and status.",
        labels=["queue", "status"],
    )
    for (queue, status), n in sorted(counts.open_review_tasks.items()):
        tasks.add_metric([queue, status], n)
    yield tasks

    for name, text, value in (
        (
            "appeals_sla_warnings",
            "Review SLA warnings sent (the task nears its due time).",
            counts.sla_warnings,
        ),
        (
            "appeals_sla_breaches",
            "Review SLA breaches (the task escalated at its due time).",
            counts.sla_breaches,
        ),
        ("appeals_limit_applies", "Decided limits applied to the credit line.", counts.limit_applies),
        ("appeals_limit_refusals", "Decided limits the credit-line API refused.", counts.limit_refusals),
    ):
        family = CounterMetricFamily(name, text)
        family.add_metric([], value)
        yield family

    notices = GaugeMetricFamily(
        "appeals_notices",
        "Notices, by what they are about, who they are for, channel and delivery state.",
        labels=["about", "audience", "channel", "state"],
    )
    for key, n in sorted(counts.notices.items()):
        notices.add_metric(list(key), n)
    yield notices

    rejections = CounterMetricFamily(
        "appeals_document_rejections", "Documents rejected, by reason code.", labels=["reason"]
    )
    for reason, n in sorted(counts.document_rejections.items()):
        rejections.add_metric([reason], n)
    yield rejections


def serve_business_metrics(settings: Settings, engine: Engine) -> WSGIServer | None:
    """The business metrics' HTTP server (a daemon thread), or None when its port is 0 (or taken:
    logged as an error, like the SDK's)."""
    if not settings.business_metrics_port:
        return None
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BusinessCollector(engine, settings.business_metrics_cache_seconds))
    try:
        server, _thread = start_http_server(
            settings.business_metrics_port, addr=settings.worker_metrics_host, registry=registry
        )
    except OSError:
        log.error(
            "business metrics not served on %s:%s (APPEALS_BUSINESS_METRICS_PORT): the worker runs without",
            settings.worker_metrics_host,
            settings.business_metrics_port,
            exc_info=True,
        )
        return None
    return server
