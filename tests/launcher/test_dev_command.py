"""`appeals dev` itself, as a developer runs it (on free ports, its state in a temporary
folder): a worker killed with SIGKILL is reported on the terminal and started again, and
SIGTERM still stops every part and ends the command cleanly. Its codec server is wired into the
Web UI, decodes with the stack's own key for staff only, and is started again when it dies."""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from temporalio.api.common.v1 import Payloads
from temporalio.contrib.pydantic import pydantic_data_converter

from core.auth import Role, mint_token
from core.db import make_engine
from core.db.migrate import current_revision, head_revision
from core.settings import Settings
from gateway.codec import AesGcmCodec, PayloadKeys, dev_keys, is_encrypted
from launcher.stack import free_port, http_ok
from tests.eventually import eventually_sync, patience

pytestmark = pytest.mark.e2e


class Terminal:
    """What the command printed so far, stdout and stderr together, read by a thread."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self._reader = threading.Thread(target=self._read, args=(proc.stdout,), daemon=True)
        self._reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, *needles: str) -> str:
        return eventually_sync(
            lambda: self.text,
            lambda text: all(n in text for n in needles),
            what=f"`appeals dev` to print {needles}",
            timeout=120,
        )


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is `pid`, with their command lines (Linux /proc)."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # The command name in parentheses may hold spaces: the parent id follows its ")".
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


OPTIONS = ("--api-port", "--temporal-port", "--ui-port", "--s3-port", "--smtp-port", "--codec-port")


@pytest.fixture
def dev_command(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Terminal, dict[str, int]]]:
    ports = {option: free_port() for option in (*OPTIONS, "sdk metrics", "business metrics")}
    args = [sys.executable, "-m", "launcher.cli", "dev", "--no-seed"]
    for option in OPTIONS:
        args += [option, str(ports[option])]
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,  # no .env of the checkout's
        env={
            **os.environ,
            "APPEALS_DATA_DIR": str(tmp_path / ".data"),
            "PYTHONUNBUFFERED": "1",
            # The worker's metrics endpoints, on ports nobody uses too.
            "APPEALS_WORKER_METRICS_PORT": str(ports["sdk metrics"]),
            "APPEALS_BUSINESS_METRICS_PORT": str(ports["business metrics"]),
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    terminal = Terminal(proc)
    try:
        yield proc, terminal, ports
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(patience(60))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_dev_restarts_a_killed_worker_and_stops_everything_on_sigterm(
    dev_command: tuple[subprocess.Popen[str], Terminal, dict[str, int]], tmp_path: Path
) -> None:
    proc, terminal, ports = dev_command
    terminal.wait_for("Limit-restore appeals is running:", "Open http://localhost:")
    parts = _children(proc.pid)
    assert len(parts) == 6, parts
    # It migrated the database before the API and worker (which only check) started.
    database = make_engine(f"sqlite:///{tmp_path / '.data' / 'appeals.db'}")
    try:
        assert current_revision(database) == head_revision()
    finally:
        database.dispose()
    _codec_server_serves_the_web_ui(proc, terminal, ports, tmp_path)
    parts = _children(proc.pid)
    worker = next(pid for pid, cmd in parts.items() if cmd.rstrip().endswith("launcher.cli worker"))
    os.kill(worker, signal.SIGKILL)

    log = tmp_path / ".data" / "logs" / "worker.log"
    text = terminal.wait_for("worker is back")
    died = next(line for line in text.splitlines() if "worker died" in line)
    assert f"worker died (exit code -9, killed by SIGKILL); its log: {log}. Restarting it in 1 s." in died
    assert "--- appeals dev: starting worker again" in log.read_text()
    restarted = _children(proc.pid)
    assert worker not in restarted and len(restarted) == 6, restarted
    # The new worker serves its metrics on the ports the killed one held.
    for url in (f"http://127.0.0.1:{ports[name]}/metrics" for name in ("sdk metrics", "business metrics")):
        assert url in text  # the banner names it
        eventually_sync(partial(http_ok, url), bool, what=f"the restarted worker to serve {url}")

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(patience(60)) == 0, terminal.text
    terminal.wait_for("Stopping ...", "Stopped.")
    assert not [pid for pid in {*parts, *restarted} if _running(pid)]


def _codec_server_serves_the_web_ui(
    proc: subprocess.Popen[str], terminal: Terminal, ports: dict[str, int], tmp_path: Path
) -> None:
    codec_url = f"http://localhost:{ports['--codec-port']}"
    assert f"Codec server   {codec_url}" in terminal.text
    # The stack's key, made at its start and kept for the next.
    key_file = tmp_path / ".data" / "payload-keys.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_id, keys = dev_keys(key_file)
    # The Web UI decodes with it: the dev server was started with the codec endpoint.
    ui = httpx.get(f"http://127.0.0.1:{ports['--ui-port']}/api/v1/settings", timeout=10).json()
    assert ui["Codec"]["Endpoint"] == codec_url, ui

    plain = pydantic_data_converter.payload_converter.to_payloads([{"account_id": "acct-1002"}])
    body = json_format.MessageToJson(Payloads(payloads=plain))
    sent = {"Content-Type": "application/json", "Origin": f"http://localhost:{ports['--ui-port']}"}
    staff = {**sent, "Authorization": f"Bearer {mint_token(Settings(), role=Role.REVIEWER, subject='r-1')}"}
    customer = {
        **sent,
        "Authorization": f"Bearer {mint_token(Settings(), role=Role.CUSTOMER, subject='c-1')}",
    }
    with httpx.Client(base_url=f"http://127.0.0.1:{ports['--codec-port']}", timeout=10) as http:
        encoded = http.post("/encode", content=body, headers=staff)
        assert encoded.status_code == 200, encoded.text
        (sealed,) = json_format.Parse(encoded.content, Payloads()).payloads
        assert is_encrypted(sealed) and sealed.metadata["encryption-key-id"] == key_id.encode()
        local = AesGcmCodec(PayloadKeys({key_id: base64.b64decode(keys[key_id])}, key_id))
        assert local.decode_one(sealed) == plain[0]  # the server encrypts with the stack's key
        decoded = http.post("/decode", content=encoded.content, headers=staff)
        assert json.loads(json_format.Parse(decoded.content, Payloads()).payloads[0].data) == {
            "account_id": "acct-1002"
        }
        assert http.post("/decode", content=encoded.content, headers=customer).status_code == 403
        assert http.post("/decode", content=encoded.content, headers=sent).status_code == 401

    # A part like the others: killed, it is reported and started again.
    codec = next(pid for pid, cmd in _children(proc.pid).items() if "launcher.cli codec-server" in cmd)
    os.kill(codec, signal.SIGKILL)
    terminal.wait_for("codec server is back")
