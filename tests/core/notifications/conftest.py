"""Fixtures for the notification tests: a real SMTP sink process, appeals with a reachable
customer, and a partner webhook receiver on a real socket."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core.appeals.service import NewAppeal, create_appeal
from core.db import session_scope
from core.db.case_tables import Appeal
from core.db.ledger_tables import Customer
from core.notifications.channels.email import EmailSender
from core.notifications.channels.webhook import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify_signature,
)
from launcher.mail import read_mail, start_smtp_sink
from launcher.stack import free_port
from tests.factories import make_customer

WEBHOOK_SECRET = "whsec-test-0123456789abcdef0123456789"


@dataclass
class SmtpSink:
    host: str
    port: int
    mail_dir: Path

    def sender(self) -> EmailSender:
        return EmailSender(
            host=self.host, port=self.port, from_address="Credit Limit Appeals <no-reply@appeals.local>"
        )

    def messages_with_id(self, message_id: str) -> list[Any]:
        return [message for _, message in read_mail(self.mail_dir) if message["Message-ID"] == message_id]


@pytest.fixture(scope="session")
def smtp_sink(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SmtpSink]:
    """The sink `appeals dev` runs, as a real process on a free port."""
    root = tmp_path_factory.mktemp("smtp")
    port = free_port()
    proc = start_smtp_sink(host="127.0.0.1", port=port, mail_dir=root / "mail", log_path=root / "sink.log")
    try:
        yield SmtpSink("127.0.0.1", port, root / "mail")
    finally:
        proc.stop()


MakeAppeal = Callable[..., Appeal]


@pytest.fixture
def make_appeal(engine: Engine) -> MakeAppeal:
    def _make(
        *,
        locale: str = "en",
        email: str | None = "li.wei@example.com",
        phone: str | None = "+8613800138000",
        requested_limit_minor: int = 2_000_000,
    ) -> Appeal:
        c = make_customer(engine, locale=locale, original_limit_minor=2_500_000)
        with session_scope(engine) as session:
            customer = session.get(Customer, c.customer_id)
            assert customer is not None
            customer.email, customer.phone = email, phone
            session.add(customer)
            appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, requested_limit_minor))
            return appeal

    return _make


@dataclass
class Receiver:
    """A partner endpoint: verifies signatures, stores each event once per Idempotency-Key.
    `fail_after_store` answers 500 after storing the next N requests (the response is lost
    to the sender: it must retry, and the receiver must not record twice)."""

    url: str = ""
    secret: str = WEBHOOK_SECRET
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[dict[str, Any]] = field(default_factory=list)
    fail_after_store: int = 0
    drop_connection_after_store: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def webhook_receiver() -> Iterator[Receiver]:
    receiver = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            timestamp = self.headers.get(TIMESTAMP_HEADER, "")
            signature = self.headers.get(SIGNATURE_HEADER, "")
            key = self.headers.get(IDEMPOTENCY_HEADER, "")
            valid = verify_signature(receiver.secret, timestamp, body, signature)
            with receiver.lock:
                receiver.requests.append({"key": key, "valid": valid, "timestamp": timestamp})
                if not valid:
                    self._answer(401)
                    return
                duplicate = key in receiver.events
                if not duplicate:
                    receiver.events[key] = json.loads(body)
                if receiver.drop_connection_after_store > 0:
                    receiver.drop_connection_after_store -= 1
                    self.close_connection = True
                    self.connection.close()  # no response at all: the sender sees a broken connection
                    return
                if receiver.fail_after_store > 0:
                    receiver.fail_after_store -= 1
                    self._answer(500)
                    return
            self._answer(200)

        def _answer(self, status: int) -> None:
            payload = b'{"ok": true}' if status < 300 else b'{"error": "x"}'
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/appeals"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
