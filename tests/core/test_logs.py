"""The JSON log line: its schema, the request's or activity's context, the trace id, and
exceptions by type and frames only."""

from __future__ import annotations

import asyncio
import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.logs import (
    REQUIRED_FIELDS,
    JsonFormatter,
    TextFormatter,
    add_log_context,
    current_log_context,
    log_context,
    log_event,
    logging_config,
)
from core.tracing import WORKER_SERVICE, Tracing

log = logging.getLogger("tests.logs")


def _record(level: int = logging.INFO, **fields: object) -> logging.LogRecord:
    """What `log_event` hands the handlers."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    try:
        log_event(log, level, "activity_finished", **fields)
    finally:
        log.removeHandler(handler)
    return records[0]


def _json(record: logging.LogRecord) -> dict[str, Any]:
    line = JsonFormatter().format(record)
    assert "\n" not in line
    parsed: dict[str, Any] = json.loads(line)
    return parsed


def test_a_structured_line_has_the_schema_and_its_fields() -> None:
    line = _json(_record(logging.WARNING, activity="open_appeal", attempt=2, duration_ms=1.5, note=None))
    assert set(REQUIRED_FIELDS) <= line.keys()
    assert line["level"] == "warning" and line["logger"] == "tests.logs"
    assert line["event"] == line["message"] == "activity_finished"
    assert (line["activity"], line["attempt"], line["duration_ms"]) == ("open_appeal", 2, 1.5)
    assert "note" not in line  # None is left out, as on the key=value line
    assert line["ts"].endswith("+00:00") and "T" in line["ts"]
    assert "trace_id" not in line  # no span, no trace id


def test_a_field_cannot_overwrite_the_schema() -> None:
    line = _json(_record(ts="forged", message="x"))
    assert line["ts"] != "forged" and line["message"] == "activity_finished"


def test_context_rides_on_every_line_inside_it_and_only_there() -> None:
    record = logging.LogRecord("core.x", logging.INFO, __file__, 1, "plain %s", ("message",), None)
    with log_context(appeal_id="a-1", workflow_id="appeal-a-1", actor_role=None) as context:
        add_log_context(actor_role="reviewer", task_id="t-9", name="Li Wei")  # not a context field
        line = _json(record)
        assert context == current_log_context()
    assert line["message"] == "plain message" and "event" not in line
    assert (line["appeal_id"], line["workflow_id"], line["actor_role"], line["task_id"]) == (
        "a-1",
        "appeal-a-1",
        "reviewer",
        "t-9",
    )
    assert "name" not in line and "Li Wei" not in json.dumps(line)
    assert "appeal_id" not in _json(record)  # outside the context: none
    add_log_context(appeal_id="a-2")  # outside a context: nothing to add to
    assert current_log_context() == {}


def test_context_added_in_a_copied_context_reaches_the_request_line() -> None:
    """A dependency in the thread pool runs in a copy of the request's context: what it adds
    is still on the access line the request writes afterwards."""

    async def request() -> dict[str, str]:
        with log_context(appeal_id="a-1"):
            # As Starlette runs a plain `def` dependency: in a thread, in a copy of the context.
            await asyncio.to_thread(add_log_context, actor_role="admin")
            return current_log_context()

    assert asyncio.run(request()) == {"appeal_id": "a-1", "actor_role": "admin"}


def test_a_line_inside_a_span_carries_its_trace_and_span_ids() -> None:
    tracing = Tracing(InMemorySpanExporter(), WORKER_SERVICE, batch=False)
    with tracing.provider.get_tracer("t").start_as_current_span("RunActivity:x") as span:
        line = _json(_record())
    context = span.get_span_context()
    assert line["trace_id"] == format(context.trace_id, "032x")
    assert line["span_id"] == format(context.span_id, "016x")


def test_context_and_trace_reach_an_activity_thread() -> None:
    """As the SDK runs a sync activity: in the executor, in a copy of the caller's context."""
    import contextvars

    def in_thread() -> dict[str, Any]:
        return _json(_record())

    with log_context(appeal_id="a-7"), ThreadPoolExecutor(1) as pool:
        line = pool.submit(contextvars.copy_context().run, in_thread).result()
    assert line["appeal_id"] == "a-7"


def test_exceptions_are_logged_by_type_and_frames_never_by_message() -> None:
    try:
        raise ValueError("duplicate key (email)=(li.wei@example.test)")
    except ValueError:
        record = logging.LogRecord("core.x", logging.ERROR, __file__, 1, "insert failed", (), None)
        import sys

        record.exc_info = sys.exc_info()
    line = _json(record)
    assert line["error"] == "ValueError"
    assert line["frames"] and all(" in " in frame for frame in line["frames"])
    assert "li.wei" not in json.dumps(line)
    text = TextFormatter().format(record)
    assert "ValueError" in text and "li.wei" not in text


def test_one_config_for_every_logger_uvicorns_included() -> None:
    config = logging_config("json", "INFO")
    assert config["formatters"]["appeals"]["()"] == "core.logs.JsonFormatter"
    assert config["root"] == {"handlers": ["stderr"], "level": "INFO"}
    # uvicorn's loggers reach the root handler instead of their own plain-text ones.
    assert config["loggers"]["uvicorn.error"] == {"handlers": [], "propagate": True}
    assert logging_config("text", "debug")["formatters"]["appeals"]["()"] == "core.logs.TextFormatter"
