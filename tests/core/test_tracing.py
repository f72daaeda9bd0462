"""Traces: one appeal submission is one trace from the API's HTTP span through the Temporal
client into the workflow and its activities (real app, dev server and worker in-process, an
in-memory exporter behind the same redaction as OTLP), and no span says who the customer is."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags
from sqlalchemy.engine import Engine

from activities.activity_log import ACTIVITY_LOGGER
from activities.appeal import AppealActivities
from api.app import create_app
from api.request_log import ACCESS_LOGGER
from core.auth import Role, mint_token
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.ledger_tables import Customer
from core.logs import JsonFormatter
from core.seed import seed_demo_ledger
from core.settings import Settings
from core.storage import make_s3_client
from core.tracing import API_SERVICE, WORKER_SERVICE, Tracing, otlp_configured, redact, tracing_from_settings
from gateway.temporal import connect_temporal
from launcher.worker import build_worker
from tests.eventually import eventually
from tests.otlp_collector import otlp_collector

CUSTOMER, ACCOUNT = "c-1002", "acct-1002"  # the walkthrough's demo customer


def _personal_data(engine: Engine, customer_id: str) -> list[str]:
    with session_scope(engine, read_only=True) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        return [value for value in (customer.name, customer.email, customer.phone) if value]


def _attrs(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def _attribute_text(span: ReadableSpan) -> str:
    values = [*(span.attributes or {}).values(), span.name, span.status.description or ""]
    for event in span.events:
        values.extend((event.attributes or {}).values())
    return " ".join(str(value) for value in values)


@pytest.fixture
def traced_settings(settings: Settings, temporal_address: str) -> Settings:
    return settings.model_copy(update={"temporal_address": temporal_address})


@pytest.fixture
def demo_ledger(sqlite_engine: Engine) -> Iterator[Engine]:
    # SQLite only: nothing here depends on the database; the spans are the same on both.
    with session_scope(sqlite_engine) as session:
        seed_demo_ledger(session, SYSTEM_CLOCK.today())
    yield sqlite_engine


class _JsonLines(logging.Handler):
    """The lines as the process writes them: formatted when emitted, in the request's or the
    activity's context."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def json_lines() -> Iterator[_JsonLines]:
    handler = _JsonLines()
    loggers = [logging.getLogger(name) for name in (ACCESS_LOGGER, ACTIVITY_LOGGER)]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


@pytest.mark.asyncio(loop_scope="session")
async def test_one_submission_is_one_trace_through_workflow_and_activities(
    traced_settings: Settings, demo_ledger: Engine, json_lines: _JsonLines
) -> None:
    settings, engine = traced_settings, demo_ledger
    exporter = InMemorySpanExporter()
    tracing = Tracing(exporter, API_SERVICE, batch=False)
    s3: Any = make_s3_client(settings)
    # The worker's client has no interceptor of its own: build_worker adds the tracing one.
    worker_client = await connect_temporal(settings)
    app = create_app(settings, engine=engine, s3_client=s3, tracing=tracing)
    token = mint_token(settings, role=Role.CUSTOMER, subject=CUSTOMER)
    with ThreadPoolExecutor(max_workers=4) as executor:
        activities = AppealActivities(engine=engine, s3_client=s3, settings=settings)
        async with (
            build_worker(worker_client, settings, activities, executor, tracing=tracing),
            app.router.lifespan_context(app),
        ):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                created = await http.post(
                    "/appeals?customer_hint=secret-query",
                    headers={"Authorization": f"Bearer {token}", "User-Agent": "tracing-test/1"},
                    json={"account_id": ACCOUNT, "requested_limit_minor": 900_000},
                )
                assert created.status_code == 201, created.text
                appeal_id = created.json()["id"]
                workflow_id = f"appeal-{appeal_id}"

                def ran(spans: tuple[ReadableSpan, ...]) -> bool:
                    return any(s.name == "RunActivity:open_appeal" for s in spans)

                # The workflow's first activity (open_appeal) has run and its span ended.
                await eventually(
                    lambda: _async(exporter.get_finished_spans()), ran, what="the first activity's span"
                )

    spans = exporter.get_finished_spans()
    server = next(s for s in spans if s.kind is SpanKind.SERVER and _attrs(s).get("http.route") == "/appeals")
    trace_id = server.context.trace_id
    ours = [s for s in spans if s.context.trace_id == trace_id]
    names = {s.name for s in ours}
    assert {
        "StartWorkflow:AppealWorkflow",
        "RunWorkflow:AppealWorkflow",
        "StartActivity:open_appeal",
        "RunActivity:open_appeal",
    } <= names, names
    by_id = {s.context.span_id: s for s in ours}

    def parent(name: str) -> str | None:
        span = next(s for s in ours if s.name == name)
        return by_id[span.parent.span_id].name if span.parent else None

    # The SDK's interceptor hangs the workflow's spans (zero-length: a workflow may replay)
    # under the client's StartWorkflow, and each activity's run under its StartActivity.
    assert parent("StartWorkflow:AppealWorkflow") == server.name
    assert parent("RunWorkflow:AppealWorkflow") == "StartWorkflow:AppealWorkflow"
    assert parent("StartActivity:open_appeal") == "StartWorkflow:AppealWorkflow"
    assert parent("RunActivity:open_appeal") == "StartActivity:open_appeal"
    start = next(s for s in ours if s.name == "StartWorkflow:AppealWorkflow")
    run_activity = next(s for s in ours if s.name == "RunActivity:open_appeal")
    assert _attrs(start)["temporalWorkflowID"] == workflow_id
    # This service's own ids and codes, on the spans that know them.
    assert _attrs(server)["appeals.actor_role"] == "customer"
    assert _attrs(run_activity)["appeals.appeal_id"] == appeal_id
    assert server.resource.attributes["service.name"] == API_SERVICE
    # Nothing the HTTP span exported says who called or with what query.
    assert _attrs(server)["http.target"] == "/appeals"
    assert "?" not in str(_attrs(server).get("http.url", ""))
    exported = " ".join(_attribute_text(s) for s in spans)
    for hidden in ("secret-query", "tracing-test", "127.0.0.1"):
        assert hidden not in exported
    for personal in _personal_data(engine, CUSTOMER):
        assert personal not in exported, personal

    # The log lines of the request and of the activity carry the same trace id.
    trace_hex = format(trace_id, "032x")
    submitted = next(line for line in json_lines.lines if line.get("route") == "/appeals")
    opened = next(line for line in json_lines.lines if line.get("activity") == "open_appeal")
    assert submitted["trace_id"] == opened["trace_id"] == trace_hex
    assert submitted["span_id"] == format(server.context.span_id, "016x")
    assert opened["span_id"] == format(run_activity.context.span_id, "016x")
    assert (submitted["appeal_id"], opened["appeal_id"]) == (appeal_id, appeal_id)


async def _async(value: Any) -> Any:
    return value


def test_redact_keeps_ids_and_codes_only() -> None:
    context = SpanContext(trace_id=1, span_id=2, is_remote=False, trace_flags=TraceFlags(1))
    span = ReadableSpan(
        name="POST /appeals",
        context=context,
        attributes={
            "http.method": "POST",
            "http.route": "/appeals/{appeal_id}",
            "http.target": "/appeals/a-1?email=someone@example.test",
            "http.url": "http://api.local/appeals/a-1?name=Li+Wei",
            "http.user_agent": "Mozilla/5.0",
            "net.peer.ip": "203.0.113.9",
            "http.request.header.authorization": ("Bearer x",),
            "temporalWorkflowID": "appeal-a-1",
            "appeals.actor_role": "customer",
        },
        events=[
            Event(
                "exception",
                {
                    "exception.type": "CreditLineRefused",
                    "exception.message": "refused for Li Wei",
                    "exception.stacktrace": "Traceback ... Li Wei",
                },
            )
        ],
        status=Status(StatusCode.ERROR, "CreditLineRefused: refused for Li Wei"),
    )
    clean = redact(span)
    assert dict(clean.attributes or {}) == {
        "http.method": "POST",
        "http.route": "/appeals/{appeal_id}",
        "http.target": "/appeals/a-1",
        "http.url": "http://api.local/appeals/a-1",
        "temporalWorkflowID": "appeal-a-1",
        "appeals.actor_role": "customer",
    }
    assert [dict(e.attributes or {}) for e in clean.events] == [{"exception.type": "CreditLineRefused"}]
    assert clean.status.status_code is StatusCode.ERROR and clean.status.description is None
    assert clean.context == context


def test_tracing_is_off_unless_an_endpoint_is_configured(settings: Settings) -> None:
    assert not otlp_configured(settings, {})
    assert otlp_configured(settings, {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"})
    assert otlp_configured(settings, {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"})
    ours = settings.model_copy(update={"otel_exporter_otlp_endpoint": "http://collector:4318"})
    assert otlp_configured(ours, {})
    assert not otlp_configured(ours, {"OTEL_SDK_DISABLED": "true"})


def test_spans_leave_by_otlp_http_redacted(settings: Settings) -> None:
    with otlp_collector() as collector:
        configured = settings.model_copy(update={"otel_exporter_otlp_endpoint": collector.endpoint})
        tracing = tracing_from_settings(configured, WORKER_SERVICE)
        assert tracing is not None
        tracer = tracing.provider.get_tracer("test")
        with tracer.start_as_current_span("GET /appeals/{appeal_id}") as span:
            span.set_attribute("http.route", "/appeals/{appeal_id}")
            span.set_attribute("http.url", "http://api/appeals/a-1?phone=13800000000")
            span.set_attribute("http.user_agent", "Mozilla/5.0")
        assert tracing.provider.force_flush()
        tracing.shutdown()
    [(path, body)] = collector.received
    assert path == "/v1/traces"
    request = ExportTraceServiceRequest.FromString(body)
    [resource_spans] = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert resource["service.name"] == WORKER_SERVICE
    [sent] = [s for scope in resource_spans.scope_spans for s in scope.spans]
    attributes = {a.key: a.value.string_value for a in sent.attributes}
    assert attributes == {"http.route": "/appeals/{appeal_id}", "http.url": "http://api/appeals/a-1"}
