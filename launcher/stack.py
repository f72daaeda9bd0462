"""Starting and stopping the local stack's processes; `appeals dev` and the tests share it."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workflows.search_attributes import ALL_KEYS

_SA_TYPES = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "TEXT": "Text", "INT": "Int"}


class StackError(RuntimeError):
    pass


class PortInUse(StackError):
    pass


def check_port_free(host: str, port: int, what: str, setting: str) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise PortInUse(
                f"Port {port} on {host} ({what}) is already in use. Stop whatever holds it, "
                f"or choose another port with {setting}."
            ) from exc


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _binary(name: str) -> str:
    # Prefer the binary installed next to this interpreter (the project's venv).
    local = Path(sys.executable).parent / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if not found:
        raise StackError(f"`{name}` was not found; install the project (pip install -e .).")
    return found


@dataclass
class ManagedProcess:
    name: str
    args: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None  # default: this process's working directory
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(self.env or {})},
            cwd=self.cwd,
            # Own process group: Ctrl-C reaches `appeals dev` only, which stops the parts in order.
            start_new_session=True,
        )
        log.close()
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def exit_code(self) -> int | None:
        """How it ended (negative: the signal that killed it); None while it runs or before it
        ever started."""
        return None if self.process is None else self.process.poll()

    def kill_leftovers(self) -> None:
        """After it ended: kills whatever it left running in its process group (a child it
        had forked), so a restart finds its port free and nothing runs twice."""
        if self.process is None or self.process.poll() is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)

    def tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_until(check: Callable[[], bool], proc: ManagedProcess, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StackError(f"{proc.name} exited while starting; its log ({proc.log_path}):\n{proc.tail()}")
        try:
            if check():
                return
        except Exception:  # not up yet: connection refused, reset, 5xx, ...
            pass
        time.sleep(0.2)
    raise StackError(
        f"{proc.name} did not become healthy in {timeout:.0f}s; log ({proc.log_path}):\n{proc.tail()}"
    )


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return 200 <= response.status < 500
    except urllib.error.HTTPError as exc:
        return exc.code < 500


def tcp_open(host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=1):
        return True


def temporal_dev_server(
    *,
    host: str,
    port: int,
    ui_port: int,
    db_file: Path | None,
    log_path: Path,
    namespace: str = "default",
    headless: bool = False,
    codec_endpoint: str | None = None,
    metrics_port: int | None = None,
) -> ManagedProcess:
    args = [
        _binary("temporal"),
        "server",
        "start-dev",
        "--ip",
        host,
        "--port",
        str(port),
        "--ui-port",
        str(ui_port),
        "--namespace",
        namespace,
        "--log-level",
        "warn",
        "--ui-disable-news-fetch",
    ]
    if metrics_port is not None:  # the server's own Prometheus metrics (bench/temporal_bench.py)
        args += ["--metrics-port", str(metrics_port)]
    if headless:
        args.append("--headless")
    elif codec_endpoint:
        # The Web UI decodes the payloads it shows there (launcher/codec_server.py).
        args += ["--ui-codec-endpoint", codec_endpoint]
    if db_file is not None:
        db_file.parent.mkdir(parents=True, exist_ok=True)
        args += [
            "--db-filename",
            str(db_file),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--sqlite-pragma",
            "synchronous=normal",
        ]
    for key in ALL_KEYS:
        args += ["--search-attribute", f"{key.name}={_SA_TYPES[key.indexed_value_type.name]}"]
    return ManagedProcess("Temporal dev server", args, log_path)


def s3_server(*, host: str, port: int, log_path: Path) -> ManagedProcess:
    return ManagedProcess("S3 server (moto)", [_binary("moto_server"), "-H", host, "-p", str(port)], log_path)


def python_module(name: str, argv: Sequence[str], *, env: dict[str, str], log_path: Path) -> ManagedProcess:
    return ManagedProcess(name, [sys.executable, "-m", "launcher.cli", *argv], log_path, env=env)
