"""Keyset cursors: opaque to clients, so every value read back from one is checked before it
reaches a query. A cursor is base64url of a JSON list; a crafted one (a naive or impossible
time, an integer too large for a column, a NUL in an id) is `invalid_cursor`, never a database
error."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any, Final

# What an INTEGER column holds on both databases (priority, version).
INT32_MIN: Final = -(2**31)
INT32_MAX: Final = 2**31 - 1
MAX_ID_CHARS: Final = 200


def encode(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode(cursor: str) -> list[Any]:
    """The cursor's list of values; ValueError if it is not one this API gave."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError("not a cursor") from exc
    if not isinstance(raw, list):
        raise ValueError("not a cursor")
    return raw


def instant(value: Any) -> datetime:
    """A timezone-aware time, as the cursor encoder wrote it (isoformat)."""
    if not isinstance(value, str):
        raise ValueError("a cursor time is a string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise ValueError("a cursor time carries its offset")
    if not 1 < parsed.year < 9999:  # keeps any conversion to UTC in range
        raise ValueError("a cursor time out of range")
    return parsed


def int32(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not INT32_MIN <= value <= INT32_MAX:
        raise ValueError("a cursor integer out of range")
    return value


def identifier(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_ID_CHARS or "\x00" in value:
        raise ValueError("a cursor id is a short string")
    value.encode()  # UnicodeEncodeError (a ValueError) on a lone surrogate
    return value
