"""Inspect an untrusted PDF in a resource-limited child process.

The parser never runs in the caller's process: a crafted PDF (a decompression bomb, a page tree
with millions of entries, an endless content stream) can only exhaust the child, which the OS
caps (RLIMIT_AS, RLIMIT_CPU) and this module kills at the wall-clock deadline. The child is
started with posix_spawn and reaped with wait4, which is safe from any thread (no fork of a
multi-threaded parent, no preexec_fn) and yields that one child's peak RSS.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import select
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from core.documents.pdf_dates import parse_pdf_date
from core.documents.pdf_flags import red_flags
from core.documents.pdf_report import PdfFailure, PdfReport

__all__ = [
    "DEFAULT_LIMITS",
    "PdfFailure",
    "PdfLimits",
    "PdfReport",
    "count_incremental_updates",
    "inspect_pdf",
    "red_flags",
]

MIB: Final = 1024 * 1024
DEFAULT_LIMITS_TIMEOUT: Final = 5.0
_CHILD_SCRIPT: Final = Path(__file__).with_name("_pdf_child.py")
_STARTXREF: Final = re.compile(rb"startxref\s+\d+\s*%%EOF")
_LINEARIZED: Final = re.compile(rb"/Linearized\b")
_STDERR_TAIL: Final = 2000


@dataclass(frozen=True, slots=True)
class PdfLimits:
    memory_bytes: int = 256 * MIB
    timeout_seconds: float = DEFAULT_LIMITS_TIMEOUT
    # Enough for a long statement; a cap so a text bomb cannot balloon the result.
    max_text_chars: int = 2_000_000
    max_pages: int = 500
    # The wall-clock deadline as a multiple of timeout_seconds (see `wall_seconds`).
    wall_factor: float = 3.0

    @property
    def cpu_seconds(self) -> int:
        """The file's budget: a parse that needs more CPU than this is too complex (RLIMIT_CPU)."""
        return math.ceil(self.timeout_seconds) + 1

    @property
    def wall_seconds(self) -> float:
        """The wall-clock deadline, for a child that makes no progress at all. On a busy machine
        a child gets a fraction of a core, so wall time is no measure of a file: a child killed
        here before spending its CPU budget gives no verdict (PdfFailure.INTERRUPTED)."""
        return self.timeout_seconds * self.wall_factor


DEFAULT_LIMITS: Final = PdfLimits()


def inspect_pdf(source: bytes | Path, limits: PdfLimits = DEFAULT_LIMITS) -> PdfReport:
    """Parse `source` (PDF bytes, or the path of a PDF file) in a child and report findings.

    Blocking; call it from a thread (e.g. a sync Temporal activity), never from an event loop.
    """
    data = source.read_bytes() if isinstance(source, Path) else bytes(source)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pdf-inspect-") as tmp:
        work = Path(tmp)
        # Always a private copy: the child must parse exactly the bytes counted below.
        in_path = work / "input.pdf"
        in_path.write_bytes(data)
        outcome = _run_child(in_path, work, limits)
    elapsed = time.monotonic() - started
    return _build_report(outcome, count_incremental_updates(data), elapsed)


def count_incremental_updates(data: bytes) -> int:
    """Revisions appended after the original save, counted from raw bytes.

    Each save ends with `startxref <offset> %%EOF`. A linearized ("fast web view") file has one
    extra such section by construction, so it is not counted as an update.
    """
    sections = len(_STARTXREF.findall(data))
    if sections >= 2 and _LINEARIZED.search(data[:1024]):
        sections -= 1
    return max(0, sections - 1)


@dataclass(frozen=True, slots=True)
class _ChildOutcome:
    status: int | None  # wait status; None when the child could not be reaped
    peak_rss_bytes: int | None
    timed_out: bool
    result: dict[str, Any]
    stderr_tail: str
    cpu_seconds: float | None = None  # what the child used, from wait4's rusage
    cpu_budget: float = DEFAULT_LIMITS_TIMEOUT


def _run_child(in_path: Path, work: Path, limits: PdfLimits) -> _ChildOutcome:
    result_path = work / "result.json"
    stderr_path = work / "stderr.txt"
    argv = [
        sys.executable,
        "-I",  # no PYTHON* variables, no user site, no cwd on sys.path
        str(_CHILD_SCRIPT),
        str(in_path),
        str(result_path),
        str(limits.memory_bytes),
        str(limits.cpu_seconds),
        str(limits.max_text_chars),
        str(limits.max_pages),
    ]
    write_flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    pid = os.posix_spawn(
        sys.executable,
        argv,
        # The child handles hostile input: it gets none of our secrets from the environment.
        {"LC_ALL": "C.UTF-8", "PATH": os.defpath},
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(stderr_path), write_flags, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
    )
    watcher = _PeakWatcher(pid)
    try:
        status, rusage, timed_out = _wait(pid, limits.wall_seconds, watcher)
    except BaseException:  # e.g. KeyboardInterrupt: leave no orphan parsing hostile input
        _kill(pid, None)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        raise
    result = _read_result(result_path, limits)
    if sys.platform == "darwin":
        peak = rusage.ru_maxrss if rusage is not None else None
    else:
        # The child's own figure when it finished; what we saw while it ran when it was killed.
        reported = result.get("peak_rss_bytes")
        seen = [v for v in (watcher.peak, reported if isinstance(reported, int) else None) if v]
        peak = max(seen) if seen else None
    return _ChildOutcome(
        status=status,
        peak_rss_bytes=peak,
        timed_out=timed_out,
        result=result,
        stderr_tail=_read_tail(stderr_path),
        cpu_seconds=(rusage.ru_utime + rusage.ru_stime) if rusage is not None else None,
        cpu_budget=limits.timeout_seconds,
    )


class _PeakWatcher:
    """Samples the child's VmHWM (per process image, so not inflated by the spawn) while it runs."""

    def __init__(self, pid: int) -> None:
        self._path = f"/proc/{pid}/status"
        self.peak: int | None = None

    def sample(self) -> None:
        try:
            with open(self._path, encoding="ascii") as fh:
                for line in fh:
                    if line.startswith("VmHWM:"):
                        value = int(line.split()[1]) * 1024
                        self.peak = max(self.peak or 0, value)
                        return
        except (OSError, ValueError):
            return


def _wait(pid: int, timeout: float, watcher: _PeakWatcher) -> tuple[int | None, Any, bool]:
    """Wait for the child until `timeout`, then SIGKILL it. Returns (status, rusage, timed_out)."""
    deadline = time.monotonic() + timeout
    pidfd = _open_pidfd(pid)
    try:
        while True:
            try:
                reaped, status, rusage = os.wait4(pid, os.WNOHANG)
            except ChildProcessError:  # someone else reaped it (a stray waitpid(-1))
                return None, None, False
            if reaped == pid:
                return status, rusage, False
            watcher.sample()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if pidfd is not None:
                # poll, not select: a busy worker may hold fds above select's FD_SETSIZE.
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)  # readable once the child exits
                poller.poll(min(remaining, 0.02) * 1000)  # wake to sample memory
            else:
                time.sleep(min(0.01, remaining))
        _kill(pid, pidfd)
    finally:
        if pidfd is not None:
            os.close(pidfd)
    try:
        _, status, rusage = os.wait4(pid, 0)
    except ChildProcessError:
        return None, None, True
    return status, rusage, True


def _open_pidfd(pid: int) -> int | None:
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, or a kernel older than 5.3
        return None


def _kill(pid: int, pidfd: int | None) -> None:
    # Through the pidfd when we have one: it cannot hit a recycled pid.
    with contextlib.suppress(ProcessLookupError):
        if pidfd is not None and hasattr(signal, "pidfd_send_signal"):
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)


def _read_result(path: Path, limits: PdfLimits) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            raw = fh.read(limits.max_text_chars * 6 + MIB)
        loaded = json.loads(raw)
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _read_tail(path: Path) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - _STDERR_TAIL))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


def _build_report(outcome: _ChildOutcome, updates: int, elapsed: float) -> PdfReport:
    r = outcome.result
    failure, detail = _verdict(outcome)
    return PdfReport(
        ok=failure is None,
        failure=failure,
        failure_detail=detail,
        page_count=_opt_int(r.get("page_count")),
        producer=_opt_str(r.get("producer")),
        creator=_opt_str(r.get("creator")),
        xmp_producer=_opt_str(r.get("xmp_producer")),
        xmp_creator_tool=_opt_str(r.get("xmp_creator_tool")),
        creation_date=parse_pdf_date(_opt_str(r.get("creation_date_raw"))),
        mod_date=parse_pdf_date(_opt_str(r.get("mod_date_raw"))),
        encrypted=r.get("encrypted") is True,
        has_javascript=r.get("has_javascript") is True,
        has_launch_action=r.get("has_launch_action") is True,
        has_embedded_files=r.get("has_embedded_files") is True,
        has_signature=r.get("has_signature") is True,
        incremental_update_count=updates,
        text=_opt_str(r.get("text")) or "",
        text_truncated=r.get("text_truncated") is True,
        child_peak_rss_bytes=outcome.peak_rss_bytes,
        elapsed_seconds=elapsed,
    )


def _verdict(outcome: _ChildOutcome) -> tuple[PdfFailure | None, str | None]:
    r, status = outcome.result, outcome.status
    if outcome.timed_out:
        used = outcome.cpu_seconds
        if used is not None and used < outcome.cpu_budget:
            return PdfFailure.INTERRUPTED, f"wall-clock deadline after {used:.1f} s of CPU; child killed"
        return PdfFailure.TIMEOUT, "wall-clock timeout; child killed"
    if status is not None and os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return PdfFailure.TIMEOUT, "CPU time limit"
        if "MemoryError" in outcome.stderr_tail or "out of memory" in outcome.stderr_tail:
            return PdfFailure.MEMORY_LIMIT, f"child died of signal {sig} out of memory"
        return PdfFailure.MALFORMED, f"child died of signal {sig}"
    # status is None when a stray waitpid(-1) elsewhere reaped the child: trust its result then.
    if r.get("status") == "ok" and (status is None or os.waitstatus_to_exitcode(status) == 0):
        return None, None
    if r.get("status") == "failed" and r.get("failure") in PdfFailure.__members__:
        return PdfFailure(r["failure"]), _opt_str(r.get("detail"))
    tail = outcome.stderr_tail.strip().splitlines()[-1:] or ["no result"]
    return PdfFailure.MALFORMED, f"child ended abnormally: {tail[0][:300]}"


def _opt_str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _opt_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
