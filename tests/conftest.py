"""Shared fixtures: real databases (SQLite and PostgreSQL), a real S3 server and a real
Temporal dev server, all started through the same launcher code as `appeals dev`."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.engine import Engine
from temporalio.client import Client

from core.db import make_engine, session_scope
from core.db.migrate import create_all_at_head
from core.settings import Settings
from core.storage import ensure_bucket, make_s3_client
from gateway.codec import AesGcmCodec, PayloadKeys
from gateway.temporal import converter_with
from launcher.stack import free_port, http_ok, s3_server, tcp_open, temporal_dev_server, wait_until
from tests.eventually import patience

PG_URL = os.environ.get("APPEALS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"


def _postgres_engine() -> tuple[Engine, str]:
    """A private schema per test, so parallel runs and old tables never interfere."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = make_engine(PG_URL)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable in CI: {exc}")
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    finally:
        admin.dispose()
    return make_engine(PG_URL, connect_args={"options": f"-csearch_path={schema}"}), schema


def _drop_schema(engine: Engine, schema: str) -> None:
    engine.dispose()
    admin = make_engine(PG_URL)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """Each test that takes `engine` runs once on SQLite and once on PostgreSQL. The schema is
    the head revision's, made by create_all (about a third of the migrations' time on SQLite);
    tests/core/db/test_migrations.py proves the two the same."""
    if request.param == "sqlite":
        sqlite_engine = make_engine(f"sqlite:///{tmp_path / 'appeals.db'}")
        create_all_at_head(sqlite_engine)
        yield sqlite_engine
        sqlite_engine.dispose()
        return
    pg_engine, schema = _postgres_engine()
    create_all_at_head(pg_engine)
    yield pg_engine
    _drop_schema(pg_engine, schema)


@pytest.fixture
def postgresql_engine() -> Iterator[Engine]:
    """PostgreSQL alone, for a test run on one database (the stricter one)."""
    pg_engine, schema = _postgres_engine()
    create_all_at_head(pg_engine)
    yield pg_engine
    _drop_schema(pg_engine, schema)


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'appeals.db'}")
    create_all_at_head(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    proc = s3_server(host="127.0.0.1", port=port, log_path=tmp_path_factory.mktemp("s3") / "s3.log").start()
    try:
        wait_until(lambda: tcp_open("127.0.0.1", port) and http_ok(f"http://127.0.0.1:{port}/"), proc, 30)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def temporal_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from launcher.dev import temporal_ready

    port = free_port()
    proc = temporal_dev_server(
        host="127.0.0.1",
        port=port,
        ui_port=free_port(),
        db_file=None,
        log_path=tmp_path_factory.mktemp("temporal") / "temporal.log",
        headless=True,
    ).start()
    try:
        wait_until(lambda: temporal_ready(f"127.0.0.1:{port}", "default"), proc, 60)
        yield f"127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def temporal_client(temporal_address: str) -> AsyncIterator[Client]:
    """As every client and worker of the service connects (gateway/temporal.py): payloads
    encrypted (gateway/codec.py), here with a key made for the session."""
    codec = AesGcmCodec(PayloadKeys.generate("test-session"))
    yield await Client.connect(temporal_address, data_converter=converter_with(codec))


def make_settings(tmp_path: Path, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": tmp_path,
        "s3_bucket": f"docs-{uuid.uuid4().hex[:8]}",
        "temporal_task_queue": f"appeals-{uuid.uuid4().hex[:8]}",
        "document_deadline": timedelta(seconds=30),
        "review_due": timedelta(hours=1),
        "s3_server_side_encryption": "AES256",
        # Production answers a request without Temporal after 2 s; the tests' Temporal is up,
        # and on a busy machine a start or signal must not be deferred to a reconciler that
        # most tests do not run.
        "temporal_request_timeout_seconds": patience(10),
        # No worker metrics endpoints: a test's worker processes would contend for the ports
        # (DevStack.on_free_ports gives its stack free ones).
        "worker_metrics_port": 0,
        "business_metrics_port": 0,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, s3_endpoint: str) -> Settings:
    s = make_settings(tmp_path, s3_endpoint_url=s3_endpoint)
    ensure_bucket(make_s3_client(s), s.s3_bucket)
    return s


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    from core.clock import SYSTEM_CLOCK
    from core.seed import seed_demo_ledger

    with session_scope(engine) as session:
        # Today by the system clock: the stack's worker and API judge the ledger on that day.
        seed_demo_ledger(session, SYSTEM_CLOCK.today())
    return engine
