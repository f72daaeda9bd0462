"""The parts of the service as separate processes for bench/chaos.py, each of which can be
killed and started again: a Temporal dev server with a database file (so a restarted server
finds its workflows), the S3 server behind bench/chaos_proxy.py, the SMTP sink, one or more
workers (`appeals worker`) and API processes (`appeals api`, each behind a proxy of its own
that the clients use), on free ports, with a data
directory of the run's own. The database is a SQLite file in that directory, or a fresh
PostgreSQL database that the stack creates and drops.

Processes are started with launcher/stack.py's builders, as `appeals dev` starts them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Engine, make_url
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from bench.chaos_proxy import FaultyProxy
from core.db import make_engine
from core.db.migrate import upgrade
from core.settings import Settings
from core.storage import ensure_bucket, make_s3_client
from launcher.dev import settings_env, temporal_ready
from launcher.mail import smtp_ready, smtp_sink
from launcher.stack import (
    ManagedProcess,
    StackError,
    free_port,
    http_ok,
    python_module,
    s3_server,
    tcp_open,
    temporal_dev_server,
    wait_until,
)

HOST = "127.0.0.1"
DEFAULT_PG_URL = os.environ.get("APPEALS_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def worker_polls(address: str, namespace: str, task_queue: str, pid: int) -> bool:
    """A poller on the task queue whose identity is this process's (the SDK's default identity
    is `pid@host`), so a restarted worker is seen even while another worker polls."""

    async def _check() -> bool:
        client = await Client.connect(address, namespace=namespace)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return any(p.identity.startswith(f"{pid}@") for p in response.pollers)

    return asyncio.run(asyncio.wait_for(_check(), 5))


@dataclass
class Part:
    """One process of the stack and how to tell that it is up."""

    name: str
    proc: ManagedProcess
    ready: Callable[[], bool]
    timeout: float
    kills: int = 0
    restarts: int = 0

    @property
    def pid(self) -> int:
        assert self.proc.process is not None
        return self.proc.process.pid


@dataclass
class ChaosStack:
    data_dir: Path
    db: str = "sqlite"  # or "postgres"
    workers: int = 1
    apis: int = 1
    pg_url: str = DEFAULT_PG_URL
    human_review_window: timedelta | None = None
    pdf_timeout: float | None = None  # the PDF check's child process limit (None: the setting's)
    parts: dict[str, Part] = field(default_factory=dict)
    proxy: FaultyProxy | None = None  # in front of S3
    api_proxies: list[FaultyProxy] = field(default_factory=list)  # one in front of each API
    pg_database: str | None = None
    settings: Settings = field(init=False)
    s3_direct: str = field(init=False)
    api_ports: list[int] = field(default_factory=list)
    api_proxy_ports: list[int] = field(default_factory=list)
    temporal_port: int = field(init=False)

    def __post_init__(self) -> None:
        self.data_dir = self.data_dir.resolve()
        self.temporal_port = free_port()
        s3_port, proxy_port, smtp_port = free_port(), free_port(), free_port()
        self.s3_direct = f"http://{HOST}:{s3_port}"
        self.api_ports = [free_port() for _ in range(self.apis)]
        self.api_proxy_ports = [free_port() for _ in range(self.apis)]
        self.settings = Settings(
            data_dir=self.data_dir,
            database_url="",
            api_port=self.api_ports[0],
            temporal_address=f"{HOST}:{self.temporal_port}",
            temporal_ui_port=free_port(),
            s3_endpoint_url=f"http://{HOST}:{proxy_port}",  # the processes go through the proxy
            s3_port=proxy_port,
            smtp_port=smtp_port,
            s3_bucket="appeal-documents",
            human_review_window=self.human_review_window,
            # Several workers at once: no metrics endpoints to contend for.
            worker_metrics_port=0,
            business_metrics_port=0,
        )

    # -- paths and addresses ------------------------------------------------------------------

    @property
    def logs(self) -> Path:
        return self.data_dir / "logs"

    @property
    def mail_dir(self) -> Path:
        return self.data_dir / "mail"

    @property
    def sms_file(self) -> Path:
        return self.data_dir / "sms" / "messages.jsonl"

    @property
    def api_urls(self) -> list[str]:
        """Where clients reach the APIs: through their proxies."""
        return [f"http://{HOST}:{port}" for port in self.api_proxy_ports]

    @property
    def database_url(self) -> str:
        return self.settings.effective_database_url

    def direct_s3_settings(self) -> Settings:
        """The settings with the S3 server itself, not the proxy: for the harness's checks."""
        return self.settings.model_copy(update={"s3_endpoint_url": self.s3_direct})

    def make_engine(self) -> Engine:
        return make_engine(self.database_url)

    def worker_names(self) -> list[str]:
        return [f"worker-{n}" for n in range(1, self.workers + 1)]

    def api_names(self) -> list[str]:
        return [f"api-{n}" for n in range(1, self.apis + 1)]

    # -- start and stop -----------------------------------------------------------------------

    def start(self) -> None:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.db == "postgres":
            self._create_pg_database()
        settings = self.settings
        temporal = temporal_dev_server(
            host=HOST,
            port=self.temporal_port,
            ui_port=settings.temporal_ui_port,
            db_file=self.data_dir / "temporal.db",
            log_path=self.logs / "temporal.log",
            namespace=settings.temporal_namespace,
            headless=True,
        )
        self._launch(
            Part(
                "temporal",
                temporal,
                lambda: temporal_ready(settings.temporal_address, settings.temporal_namespace),
                60,
            )
        )
        s3_port = int(self.s3_direct.rsplit(":", 1)[1])
        s3 = s3_server(host=HOST, port=s3_port, log_path=self.logs / "s3.log")
        self._launch(Part("s3", s3, lambda: tcp_open(HOST, s3_port) and http_ok(f"{self.s3_direct}/"), 30))
        ensure_bucket(make_s3_client(self.direct_s3_settings()), settings.s3_bucket)
        self.proxy = FaultyProxy(host=HOST, port=settings.s3_port, upstream_host=HOST, upstream_port=s3_port)
        self.proxy.start()
        sink = smtp_sink(
            host=HOST, port=settings.smtp_port, mail_dir=self.mail_dir, log_path=self.logs / "smtp.log"
        )
        self._launch(Part("smtp", sink, lambda: smtp_ready(HOST, settings.smtp_port), 30))

        engine = self.make_engine()
        upgrade(engine)
        engine.dispose()

        for name in self.worker_names():
            proc = python_module(name, ["worker"], env=self._env(), log_path=self.logs / f"{name}.log")
            part = Part(name, proc, lambda: False, 90)
            part.ready = self._worker_ready(part)
            self._launch(part)
        for name, port in zip(self.api_names(), self.api_ports, strict=True):
            proc = python_module(
                name,
                ["api", "--port", str(port), "--workers", "1"],
                env=self._env(),
                log_path=self.logs / f"{name}.log",
            )
            self._launch(Part(name, proc, _http_live(f"http://{HOST}:{port}"), 60))
        for port, proxy_port in zip(self.api_ports, self.api_proxy_ports, strict=True):
            api_proxy = FaultyProxy(host=HOST, port=proxy_port, upstream_host=HOST, upstream_port=port)
            api_proxy.start()
            self.api_proxies.append(api_proxy)

    def _env(self) -> dict[str, str]:
        env = settings_env(self.settings)
        if self.human_review_window is not None:
            env["APPEALS_HUMAN_REVIEW_WINDOW"] = f"PT{self.human_review_window.total_seconds():g}S"
        if self.pdf_timeout is not None:
            env["APPEALS_PDF_CHILD_TIMEOUT_SECONDS"] = f"{self.pdf_timeout:g}"
        env["PYTHONUNBUFFERED"] = "1"  # a killed process's log ends where it died
        return env

    def _worker_ready(self, part: Part) -> Callable[[], bool]:
        settings = self.settings
        return lambda: worker_polls(
            settings.temporal_address, settings.temporal_namespace, settings.temporal_task_queue, part.pid
        )

    def _launch(self, part: Part) -> None:
        self.parts[part.name] = part
        part.proc.start()
        wait_until(part.ready, part.proc, part.timeout)

    def stop(self, *, keep_database: bool = False) -> None:
        """Stops every process; drops the PostgreSQL database unless it is to be kept (a failed
        run's, for a look at what went wrong)."""
        for part in reversed(list(self.parts.values())):
            with contextlib.suppress(Exception):
                part.proc.stop()
        for proxy in [*self.api_proxies, *([self.proxy] if self.proxy else [])]:
            proxy.stop()
        self.api_proxies, self.proxy = [], None
        if self.pg_database is not None and not keep_database:
            self._drop_pg_database()

    # -- faults -------------------------------------------------------------------------------

    def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Sends `sig` to the part's process group and reaps it (SIGTERM: waits for its exit)."""
        part = self.parts[name]
        proc = part.proc.process
        assert proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(30)
        except Exception:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        part.kills += 1

    def restart(self, name: str) -> None:
        """Starts the part again on the same port, data and log file, and waits until it is up."""
        part = self.parts[name]
        if part.proc.alive():
            raise StackError(f"{name} is still running")
        part.proc.start()
        wait_until(part.ready, part.proc, part.timeout)
        part.restarts += 1

    def api_proxy(self, name: str) -> FaultyProxy:
        """The proxy in front of API process `name` (api-1, api-2, ...)."""
        return self.api_proxies[self.api_names().index(name)]

    def dead_parts(self) -> list[str]:
        return [name for name, part in self.parts.items() if not part.proc.alive()]

    # -- PostgreSQL ---------------------------------------------------------------------------

    def _admin(self) -> Engine:
        return make_engine(self.pg_url).execution_options(isolation_level="AUTOCOMMIT")

    def _create_pg_database(self) -> None:
        name = f"chaos_{uuid.uuid4().hex[:12]}"
        admin = self._admin()
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.engine.dispose()
        self.pg_database = name
        url = make_url(self.pg_url).set(database=name)
        self.settings = self.settings.model_copy(
            update={"database_url": url.render_as_string(hide_password=False)}
        )

    def _drop_pg_database(self) -> None:
        name, self.pg_database = self.pg_database, None
        admin = self._admin()
        try:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.engine.dispose()

    def pg_outage(self, seconds: float, *, sleep: Callable[[float], None] = time.sleep) -> int:
        """The database goes away as in a restart: new connections are refused for `seconds`
        and every open one (the app's, and this harness's own) is terminated. Returns how many
        backends were terminated."""
        assert self.pg_database is not None, "db-restart needs --db postgres"
        name = self.pg_database
        admin = self._admin()
        try:
            with admin.connect() as connection:
                connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
                killed = connection.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE datname = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": name},
                ).scalar_one()
                try:
                    sleep(seconds)
                finally:
                    connection.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
        finally:
            admin.engine.dispose()
        return int(killed)


def _http_live(base: str) -> Callable[[], bool]:
    return lambda: http_ok(f"{base}/health/live")
