"""What a 150 MB JSON body to `POST /appeals` costs the API process (issue 13, item 2).

Starts the API (uvicorn, one process, SQLite, Temporal not needed) on a free port and, for each
case, sends one 150 MB JSON body over a plain socket: without a token, and with a customer's
token; each with a declared Content-Length and chunked. Prints, per case, the answer's status
and code, how much of the body the server took before answering, and the server's resident
memory before and after (VmRSS) and its peak (VmHWM), from /proc (Linux).

    .venv/bin/python bench/body_limits_bench.py                  # this checkout
    .venv/bin/python bench/body_limits_bench.py --source DIR     # another tree (e.g. an older
                                                                 # commit: git archive | tar -x)

Each case runs against a fresh server, so that one case's peak does not hide the next's.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.auth import Role, mint_token  # noqa: E402
from core.settings import Settings  # noqa: E402
from launcher.stack import free_port  # noqa: E402

MB = 1024 * 1024
CHUNK = MB


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


@dataclass
class Result:
    case: str
    status: str
    sent_mb: float
    seconds: float
    rss_before_mb: float
    rss_after_mb: float
    peak_mb: float


def _serve(source: Path, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")},
        "PYTHONPATH": str(source),
        "APPEALS_DATA_DIR": str(data_dir),
        "APPEALS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",  # not needed: nothing gets that far
        "APPEALS_ENVIRONMENT": "development",
    }
    command = [sys.executable, "-m", "uvicorn", "api.app:create_app", "--factory", "--port", str(port)]
    command += ["--log-level", "warning"]
    proc = subprocess.Popen(command, cwd=source, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as probe:
                probe.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if probe.recv(64).startswith(b"HTTP/1.1 200"):
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"the API did not start: {proc.stderr.read().decode() if proc.stderr else ''}")


def _send(port: int, token: str | None, size: int, chunked: bool) -> tuple[str, int]:
    """Sends a JSON body of `size` bytes; (status and code, bytes the server took)."""
    head = b'{"requested_limit_minor": 5, "account_id": "'
    tail = b'"}'
    filler = size - len(head) - len(tail)
    headers = ["POST /appeals HTTP/1.1", "Host: bench", "Content-Type: application/json"]
    if token:
        headers.append(f"Authorization: Bearer {token}")
    headers.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    sent = 0
    with socket.create_connection(("127.0.0.1", port), timeout=120) as conn:
        conn.sendall(("\r\n".join(headers) + "\r\n\r\n").encode())

        def put(data: bytes) -> None:
            nonlocal sent
            conn.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
            sent += len(data)

        try:
            put(head)
            block = b"x" * CHUNK
            while filler > 0:
                piece = block if filler >= CHUNK else block[:filler]
                put(piece)
                filler -= len(piece)
            put(tail)
            if chunked:
                conn.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: the rest is never sent
        try:
            answer = b""
            while b"\r\n\r\n" not in answer or len(answer) < 2000:
                piece = conn.recv(65536)
                if not piece:
                    break
                answer += piece
        except (ConnectionResetError, TimeoutError):
            pass
    status = answer.split(b"\r\n", 1)[0].decode(errors="replace")
    code = ""
    if b"\r\n\r\n" in answer:
        try:
            code = json.loads(answer.split(b"\r\n\r\n", 1)[1].split(b"\r\n0\r\n")[0]).get("code", "")
        except ValueError:
            code = "?"
    return f"{status.removeprefix('HTTP/1.1 ')} {code}".strip(), sent


def run(source: Path, size: int) -> list[Result]:
    token = mint_token(Settings(), role=Role.CUSTOMER, subject="c-bench")
    results: list[Result] = []
    for case, with_token, chunked in (
        ("no token, Content-Length", None, False),
        ("no token, chunked", None, True),
        ("customer token, Content-Length", token, False),
        ("customer token, chunked", token, True),
    ):
        with tempfile.TemporaryDirectory() as data_dir:
            port = free_port()
            server = _serve(source, port, Path(data_dir))
            try:
                before = _status_kb(server.pid, "VmRSS")
                started = time.monotonic()
                status, sent = _send(port, with_token, size, chunked)
                seconds = time.monotonic() - started
                time.sleep(0.5)  # let the server finish with the request before reading its memory
                after, peak = _status_kb(server.pid, "VmRSS"), _status_kb(server.pid, "VmHWM")
            finally:
                server.terminate()
                server.wait(10)
        results.append(Result(case, status, sent / MB, seconds, before / 1024, after / 1024, peak / 1024))
    return results


def main() -> None:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("--source", type=Path, default=ROOT, help="the tree to run the API from")
    parser.add_argument("--mb", type=int, default=150, help="the body's size in MB (default 150)")
    args = parser.parse_args()
    results = run(args.source.resolve(), args.mb * MB)
    print(f"POST /appeals with a {args.mb} MB JSON body; API from {args.source}")
    columns = ("sent MB", "s", "RSS before", "after", "peak", "+peak")
    print(
        f"{'case':34} {'answer':28} "
        + " ".join(f"{c:>{w}}" for c, w in zip(columns, (8, 6, 11, 7, 7, 7), strict=True))
    )
    for r in results:
        print(
            f"{r.case:34} {r.status:28} {r.sent_mb:8.1f} {r.seconds:6.2f} {r.rss_before_mb:9.0f}MB"
            f" {r.rss_after_mb:5.0f}MB {r.peak_mb:5.0f}MB {r.peak_mb - r.rss_before_mb:5.0f}MB"
        )


if __name__ == "__main__":
    main()
