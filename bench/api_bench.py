"""The API's hot path through the real server: CPU per request and latency with 10,000 appeals
and 10,000 open review tasks, on SQLite and on PostgreSQL.

    .venv/bin/python bench/api_bench.py [--appeals 10000] [--seconds 2] [--rounds 3]
                                        [--db sqlite --db postgresql] [--workers 1]

For each database: a fresh store (a temp SQLite file; a private PostgreSQL schema, dropped at
the end) is filled as bench/review_queue_bench.py fills it (per appeal: a customer, a frozen
account, a PENDING_REVIEW appeal with two audit events, one OPEN review task), and every appeal
gets the notices such an appeal has had: "received" in-app, by email (with its HTML part) and
by SMS, and the reviewer's task-assigned email. 50 appeals also get a fuller case: two checklist
items, two verified documents and eight more audit events.

The API then runs as in production: uvicorn in a process of its own on the app factory
(`api.app:create_app`, settings from the environment; Temporal and S3 point at closed ports and
are never called), one worker process unless `--workers` says otherwise, logging (to a file)
as that checkout's `appeals api` does: with the checkout's own `core.logs.logging_config` (JSON
lines, the app's line per request from api/request_log.py, uvicorn's access line off) where
`appeals api` uses it (launcher/api_server.py), else uvicorn's defaults with its access line on,
as `appeals api` ran before. A client in this process (asyncio, raw HTTP/1.1 on keep-alive
connections, so it costs the server nothing extra) drives three endpoints:

- floor: `GET /health/live`, a route with no I/O (the bench adds one at that path to an app
  that does not have it, so that runs before and after the liveness check compare);
- appeal: `GET /appeals/{id}` as the appeal's customer, round-robin over the 50 fuller cases,
  each customer with a token of their own;
- queue: `GET /review-tasks` as a reviewer: 50-row pages of the default queue (OPEN, most
  urgent first) at 20 positions spread over it (keyset cursors), with the total count.

at concurrency 1 and 8 (connections, each sending its next request when the last is answered),
in rounds that alternate the endpoints so all of them see the same machine. CPU per request is
the user + system CPU of the server's processes (/proc) over a cell's requests: what the server
spends, not what the client waits. Printed per database: p50/p99 latency, requests per second,
CPU per request and the ratios to the floor, and the load average at the start and the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib.util import find_spec
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sqlalchemy import insert, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel, col, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.review_queue_bench import PG_URL, fill  # noqa: E402
from core.appeals.audit import append_event  # noqa: E402
from core.auth import Role, mint_token  # noqa: E402
from core.db import make_engine, session_scope  # noqa: E402
from core.db.case_tables import Appeal, ChecklistState, DocumentState  # noqa: E402
from core.db.migrate import upgrade  # noqa: E402
from core.settings import Environment, Settings  # noqa: E402
from core.status import AppealStatus  # noqa: E402
from launcher.stack import free_port  # noqa: E402

FLOOR_PATH = "/health/live"
FULL_CASES = 50
QUEUE_POSITIONS = 20
CHUNK = 5_000


# --- the app the server runs -------------------------------------------------------------------


def app_factory() -> Any:
    """`api.app:create_app` as `appeals api` serves it; a no-I/O route at FLOOR_PATH is added
    when the app has none (the code before the liveness check)."""
    from fastapi.responses import JSONResponse

    from api.app import create_app

    app = create_app()
    if not any(getattr(route, "path", None) == FLOOR_PATH for route in _all_routes(app.routes)):

        @app.get(FLOOR_PATH, include_in_schema=False)
        async def _floor() -> JSONResponse:
            return JSONResponse({"status": "ok"})

        app.state.bench_floor = "added by the bench"
    return app


def _all_routes(routes: list[Any]) -> Iterator[Any]:
    for route in routes:
        yield route
        yield from _all_routes(getattr(route, "routes", None) or [])


# --- the data ----------------------------------------------------------------------------------


def _notices(appeal_id: str, customer_id: str, at: datetime) -> list[dict[str, Any]]:
    html = (
        "<html><body>" + "<p>Your appeal has been received and is being reviewed.</p>" * 40 + "</body></html>"
    )
    rows = []
    for channel, recipient, body_html in (
        ("IN_APP", None, None),
        ("EMAIL", f"{customer_id}@example.com", html),
        ("SMS", "+8613800000000", None),
    ):
        rows.append(
            {
                "appeal_id": appeal_id,
                "customer_id": customer_id,
                "audience": "customer",
                "channel": channel,
                "event": "appeal_received",
                "locale": "zh-CN",
                "idempotency_key": f"{appeal_id}:appeal_received:1:{channel}",
                "subject": "我们已收到您的申诉",
                "body": "我们已收到您恢复额度的申诉，正在处理。" * 6,
                "status": "SENT",
                "created_at": at,
                "recipient": recipient,
                "body_html": body_html,
                "attempts": 1,
                "sent_at": at,
            }
        )
    rows.append(
        {
            "appeal_id": appeal_id,
            "customer_id": "bench-r-1",
            "audience": "staff",
            "channel": "EMAIL",
            "event": "task_assigned",
            "locale": "en",
            "idempotency_key": f"{appeal_id}:task_assigned:bench",
            "subject": "A review task is assigned to you",
            "body": "Appeal waiting for review. " * 10,
            "status": "SENT",
            "created_at": at + timedelta(seconds=5),
            "recipient": "reviewer@example.com",
            "body_html": html,
            "attempts": 1,
            "sent_at": at + timedelta(seconds=5),
        }
    )
    return rows


def _full_case(session: Any, appeal_id: str, customer_id: str, at: datetime) -> None:
    tables = SQLModel.metadata.tables
    documents, items = [], []
    for doc_type, name, declared, sniffed in (
        ("BANK_STATEMENT", "statement.csv", "text/csv", "CSV"),
        ("CREDIT_REPORT", "credit-report.pdf", "application/pdf", "PDF"),
    ):
        doc_id = str(uuid.uuid4())
        documents.append(
            {
                "id": doc_id,
                "appeal_id": appeal_id,
                "customer_id": customer_id,
                "doc_type": doc_type,
                "s3_key": f"appeals/{appeal_id}/{doc_id}",
                "filename": name,
                "declared_content_type": declared,
                "size_bytes": 40_000,
                "sha256": uuid.uuid4().hex * 2,
                "sniffed_type": sniffed,
                "state": DocumentState.ACCEPTED,
                "flags": [],
                "upload_method": "multipart",
                "created_at": at,
                "verified_at": at,
            }
        )
        items.append(
            {
                "appeal_id": appeal_id,
                "doc_type": doc_type,
                "required": True,
                "reasons": ["always"],
                "min_full_months": 3 if doc_type == "BANK_STATEMENT" else None,
                "state": ChecklistState.ACCEPTED,
                "document_id": doc_id,
                "updated_at": at,
            }
        )
    session.execute(insert(tables["document"]), documents)
    session.execute(insert(tables["checklist_item"]), items)
    steps: list[tuple[str, str, AppealStatus | None, AppealStatus | None, dict[str, Any]]] = [
        ("workflow", "status_changed", AppealStatus.SUBMITTED, AppealStatus.AWAITING_DOCUMENTS, {}),
        (f"customer:{customer_id}", "document_uploaded", None, None, {"document_id": documents[0]["id"]}),
        ("workflow", "document_verified", None, None, {"document_id": documents[0]["id"]}),
        (f"customer:{customer_id}", "document_uploaded", None, None, {"document_id": documents[1]["id"]}),
        ("workflow", "document_verified", None, None, {"document_id": documents[1]["id"]}),
        ("workflow", "status_changed", AppealStatus.AWAITING_DOCUMENTS, AppealStatus.CHECKING, {}),
        ("workflow", "assessed", None, None, {"score": 612, "risk_tier": "MEDIUM"}),
        ("workflow", "task_created", None, None, {"queue": "review"}),
    ]
    for step, (actor, kind, before, after, details) in enumerate(steps, start=1):
        append_event(
            session,
            appeal_id=appeal_id,
            at=at + timedelta(seconds=10 + step),
            actor=actor,
            kind=kind,
            from_status=before,
            to_status=after,
            details=details,
        )


@dataclass
class Seeded:
    full_cases: list[tuple[str, str]]  # (appeal id, customer id)
    seconds: float


def seed(engine: Engine, appeals: int, rng_seed: int) -> Seeded:
    started = time.perf_counter()
    fill(engine, appeals, rng_seed)
    with session_scope(engine, read_only=True) as session:
        every = session.exec(
            select(Appeal.id, Appeal.customer_id, Appeal.created_at).order_by(col(Appeal.id))
        ).all()
    table = SQLModel.metadata.tables["notification"]
    for start in range(0, len(every), CHUNK):
        rows = [row for a in every[start : start + CHUNK] for row in _notices(a[0], a[1], a[2])]
        with session_scope(engine) as session:
            session.execute(insert(table), rows)
    full = [(a[0], a[1]) for a in every[:FULL_CASES]]
    with session_scope(engine) as session:
        for (appeal_id, customer_id), row in zip(full, every, strict=False):
            _full_case(session, appeal_id, customer_id, row[2])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")
    return Seeded(full, time.perf_counter() - started)


@contextmanager
def database(kind: str, pg_url: str, tmp: Path) -> Iterator[tuple[Engine, str, str]]:
    """(engine, the URL the server connects with, description)."""
    if kind == "sqlite":
        url = f"sqlite:///{tmp / 'appeals.db'}"
        engine = make_engine(url)
        try:
            yield engine, url, f"SQLite file {tmp / 'appeals.db'}"
        finally:
            engine.dispose()
        return
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(pg_url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine = make_engine(pg_url, connect_args={"options": f"-csearch_path={schema}"})
    separator = "&" if "?" in pg_url else "?"
    server_url = f"{pg_url}{separator}options={quote(f'-csearch_path={schema}')}"
    try:
        yield engine, server_url, f"PostgreSQL schema {schema}"
    finally:
        engine.dispose()
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- the server --------------------------------------------------------------------------------


class Server:
    """uvicorn on the app factory, in a process of its own."""

    def __init__(
        self, database_url: str, data_dir: Path, workers: int, http: str, loop: str, code: Path = ROOT
    ) -> None:
        self.port, self.code, self.floor_note = free_port(), code, ""
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = data_dir / "api.log"
        env = {k: v for k, v in os.environ.items() if not k.startswith("APPEALS_")}
        env.update(
            {
                "APPEALS_ENVIRONMENT": "development",
                "APPEALS_DATA_DIR": str(data_dir),
                "APPEALS_DATABASE_URL": database_url,
                # Nothing listens there: the measured endpoints never call Temporal or S3.
                "APPEALS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
                "APPEALS_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
                # Ahead of the editable install: the app is imported from `code`.
                "PYTHONPATH": str(code),
            }
        )
        self.settings = Settings(_env_file=None, environment=Environment.DEVELOPMENT)  # type: ignore[call-arg]
        # The options that checkout's `appeals api` gives uvicorn (log level info).
        log_config = production_log_config(code, data_dir)
        self.logging = "the checkout's logging_config" if log_config else "uvicorn's, access line on"
        logging_options = ["--log-config", str(log_config), "--no-access-log"] if log_config else []
        command = [
            sys.executable, "-m", "uvicorn", "bench.api_bench:app_factory", "--factory",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers),
            "--log-level", "info", "--proxy-headers", "--http", http, "--loop", loop,
            *logging_options,
        ]  # fmt: skip
        self.log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, env=env, cwd=code, stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped:\n{self.log_path.read_text()[-3000:]}")
            try:
                status, _ = asyncio.run(_one_get(self.port, FLOOR_PATH))
                if status == 200:
                    _, spec = asyncio.run(_one_get(self.port, "/openapi.json"))
                    own = FLOOR_PATH in json.loads(spec)["paths"]
                    self.floor_note = "the app's liveness check" if own else "a no-I/O route the bench added"
                    return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the server did not come up:\n{self.log_path.read_text()[-3000:]}")

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process and its descendants (the workers)."""
        return sum(_proc_cpu(pid) for pid in _process_tree(self.process.pid))

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


_TICKS = os.sysconf("SC_CLK_TCK")


def production_log_config(code: Path, data_dir: Path) -> Path | None:
    """The checkout's `appeals api` logging (core.logs.logging_config, JSON, INFO) written as a
    file for uvicorn's --log-config; None for a checkout whose `appeals api` runs uvicorn with
    its defaults (one from before launcher/api_server.py)."""
    if not (code / "launcher" / "api_server.py").exists():
        return None
    source = "import json; from core.logs import logging_config; print(json.dumps(logging_config()))"
    found = subprocess.run(
        [sys.executable, "-c", source], cwd=code, env={**os.environ, "PYTHONPATH": str(code)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        return None
    path = data_dir / "log_config.json"
    path.write_text(found.stdout)
    return path


def _stat_fields(pid: int) -> list[str]:
    raw = Path(f"/proc/{pid}/stat").read_text()
    return raw[raw.rindex(")") + 2 :].split()  # after "pid (comm) "


def _proc_cpu(pid: int) -> float:
    try:
        fields = _stat_fields(pid)
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def _process_tree(root: int) -> list[int]:
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int(_stat_fields(int(entry.name))[1])
            except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
                continue
    tree, frontier = [root], [root]
    while frontier:
        frontier = [pid for pid, parent in parents.items() if parent in frontier]
        tree += frontier
    return tree


# --- the client --------------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection; enough of the protocol for these answers."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        body = await self.reader.readexactly(length) if length else b""
        return status, body

    def close(self) -> None:
        self.writer.close()


def raw_get(path: str, headers: dict[str, str] | None = None) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: bench", *[f"{k}: {v}" for k, v in (headers or {}).items()]]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _one_get(port: int, path: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    connection = await Connection.open(port)
    try:
        return await connection.request(raw_get(path, headers))
    finally:
        connection.close()


@dataclass
class Cell:
    samples: list[float] = field(default_factory=list)
    cpu: float = 0.0
    elapsed: float = 0.0

    @property
    def n(self) -> int:
        return len(self.samples)

    @property
    def p50(self) -> float:
        return statistics.median(self.samples)

    @property
    def p99(self) -> float:
        s = sorted(self.samples)
        return s[max(0, -(-99 * len(s) // 100) - 1)]

    @property
    def cpu_per_request(self) -> float:
        return self.cpu / self.n

    @property
    def rate(self) -> float:
        return self.n / self.elapsed


async def drive(server: Server, requests: list[bytes], concurrency: int, seconds: float, cell: Cell) -> None:
    connections = [await Connection.open(server.port) for _ in range(concurrency)]
    try:
        for i, connection in enumerate(connections):  # warm: every connection, every request kind
            for raw in requests[i : i + 3]:
                status, body = await connection.request(raw)
                assert status == 200, body[:300]
        counter = iter(range(10**12))
        samples: list[float] = []
        cpu_before, started = server.cpu_seconds(), time.perf_counter()
        deadline = started + seconds

        async def worker(connection: Connection) -> None:
            while time.perf_counter() < deadline:
                raw = requests[next(counter) % len(requests)]
                t0 = time.perf_counter()
                status, body = await connection.request(raw)
                samples.append(time.perf_counter() - t0)
                assert status == 200, body[:300]

        await asyncio.gather(*(worker(c) for c in connections))
        cell.elapsed += time.perf_counter() - started
        cell.cpu += server.cpu_seconds() - cpu_before
        cell.samples += samples
    finally:
        for connection in connections:
            connection.close()


# --- running -----------------------------------------------------------------------------------


async def queue_cursors(server: Server, reviewer: dict[str, str], positions: int) -> list[str | None]:
    """Cursors spread over the default queue, found by walking it through the API."""
    cursors: list[str | None] = []
    cursor: str | None = None
    connection = await Connection.open(server.port)
    try:
        while True:
            path = "/review-tasks?limit=100" + (f"&cursor={cursor}" if cursor else "")
            status, body = await connection.request(raw_get(path, reviewer))
            assert status == 200, body[:300]
            page = json.loads(body)
            cursors.append(cursor)
            cursor = page["next_cursor"]
            if cursor is None:
                break
    finally:
        connection.close()
    step = max(1, len(cursors) // positions)
    return cursors[::step][:positions]


def run(kind: str, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="api-bench-") as tmp_name:
        tmp = Path(tmp_name)
        with database(kind, args.pg_url, tmp) as (engine, url, where):
            upgrade(engine)
            seeded = seed(engine, args.appeals, args.seed)
            servers: dict[str, Server] = {}
            try:
                for label, code in args.code:
                    servers[label] = Server(
                        url, tmp / f"server-{len(servers)}", args.workers, args.http, args.loop, code
                    )
                for server in servers.values():
                    server.wait_ready()
                asyncio.run(measure(kind, where, servers, seeded, args))
            finally:
                for server in servers.values():
                    server.stop()


ENDPOINTS = ("floor", "appeal", "queue")


async def measure(
    kind: str, where: str, servers: dict[str, Server], seeded: Seeded, args: argparse.Namespace
) -> None:
    settings = next(iter(servers.values())).settings
    reviewer = {"Authorization": f"Bearer {mint_token(settings, role=Role.REVIEWER, subject='bench-r-api')}"}
    requests = {label: await _requests(server, seeded, reviewer) for label, server in servers.items()}
    load_start = os.getloadavg()
    cells = {(label, name, c): Cell() for label in servers for name in ENDPOINTS for c in args.concurrency}
    for round_number in range(args.rounds):
        # Servers take turns, in the other order each round, so both see the same machine.
        order = list(servers.items())
        for label, server in order if round_number % 2 == 0 else order[::-1]:
            for concurrency in args.concurrency:
                for name in ENDPOINTS:
                    cell = cells[(label, name, concurrency)]
                    await drive(server, requests[label][name], concurrency, args.seconds, cell)
    load_end = os.getloadavg()
    print(
        f"\n== {kind} ({where}): {args.appeals:,} appeals, {args.appeals:,} open tasks "
        f"(seeded in {seeded.seconds:.0f} s); {args.workers} server worker process(es); "
        f"{args.rounds} rounds x {args.seconds:g} s per cell"
    )
    print(f"   uvicorn --http {_resolved_http(args.http)} --loop {_resolved_loop(args.loop)}")
    print(f"   load average at start {_load(load_start)}, at end {_load(load_end)}")
    for label, server in servers.items():
        print(f"\n   [{label}] {server.code}; floor = GET {FLOOR_PATH} ({server.floor_note})")
        print(f"   logging: {server.logging}, as its `appeals api` has it")
        _print_cells(
            args, {(name, c): cells[(label, name, c)] for name in ENDPOINTS for c in args.concurrency}
        )
    if len(servers) == 2:
        (before, _), (after, _) = servers.items()
        print(f"\n   [{after}] / [{before}], same run")
        print(f"   {'endpoint':<34} {'conc':>4} {'CPU/req':>8} {'p50':>8} {'p99':>8}")
        for concurrency in args.concurrency:
            for name in ENDPOINTS:
                old, new = cells[(before, name, concurrency)], cells[(after, name, concurrency)]
                cpu = new.cpu_per_request / old.cpu_per_request
                print(
                    f"   {LABELS[name]:<34} {concurrency:>4} {cpu:8.2f} "
                    f"{new.p50 / old.p50:8.2f} {new.p99 / old.p99:8.2f}"
                )


LABELS = {
    "floor": f"floor GET {FLOOR_PATH}",
    "appeal": "GET /appeals/{id} (customer)",
    "queue": "GET /review-tasks (50 rows)",
}


async def _requests(server: Server, seeded: Seeded, reviewer: dict[str, str]) -> dict[str, list[bytes]]:
    settings = server.settings
    cursors = await queue_cursors(server, reviewer, QUEUE_POSITIONS)
    return {
        "floor": [raw_get(FLOOR_PATH)],
        "appeal": [
            raw_get(
                f"/appeals/{appeal_id}",
                {"Authorization": f"Bearer {mint_token(settings, role=Role.CUSTOMER, subject=customer_id)}"},
            )
            for appeal_id, customer_id in seeded.full_cases
        ],
        "queue": [
            raw_get("/review-tasks" + (f"?cursor={cursor}" if cursor else ""), reviewer) for cursor in cursors
        ],
    }


def _print_cells(args: argparse.Namespace, cells: dict[tuple[str, int], Cell]) -> None:
    print(
        f"   {'endpoint':<34} {'conc':>4} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>7} "
        f"{'CPU ms/req':>10} {'CPU/floor':>9} {'p50/floor':>9} {'n':>6}"
    )
    for concurrency in args.concurrency:
        floor = cells[("floor", concurrency)]
        for name in ENDPOINTS:
            cell = cells[(name, concurrency)]
            print(
                f"   {LABELS[name]:<34} {concurrency:>4} {cell.p50 * 1e3:8.2f} "
                f"{cell.p99 * 1e3:8.2f} {cell.rate:7.0f} {cell.cpu_per_request * 1e3:10.2f} "
                f"{cell.cpu_per_request / floor.cpu_per_request:9.1f} "
                f"{cell.p50 / floor.p50:9.1f} {cell.n:6d}"
            )


def _code(value: str) -> tuple[str, Path]:
    label, sep, directory = value.partition("=")
    if not sep or not (Path(directory) / "bench" / "api_bench.py").is_file():
        raise SystemExit(f"--code {value}: expected LABEL=DIR, DIR a checkout that has bench/api_bench.py")
    return label, Path(directory).resolve()


def _resolved_http(choice: str) -> str:
    """What uvicorn's `auto` picks: httptools when it is installed."""
    return choice if choice != "auto" else ("httptools" if find_spec("httptools") else "h11")


def _resolved_loop(choice: str) -> str:
    return choice if choice != "auto" else ("uvloop" if find_spec("uvloop") else "asyncio")


def _load(load: tuple[float, float, float]) -> str:
    return " ".join(f"{value:.2f}" for value in load)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--appeals", type=int, default=10_000, help="appeals, each with one open task")
    parser.add_argument("--seconds", type=float, default=2.0, help="per cell and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, action="append", help="default: 1 and 8")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument(
        "--http", default="auto", help="uvicorn's HTTP implementation: auto (httptools if installed), h11"
    )
    parser.add_argument(
        "--loop", default="auto", help="uvicorn's event loop: auto (uvloop if installed), asyncio"
    )
    parser.add_argument(
        "--code",
        action="append",
        metavar="LABEL=DIR",
        help="serve the API from the checkout at DIR (repeat it to compare two side by side, the "
        "first as the baseline, e.g. a `git worktree` of an earlier commit that has this bench); "
        "default: this checkout",
    )
    parser.add_argument("--seed", type=int, default=20250615)
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"])
    parser.add_argument("--pg-url", default=PG_URL)
    args = parser.parse_args()
    args.concurrency = args.concurrency or [1, 8]
    args.code = [_code(value) for value in args.code or []] or [("this checkout", ROOT)]
    for kind in args.db or ["sqlite", "postgresql"]:
        run(kind, args)


if __name__ == "__main__":
    main()
