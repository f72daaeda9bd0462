"""SMS through a provider interface; locally, a provider that records each message in a JSONL
file (`<data_dir>/sms/messages.jsonl`) instead of sending it."""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Protocol

from core.db.types import utcnow
from core.notifications.channels.base import OutboundMessage

# The GSM 03.38 basic character set: a message of these alone is sent as 7-bit text (160
# characters a segment); any other character (Chinese, ¥) makes it UCS-2 (70 a segment).
_GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM7_EXTENDED = set("^{}\\[~]|€\f")  # two septets each


def sms_segments(text: str) -> int:
    """How many SMS segments `text` takes (single: 160 GSM-7 / 70 UCS-2 characters;
    concatenated: 153 / 67 each)."""
    if all(ch in _GSM7 or ch in _GSM7_EXTENDED for ch in text):
        length = sum(2 if ch in _GSM7_EXTENDED else 1 for ch in text)
        return 1 if length <= 160 else -(-length // 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else -(-units // 67)


class SmsProvider(Protocol):
    def send_sms(self, *, to: str, text: str, idempotency_key: str) -> str:
        """Hand the message to the provider; return its message id. Raise SendError on failure.
        Providers that take a client reference get `idempotency_key` to drop duplicates."""
        ...


class RecordingSmsProvider:
    """Appends one JSON object a line: {at, to, text, segments, idempotency_key, message_id}."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> RecordingSmsProvider:
        return cls(data_dir / "sms" / "messages.jsonl")

    def send_sms(self, *, to: str, text: str, idempotency_key: str) -> str:
        message_id = f"rec-{idempotency_key}"
        line = json.dumps(
            {
                "at": utcnow().isoformat(),
                "to": to,
                "text": text,
                "segments": sms_segments(text),
                "idempotency_key": idempotency_key,
                "message_id": message_id,
            },
            ensure_ascii=False,
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return message_id

    def messages(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        lines = self.path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]


class SmsSender:
    def __init__(self, provider: SmsProvider) -> None:
        self.provider = provider

    def send(self, message: OutboundMessage) -> None:
        self.provider.send_sms(
            to=message.recipient, text=message.body, idempotency_key=message.idempotency_key
        )
