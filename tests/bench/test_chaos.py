"""The chaos harness (bench/chaos.py, issue 12 item 7) in the suite: a short run of about 30
appeals through the HTTP API while the worker is killed and then the Temporal dev server, with
every invariant checked; and its S3 proxy's faults on their own."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.chaos import ChaosRun, Config, plan, run_table
from bench.chaos_checks import Findings, check_notices
from bench.chaos_proxy import FaultyProxy
from core.db.case_tables import Notification
from launcher.stack import free_port
from tests.eventually import eventually_sync, patience


@pytest.mark.e2e
def test_appeals_come_through_a_worker_kill_and_a_server_kill(tmp_path: Path) -> None:
    config = Config(
        fault="worker-kill+server-kill",
        appeals=30,
        rate=3.0,
        fault_after=0.3,
        fault_every=3.0,
        settle_timeout=patience(240),
        appeal_timeout=patience(240),
        # The PDF check's 5 s child limit is wall-clock: on a machine busy with other test runs a
        # valid file could be refused as too complex, which is not what this test is about.
        pdf_timeout=patience(30),
        data_dir=tmp_path,
    )
    report = ChaosRun(config, log=lambda _line: None).run()
    table = run_table(report)
    assert not report.failures(), table
    findings = report.findings
    assert findings is not None
    assert findings.accepted == findings.appeals == 30, table
    # Both faults happened and both parts came back.
    assert [i.step.target for i in report.injections if i.step] == ["worker-1", "temporal"], table
    assert all(i.restored_at is not None for i in report.injections), table
    # The load went down every path: automatic approval and decline, ineligible, reviewed.
    assert {"CLOSED", "AUTO_DECLINED", "INELIGIBLE"} <= set(findings.statuses), table
    assert sum(report.desk_decisions.values()) > 0, table
    assert findings.emails > 0 and findings.sms > 0, table


def test_fault_plans() -> None:
    assert plan(Config(fault="none")) == []
    assert [s.target for s in plan(Config(fault="worker-kill-3"))] == ["worker-1"] * 3
    assert [s.action for s in plan(Config(fault="worker-kill+server-term"))] == ["kill", "term"]
    with pytest.raises(ValueError, match="needs --db postgres"):
        plan(Config(fault="db-restart"))
    assert [s.action for s in plan(Config(fault="db-restart", db="postgres"))] == ["db-outage"]
    assert plan(Config(fault="machine-kill"))[0].targets == ["worker-1", "api-1"]
    with pytest.raises(ValueError, match="unknown fault"):
        plan(Config(fault="worker-kil"))


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(1024):
            self.request.sendall(data)


@pytest.fixture
def proxy() -> Iterator[FaultyProxy]:
    upstream = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Echo)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    faulty = FaultyProxy(
        host="127.0.0.1",
        port=free_port(),
        upstream_host="127.0.0.1",
        upstream_port=upstream.server_address[1],
    )
    faulty.start()
    try:
        yield faulty
    finally:
        faulty.stop()
        upstream.shutdown()
        upstream.server_close()


def _echo(port: int, payload: bytes, timeout: float = 5.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        return sock.recv(1024)


def test_the_s3_proxy_refuses_hangs_and_heals(proxy: FaultyProxy) -> None:
    assert _echo(proxy.port, b"one") == b"one"

    proxy.refuse()
    with pytest.raises(ConnectionRefusedError):
        _echo(proxy.port, b"two")
    proxy.heal()
    assert (
        eventually_sync(lambda: _echo(proxy.port, b"three"), what="the proxy to pass data again") == b"three"
    )

    # Hanging: the connection is accepted, nothing comes back; once healed, what was held arrives.
    proxy.hang()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=patience(5)) as sock:
        sock.sendall(b"held")
        sock.settimeout(0.5)
        with pytest.raises(TimeoutError):
            sock.recv(1024)
        proxy.heal()
        sock.settimeout(patience(5))
        assert sock.recv(1024) == b"held"


def _eml(directory: Path, name: str, message_id: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(f"Message-ID: {message_id}\r\nSubject: s\r\n\r\nbody\r\n".encode())


def test_notice_checks_find_copies_at_the_sinks_and_notices_that_never_arrived(tmp_path: Path) -> None:
    mail, sms = tmp_path / "mail", tmp_path / "sms" / "messages.jsonl"
    _eml(mail, "1.eml", "<a@appeals.local>")
    _eml(mail, "2.eml", "<a@appeals.local>")  # the same notice stored twice
    _eml(mail, "3.eml", "<b@appeals.local>")
    sms.parent.mkdir(parents=True)
    sms.write_text(
        "\n".join(
            json.dumps({"idempotency_key": key, "message_id": f"rec-{key}"}) for key in ("k1", "k1", "k2")
        )
        + "\n"
    )

    def row(key: str, channel: str, status: str = "SENT", message_id: str | None = None) -> Notification:
        return Notification(
            appeal_id="a",
            customer_id="c",
            channel=channel,
            event="e",
            locale="en",
            idempotency_key=key,
            subject="s",
            body="b",
            status=status,
            message_id=message_id,
            attempts=2 if key == "k1" else 1,
        )

    findings = Findings()
    check_notices(
        findings,
        [
            row("e-a", "EMAIL", message_id="<a@appeals.local>"),
            row("e-c", "EMAIL", message_id="<c@appeals.local>"),  # SENT, but not at the sink
            row("k1", "SMS"),
            row("k3", "SMS"),  # SENT, not recorded
            row("k4", "SMS", status="SENDING"),
        ],
        mail,
        sms,
    )
    assert findings.duplicate_emails == ["<a@appeals.local> x2"]
    assert findings.duplicate_sms == ["k1 x2"]
    assert findings.notices_missing == ["e-c (email <c@appeals.local>)", "k3 (sms)"]
    assert findings.notices_undelivered == ["k4 SENDING (attempts 1)"]
    assert (findings.emails, findings.sms, findings.resent_notices) == (3, 3, 1)
    assert any(f.startswith("emails twice") for f in findings.failures())


def test_the_proxy_can_lose_the_answers(proxy: FaultyProxy) -> None:
    proxy.lose_answers()
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=patience(5)) as sock:
        sock.sendall(b"done, but never heard")
        try:
            heard = sock.recv(1024)
        except ConnectionResetError:
            heard = b""
        assert heard == b""  # reset as the answer came back: nothing arrives
    proxy.heal()
    assert eventually_sync(lambda: _echo(proxy.port, b"heard"), what="answers to arrive again") == b"heard"
