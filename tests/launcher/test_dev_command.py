"""`appeals dev` itself, as a developer runs it (on free ports, its state in a temporary
folder): a worker killed with SIGKILL is reported on the terminal and started again, and
SIGTERM still stops every part and ends the command cleanly."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from launcher.stack import free_port
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


@pytest.fixture
def dev_command(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Terminal]]:
    ports = [free_port() for _ in range(5)]
    args = [sys.executable, "-m", "launcher.cli", "dev", "--no-seed"]
    for option, port in zip(
        ("--api-port", "--temporal-port", "--ui-port", "--s3-port", "--smtp-port"), ports, strict=True
    ):
        args += [option, str(port)]
    proc = subprocess.Popen(
        args,
        cwd=tmp_path,  # no .env of the checkout's
        env={**os.environ, "APPEALS_DATA_DIR": str(tmp_path / ".data"), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    terminal = Terminal(proc)
    try:
        yield proc, terminal
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(patience(60))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_dev_restarts_a_killed_worker_and_stops_everything_on_sigterm(
    dev_command: tuple[subprocess.Popen[str], Terminal], tmp_path: Path
) -> None:
    proc, terminal = dev_command
    terminal.wait_for("Limit-restore appeals is running:", "Open http://localhost:")
    parts = _children(proc.pid)
    assert len(parts) == 5, parts
    worker = next(pid for pid, cmd in parts.items() if cmd.rstrip().endswith("launcher.cli worker"))
    os.kill(worker, signal.SIGKILL)

    log = tmp_path / ".data" / "logs" / "worker.log"
    text = terminal.wait_for("worker is back")
    died = next(line for line in text.splitlines() if "worker died" in line)
    assert f"worker died (exit code -9, killed by SIGKILL); its log: {log}. Restarting it in 1 s." in died
    assert "--- appeals dev: starting worker again" in log.read_text()
    restarted = _children(proc.pid)
    assert worker not in restarted and len(restarted) == 5, restarted

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(patience(60)) == 0, terminal.text
    terminal.wait_for("Stopping ...", "Stopped.")
    assert not [pid for pid in {*parts, *restarted} if _running(pid)]
