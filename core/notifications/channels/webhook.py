"""Partner webhooks: a JSON POST to each URL in settings, signed with HMAC-SHA256.

Every request carries

    Content-Type: application/json
    X-Appeals-Timestamp: <unix seconds when this attempt was made>
    X-Appeals-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>
    Idempotency-Key: <the outbox key, the same on every attempt for this event and endpoint>

How a receiver verifies (`verify_signature` below does exactly this):

1. Read the raw request body as bytes, before any JSON parsing or re-serialising.
2. Compute HMAC-SHA256 with the shared secret over `timestamp + "." + body` (the timestamp
   header's value as sent, ASCII) and compare, in constant time, its hex digest with the
   part of X-Appeals-Signature after `sha256=`.
3. Refuse a timestamp more than `tolerance` seconds (default 300) from its own clock: a
   captured request cannot be replayed later.
4. Drop duplicates by Idempotency-Key: a retry after a timeout or a lost response carries the
   same key and the same body (only the timestamp and signature change). Answer a duplicate
   with 2xx, so it is not retried again.

Answer 2xx once the event is stored. The sender retries on a connection error, a timeout,
408, 425, 429 and 5xx; any other status (4xx, 3xx: redirects are not followed) is permanent.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import httpx

from core.clock import SYSTEM_CLOCK
from core.notifications.channels.base import OutboundMessage, PermanentSendError, RetryableSendError
from core.settings import Settings

TIMESTAMP_HEADER = "X-Appeals-Timestamp"
SIGNATURE_HEADER = "X-Appeals-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"
DEFAULT_TOLERANCE_SECONDS = 300.0
_RETRYABLE_STATUSES = {408, 425, 429}


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else body


def sign(secret: str, timestamp: int | str, body: bytes | str) -> str:
    """`sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>`."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + _as_bytes(body), hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify_signature(
    secret: str,
    timestamp: int | str,
    body: bytes | str,
    signature: str,
    tolerance: float = DEFAULT_TOLERANCE_SECONDS,
    *,
    now: float | None = None,
) -> bool:
    """For receivers: True when `signature` (the X-Appeals-Signature header) is the HMAC of
    `timestamp` (X-Appeals-Timestamp, as sent) and the raw `body` under `secret`, and the
    timestamp is within `tolerance` seconds of `now` (default: this machine's clock).
    The comparison takes constant time. Deduplicate separately, on Idempotency-Key."""
    try:
        sent_at = int(str(timestamp).strip())
    except ValueError:
        return False
    current = SYSTEM_CLOCK.now().timestamp() if now is None else now
    if abs(current - sent_at) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, sent_at, body), signature.strip())


class WebhookSender:
    def __init__(
        self,
        secret: str,
        *,
        timeout: float = 10.0,
        client: httpx.Client | None = None,
        clock: Callable[[], float] = lambda: SYSTEM_CLOCK.now().timestamp(),
    ) -> None:
        if not secret:
            raise ValueError("a webhook secret is required to sign requests")
        self.secret = secret
        self.timeout = timeout
        self._client = client
        self._clock = clock

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookSender:
        if not settings.webhook_secret:
            raise ValueError("APPEALS_WEBHOOK_SECRET is not set")
        return cls(settings.webhook_secret, timeout=settings.webhook_timeout_seconds)

    def headers(self, message: OutboundMessage, body: bytes) -> dict[str, str]:
        timestamp = int(self._clock())
        return {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            SIGNATURE_HEADER: sign(self.secret, timestamp, body),
            IDEMPOTENCY_HEADER: message.idempotency_key,
            "User-Agent": "limit-restore-appeals-webhooks/1",
        }

    def send(self, message: OutboundMessage) -> None:
        body = message.body.encode("utf-8")
        headers = self.headers(message, body)
        try:
            if self._client is not None:
                response = self._client.post(message.recipient, content=body, headers=headers)
            else:
                with httpx.Client(timeout=self.timeout, follow_redirects=False) as client:
                    response = client.post(message.recipient, content=body, headers=headers)
        except httpx.TransportError as exc:  # refused, reset, timed out: the partner may have it
            raise RetryableSendError(f"POST {message.recipient}: {type(exc).__name__}: {exc}") from exc
        status = response.status_code
        if 200 <= status < 300:
            return
        error = f"POST {message.recipient}: HTTP {status} {response.text[:200]!r}"
        if status >= 500 or status in _RETRYABLE_STATUSES:
            raise RetryableSendError(error)
        raise PermanentSendError(error)
