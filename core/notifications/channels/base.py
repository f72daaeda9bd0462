"""What every channel shares: the message handed to a sender and the two kinds of failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class SendError(Exception):
    """A send that did not go through. `retryable` tells the caller whether trying again later
    can help (a timeout, a 5xx) or not (a 4xx, an address the server refuses)."""

    retryable: bool = True


class RetryableSendError(SendError):
    retryable = True


class PermanentSendError(SendError):
    retryable = False


@dataclass(frozen=True)
class OutboundMessage:
    """One outbox row, as a sender needs it. Everything here was fixed when the row was
    planned, so a retry sends the same bytes under the same Message-ID / Idempotency-Key."""

    channel: str
    event: str
    locale: str
    idempotency_key: str
    recipient: str
    subject: str
    body: str  # email: the text part; SMS: the text; webhook: the JSON body
    html: str | None = None
    message_id: str | None = None  # email only


class Sender(Protocol):
    def send(self, message: OutboundMessage) -> None:
        """Deliver or raise SendError (anything else is treated as retryable)."""
