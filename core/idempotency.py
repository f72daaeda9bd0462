"""Idempotency-Key fingerprints: a key names one request, and a reuse of the key for another
request is refused instead of silently answered with the first one's result (Stripe's rule).

The fingerprint covers the method, the operation's path, the principal and a hash of what the
request asked for: the parsed body in canonical JSON (keys sorted, so spacing and key order do
not matter), or for an upload what is known of the streamed body (its document type, and the
SHA-256 and size of the file as stored)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from core.errors import InvalidInput


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def fingerprint(method: str, path: str, principal: str, body: Mapping[str, Any]) -> str:
    """The SHA-256 (hex) of (method, path, principal, SHA-256 of the canonical body)."""
    body_hash = hashlib.sha256(_canonical(dict(body))).hexdigest()
    return hashlib.sha256(_canonical([method.upper(), path, principal, body_hash])).hexdigest()


def key_reused() -> InvalidInput:
    return InvalidInput(
        "This Idempotency-Key was already used for a different request (another body, "
        "operation or caller). Send a new key for a new request; repeat a request exactly to "
        "get its first answer.",
        code="idempotency_key_reused",
    )


def check_same_request(stored: str | None, current: str) -> None:
    """Refuses a key whose first request had another fingerprint. `stored` None: recorded
    before fingerprints were, so nothing to compare (accepted)."""
    if stored is not None and stored != current:
        raise key_reused()
