"""The local SMTP sink: accepts every message and writes it, unchanged but for two
X-Envelope-* lines on top, as `<dir>/<UTC time>-<Message-ID>.eml` (open it with any mail
client). A message whose Message-ID it already holds (in the directory, across restarts) is
accepted and dropped, as mail stores collapse copies: the one resend the outbox cannot rule out
(a crash after the send, before SENT) reaches the mailbox once. `appeals dev` runs it as a
managed process (launcher/mail.py); by hand:

    python -m launcher.smtp_sink --port 8025 --dir .data/mail
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import signal
import sys
import uuid
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from core.clock import SYSTEM_CLOCK

_UNSAFE = re.compile(r"[^A-Za-z0-9@._+-]")


def eml_name(message_id: str | None, at: datetime) -> str:
    """`20250312T101530.123456Z-<message id without <>, unsafe characters as _>.eml`."""
    stamp = at.astimezone(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    ident = _UNSAFE.sub("_", (message_id or "no-message-id").strip().strip("<>"))[:120]
    return f"{stamp}-{ident}.eml"


def write_eml(directory: Path, content: bytes, *, mail_from: str, rcpt_tos: list[str]) -> Path:
    """Written under a temporary name and linked into place: a reader never sees half a message."""
    directory.mkdir(parents=True, exist_ok=True)
    headers = BytesHeaderParser().parsebytes(content)
    envelope = f"X-Envelope-From: <{mail_from}>\r\nX-Envelope-To: {', '.join(rcpt_tos)}\r\n".encode()
    base = eml_name(headers.get("Message-ID"), SYSTEM_CLOCK.now())
    tmp = directory / f".{uuid.uuid4().hex}.part"
    tmp.write_bytes(envelope + content)
    try:
        for n in range(1000):
            path = directory / (base if n == 0 else base.replace(".eml", f"-{n}.eml"))
            try:
                os.link(tmp, path)  # atomic, and never replaces an existing message
            except FileExistsError:
                continue
            return path
    finally:
        tmp.unlink(missing_ok=True)
    raise RuntimeError(f"no free file name for {base} in {directory}")


def stored_message_ids(directory: Path) -> set[str]:
    """The Message-IDs of the messages already in `directory`."""
    ids: set[str] = set()
    for path in directory.glob("*.eml"):
        with path.open("rb") as handle:
            message_id = BytesHeaderParser().parse(handle, headersonly=True).get("Message-ID")
        if message_id:
            ids.add(message_id.strip())
    return ids


class SinkHandler:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.seen = stored_message_ids(directory) if directory.is_dir() else set()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or envelope.content
        assert isinstance(content, bytes)
        message_id = (BytesHeaderParser().parsebytes(content).get("Message-ID") or "").strip()
        if message_id and message_id in self.seen:
            print(f"dropped a copy of {message_id} (already stored)", flush=True)
            return "250 Message accepted for delivery (a copy of one already delivered)"
        if message_id:
            self.seen.add(message_id)  # before the write: a copy arriving meanwhile is dropped
        path = await asyncio.to_thread(
            write_eml,
            self.directory,
            content,
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
        )
        print(f"stored {path.name} for {', '.join(envelope.rcpt_tos)}", flush=True)
        return "250 Message accepted for delivery"


async def serve(host: str, port: int, directory: Path, *, ready: asyncio.Event | None = None) -> None:
    """Until SIGTERM or SIGINT (or cancellation)."""
    loop = asyncio.get_running_loop()
    handler = SinkHandler(directory)

    def factory() -> Any:
        return SMTP(handler, enable_SMTPUTF8=True, hostname="appeals-smtp-sink", ident="appeals SMTP sink")

    server = await loop.create_server(factory, host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    print(f"SMTP sink listening on {host}:{port}, writing to {directory.resolve()}", flush=True)
    if ready is not None:
        ready.set()
    try:
        await stop.wait()
    finally:
        server.close()
        await server.wait_closed()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--dir", type=Path, default=Path(".data") / "mail", dest="directory")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port, args.directory))
    return 0


if __name__ == "__main__":
    sys.exit(main())
