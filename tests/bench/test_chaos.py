"""The chaos harness (bench/chaos.py, issue 12 item 7) in the suite: a short run of about 30
appeals through the HTTP API while the worker is killed and then the Temporal dev server, with
every invariant checked; and its S3 proxy's faults on their own."""

from __future__ import annotations

import socket
import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.chaos import ChaosRun, Config, plan, run_table
from bench.chaos_proxy import FaultyProxy
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
