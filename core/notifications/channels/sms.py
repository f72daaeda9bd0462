"""SMS through a provider interface; locally, a provider that records each message in a JSONL
file (`<data_dir>/sms/messages.jsonl`) instead of sending it."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from pathlib import Path
from typing import Any, BinaryIO, Protocol

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
    """Appends one JSON object a line: {at, to, text, segments, idempotency_key, message_id}.
    Like the providers that take a client reference, it drops a message whose key it already
    holds (returning the first one's id), across processes and restarts: the file is locked
    while it is read up to its end and appended to."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._read_up_to = 0  # what this process has read of the file
        self._sent: dict[str, str] = {}  # idempotency key -> message id, from the file

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> RecordingSmsProvider:
        return cls(data_dir / "sms" / "messages.jsonl")

    def send_sms(self, *, to: str, text: str, idempotency_key: str) -> str:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
            self._catch_up(handle)
            if idempotency_key in self._sent:
                return self._sent[idempotency_key]
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
            handle.write(line.encode("utf-8") + b"\n")
            handle.flush()
            os.fsync(handle.fileno())
            self._read_up_to = handle.tell()
            self._sent[idempotency_key] = message_id
        return message_id

    def _catch_up(self, handle: BinaryIO) -> None:
        """Reads what other processes appended since this one last looked."""
        handle.seek(0, os.SEEK_END)
        if handle.tell() < self._read_up_to:  # the file was replaced: read it all again
            self._read_up_to, self._sent = 0, {}
        handle.seek(self._read_up_to)
        for line in handle.read().decode("utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # blank, or cut short by a crash mid-write: that message never went
            self._sent.setdefault(record["idempotency_key"], record["message_id"])
        self._read_up_to = handle.tell()

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
