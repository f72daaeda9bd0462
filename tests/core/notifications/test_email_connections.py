"""EmailSender keeps its SMTP connections open between messages: one connection carries many
messages, a connection the relay dropped or that sat idle too long is replaced before a
message goes out on it, and threads sending at once each get a connection of their own."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from core.notifications.channels.base import OutboundMessage
from core.notifications.channels.email import EmailSender
from launcher.stack import free_port


@dataclass
class Relay:
    """An SMTP server that records, per message, the client's address (one per connection)."""

    port: int
    peers: list[tuple[str, int]] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)  # MAIL FROM, RCPT TO
    smtputf8: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)
    controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        text = envelope.content.decode()
        subject = next(line for line in text.splitlines() if line.startswith("Subject: "))
        with self.lock:
            self.peers.append(tuple(session.peer))
            self.subjects.append(subject.removeprefix("Subject: "))
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 OK"

    def start(self) -> None:
        self.controller = Controller(
            self, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self.smtputf8
        )
        self.controller.start()

    def stop(self) -> None:
        assert self.controller is not None
        self.controller.stop()


@pytest.fixture
def relay() -> Iterator[Relay]:
    server = Relay(port=free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _message(n: int) -> OutboundMessage:
    return OutboundMessage(
        channel="EMAIL",
        recipient="li.wei@example.com",
        subject=f"message {n}",
        body=f"body {n}",
        html=None,
        locale="en",
        event="appeal_received",
        idempotency_key=f"appeal-1:appeal_received:{n}:EMAIL",
    )


def _sender(relay: Relay, clock: Clock | None = None) -> EmailSender:
    return EmailSender(
        host="127.0.0.1",
        port=relay.port,
        from_address="Appeals <no-reply@appeals.local>",
        timeout=5,
        monotonic=clock or Clock(),
    )


def test_the_envelope_carries_the_bare_addresses(relay: Relay) -> None:
    sender = _sender(relay)
    sender.send(_message(0))
    assert relay.envelopes == [("no-reply@appeals.local", ["li.wei@example.com"])]
    sender.close()


def test_an_address_beyond_ascii_goes_by_smtputf8() -> None:
    relay = Relay(port=free_port(), smtputf8=True)
    relay.start()
    try:
        sender = _sender(relay)
        message = _message(0)
        sender.send(dataclasses.replace(message, recipient="李伟@example.com", subject="收到"))
        sender.close()
    finally:
        relay.stop()
    assert relay.envelopes == [("no-reply@appeals.local", ["李伟@example.com"])]
    assert relay.subjects == ["收到"]


def test_messages_in_a_row_share_one_connection(relay: Relay) -> None:
    sender = _sender(relay)
    for n in range(3):
        sender.send(_message(n))
    assert relay.subjects == ["message 0", "message 1", "message 2"]
    assert len(set(relay.peers)) == 1
    sender.close()


def test_a_connection_the_relay_dropped_is_replaced_before_the_message(relay: Relay) -> None:
    sender = _sender(relay)
    sender.send(_message(0))
    relay.stop()  # closes the kept connection from the server's side
    relay.start()
    sender.send(_message(1))
    assert relay.subjects == ["message 0", "message 1"]
    assert relay.peers[0] != relay.peers[1]
    sender.close()


def test_a_connection_idle_too_long_is_not_used(relay: Relay) -> None:
    clock = Clock()
    sender = _sender(relay, clock)
    sender.send(_message(0))
    clock.now += sender.idle_seconds + 1
    sender.send(_message(1))
    assert relay.peers[0] != relay.peers[1]
    clock.now += sender.idle_seconds / 2
    sender.send(_message(2))
    assert relay.peers[2] == relay.peers[1]
    sender.close()


def test_threads_sending_at_once_each_deliver_once(relay: Relay) -> None:
    sender = _sender(relay)
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: sender.send(_message(n)), range(40)))
    assert sorted(relay.subjects) == sorted(f"message {n}" for n in range(40))
    assert len(set(relay.peers)) <= 8  # connections are reused, never shared at once
    sender.close()
