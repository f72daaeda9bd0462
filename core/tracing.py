"""Traces (OpenTelemetry): one trace per request, from the API's HTTP span through the
Temporal client's StartWorkflow into the workflow and its activities (the SDK's
TracingInterceptor carries the context in Temporal headers), exported by OTLP over HTTP.

Off unless an endpoint is configured (APPEALS_OTEL_EXPORTER_OTLP_ENDPOINT, or the standard
OTEL_EXPORTER_OTLP_ENDPOINT / OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): then nothing is instrumented
and a request pays nothing for it.

No personal data leaves in a span: every exported span goes through `redact`, which keeps only
the attributes on an allowlist (HTTP method, route, path and status, never the query string, the
user agent or the client's address; Temporal's workflow and activity ids and types; this
service's own ids and codes under `appeals.`), exceptions by type only (their messages and
stack traces may quote what a step was given), and no status description (it quotes the
exception's message). Payloads never appear: the interceptor records ids and types only, and
they are encrypted anyway (gateway/codec.py).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Event, ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.trace import Link, Status
from opentelemetry.util.types import AttributeValue

if TYPE_CHECKING:
    from fastapi import FastAPI
    from temporalio.contrib.opentelemetry import TracingInterceptor

    from core.settings import Settings

API_SERVICE = "appeals-api"
WORKER_SERVICE = "appeals-worker"

# What an exported span may say, old and stable HTTP conventions alike.
ALLOWED_ATTRIBUTES = frozenset(
    {
        "http.method",
        "http.request.method",
        "http.route",
        "http.status_code",
        "http.response.status_code",
        "http.scheme",
        "url.scheme",
        "http.flavor",
        "network.protocol.version",
        "http.target",
        "url.path",
        "http.url",
        "http.host",
        "http.server_name",
        "server.address",
        "server.port",
        "net.host.name",
        "net.host.port",
        "error.type",
        "exception.type",
        "exception.escaped",
    }
)
# Ours (ids and codes only, set by api/request_log.py and activities/activity_log.py) and the
# Temporal interceptor's (temporalWorkflowID, temporalRunID, temporalActivityID, ...).
ALLOWED_PREFIXES = ("appeals.", "temporal")
# Values that may hold a query string: kept without it.
URL_ATTRIBUTES = frozenset({"http.target", "http.url", "url.path"})
# Health checks and scrapes: a span every few seconds that says nothing.
EXCLUDED_URLS = "/health,/metrics"


def _without_query(value: AttributeValue) -> AttributeValue:
    if not isinstance(value, str):
        return value
    parts = urlsplit(value)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def allowed(attributes: Mapping[str, AttributeValue] | None) -> dict[str, AttributeValue]:
    kept: dict[str, AttributeValue] = {}
    for key, value in (attributes or {}).items():
        if key in ALLOWED_ATTRIBUTES or key.startswith(ALLOWED_PREFIXES):
            kept[key] = _without_query(value) if key in URL_ATTRIBUTES else value
    return kept


def redact(span: ReadableSpan) -> ReadableSpan:
    """The span as it may leave this process (see the module's doc)."""
    return ReadableSpan(
        name=span.name,
        context=span.context,
        parent=span.parent,
        resource=span.resource,
        attributes=allowed(span.attributes),
        events=[Event(event.name, allowed(event.attributes), event.timestamp) for event in span.events],
        links=[Link(link.context, allowed(link.attributes)) for link in span.links],
        kind=span.kind,
        status=Status(span.status.status_code),
        start_time=span.start_time,
        end_time=span.end_time,
        instrumentation_scope=span.instrumentation_scope,
    )


class RedactingExporter(SpanExporter):
    """Exports through `inner` only what `redact` leaves of each span."""

    def __init__(self, inner: SpanExporter) -> None:
        self.inner = inner

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return self.inner.export([redact(span) for span in spans])

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self.inner.force_flush(timeout_millis)


class Tracing:
    """One process's tracer provider and what hangs off it: the FastAPI instrumentation and
    the Temporal interceptor (one instance, for the client and the worker alike)."""

    def __init__(self, exporter: SpanExporter, service_name: str, *, batch: bool = True) -> None:
        self.provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service_name}))
        redacting = RedactingExporter(exporter)
        # Batched in production (a background thread sends); a test's in-memory exporter
        # sees each span as it ends.
        self.provider.add_span_processor(
            BatchSpanProcessor(redacting) if batch else SimpleSpanProcessor(redacting)
        )
        self._interceptor: TracingInterceptor | None = None

    @property
    def interceptor(self) -> TracingInterceptor:
        from temporalio.contrib.opentelemetry import TracingInterceptor

        if self._interceptor is None:
            self._interceptor = TracingInterceptor(self.provider.get_tracer("appeals.temporal"))
        return self._interceptor

    def instrument(self, app: FastAPI) -> None:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=self.provider,
            # Request metrics are the API's own (Prometheus), not a second set from here.
            meter_provider=NoOpMeterProvider(),
            excluded_urls=EXCLUDED_URLS,
            # No headers on spans, whatever OTEL_INSTRUMENTATION_HTTP_CAPTURE_HEADERS_* say.
            http_capture_headers_server_request=[],
            http_capture_headers_server_response=[],
            # The ASGI receive/send sub-spans: two more spans a request, nothing to learn.
            exclude_spans=["receive", "send"],
        )

    def shutdown(self) -> None:
        self.provider.shutdown()


def otlp_configured(settings: Settings, environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    return bool(
        settings.otel_exporter_otlp_endpoint
        or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    )


def tracing_from_settings(settings: Settings, service_name: str) -> Tracing | None:
    """OTLP tracing as configured, or None (no tracing) when no endpoint is."""
    if not otlp_configured(settings):
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    endpoint = settings.otel_exporter_otlp_endpoint
    # Without ours, the exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself.
    exporter = (
        OTLPSpanExporter(endpoint=f"{endpoint.rstrip('/')}/v1/traces") if endpoint else OTLPSpanExporter()
    )
    return Tracing(exporter, service_name)


def annotate_span(**attributes: Any) -> None:
    """Adds this service's ids and codes (`appeals.<name>`) to the current span; without
    tracing the current span is a no-op one."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    for key, value in attributes.items():
        if value is not None:
            span.set_attribute(f"appeals.{key}", str(value))
