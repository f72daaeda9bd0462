"""Structured logs shared by the API, the worker and core: one schema, JSON lines by default.

Lines carry IDs, codes, counts and durations only, never personal data (no names, phone
numbers, email addresses or document contents). Exceptions are logged by type and frames,
never by message: a driver's error may quote the row it refused (see JsonFormatter).

Schema of a JSON line (docs/traces-and-logs.md): `ts` (UTC, ISO 8601), `level`, `logger`,
`message`; a `log_event` line adds `event` and its own fields; the request's or activity's
context adds `appeal_id`, `workflow_id`, `task_id`, `actor_role` when known; a line written
inside a traced span adds `trace_id` and `span_id`.
"""

from __future__ import annotations

import json
import logging
import logging.config
import traceback
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

from opentelemetry import trace

TRANSITION_LOGGER = "appeals.transition"
# The context a line may carry, in this order; nothing else is taken from the context.
CONTEXT_FIELDS = ("appeal_id", "workflow_id", "task_id", "actor_role")
REQUIRED_FIELDS = ("ts", "level", "logger", "message")
LogFormat = Literal["json", "text"]

# Per request (api/request_log.py) or per activity (activities/activity_log.py): one mutable
# mapping, so what a dependency adds in a copied context (a thread pool hop) is still seen by
# the access line the request's middleware writes at the end.
_context: ContextVar[MutableMapping[str, str] | None] = ContextVar("appeals_log_context", default=None)


def _value(value: object) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    if not text or any(ch.isspace() or ch in '"=' for ch in text):
        return json.dumps(text, ensure_ascii=False)
    return text


def log_line(event: str, fields: Mapping[str, object]) -> str:
    """`event key=value ...`; values with spaces, quotes or `=` are JSON-quoted, None left out."""
    pairs = [f"{key}={_value(value)}" for key, value in fields.items() if value is not None]
    return " ".join([event, *pairs])


def log_event(logger: logging.Logger, level: int, event: str, **fields: object) -> None:
    """One structured line; the fields also ride on the record (`log_event`, `log_fields`)
    for the JSON formatter or a test."""
    if logger.isEnabledFor(level):  # a line nobody writes costs no formatting
        logger.log(level, log_line(event, fields), extra={"log_event": event, "log_fields": dict(fields)})


@contextmanager
def log_context(**fields: object) -> Iterator[MutableMapping[str, str]]:
    """A fresh context for one request or activity: lines logged inside carry `fields` (None
    left out) and whatever `add_log_context` adds later in the same request or activity."""
    context: MutableMapping[str, str] = {}
    token = _context.set(context)
    try:
        add_log_context(**fields)
        yield context
    finally:
        _context.reset(token)


def add_log_context(**fields: object) -> None:
    """Adds IDs to the current request's or activity's context; outside one, nothing."""
    context = _context.get()
    if context is None:
        return
    for key, value in fields.items():
        if key in CONTEXT_FIELDS and value is not None:
            context[key] = str(value)


def current_log_context() -> dict[str, str]:
    return dict(_context.get() or {})


def _frames(exc: BaseException) -> list[str]:
    return [
        f"{frame.filename}:{frame.lineno} in {frame.name}"
        for frame in traceback.extract_tb(exc.__traceback__)
    ]


class JsonFormatter(logging.Formatter):
    """One JSON object per line in the schema above."""

    def format(self, record: logging.LogRecord) -> str:
        event = getattr(record, "log_event", None)
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": event if event is not None else record.getMessage(),
        }
        if event is not None:
            line["event"] = event
            fields: Mapping[str, object] = getattr(record, "log_fields", {})
            for key, value in fields.items():
                if value is not None and key not in REQUIRED_FIELDS:
                    line[key] = value
        for key, value in (_context.get() or {}).items():
            line.setdefault(key, value)
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            line["trace_id"] = format(span.trace_id, "032x")
            line["span_id"] = format(span.span_id, "016x")
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line["error"] = type(exc).__name__
            line["frames"] = _frames(exc)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For a person reading a terminal: the time, level, logger, then the same message and
    context as the JSON line, exceptions by type and frames only (as JSON)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        context = " ".join(f"{key}={value}" for key, value in (_context.get() or {}).items())
        text = f"{ts} {record.levelname} {record.name}: {record.getMessage()}"
        if context:
            text = f"{text} [{context}]"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += "\n  " + type(exc).__name__ + "\n  " + "\n  ".join(_frames(exc))
        return text


# Libraries whose INFO lines are per request or per poll: noise beside our own access line.
QUIET_LOGGERS = {"httpx": "WARNING", "botocore": "WARNING", "urllib3": "WARNING", "uvicorn.access": "WARNING"}


def logging_config(log_format: LogFormat = "json", level: str = "INFO") -> dict[str, Any]:
    """The one logging set-up of the API (uvicorn's log_config, so that each of its worker
    processes applies it too), the worker and the codec server: every logger, uvicorn's
    included, through one handler on stderr in one format. uvicorn's own access line is off:
    api/request_log.py writes one per request without the query string."""
    formatter = "core.logs.JsonFormatter" if log_format == "json" else "core.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"appeals": {"()": formatter}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "appeals", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            # uvicorn configures its loggers with their own handlers; through the root instead.
            **{name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error")},
            **{
                name: {"level": quiet, "handlers": [], "propagate": True}
                for name, quiet in QUIET_LOGGERS.items()
            },
        },
    }


def configure_logging(log_format: LogFormat = "json", level: str = "INFO") -> None:
    logging.config.dictConfig(logging_config(log_format, level))
