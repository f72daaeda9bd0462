"""Structured log lines shared by the API, the worker and core: `event key=value ...`.

Lines carry IDs, codes, counts and durations only, never personal data (no names, phone
numbers, email addresses or document contents).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping

TRANSITION_LOGGER = "appeals.transition"


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
    for a JSON formatter or a test."""
    logger.log(level, log_line(event, fields), extra={"log_event": event, "log_fields": dict(fields)})
