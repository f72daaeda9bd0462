"""The whole local stack in one object: Temporal dev server, S3 server, SMTP sink, worker and
API; and the supervisor that keeps it running, restarting a part that dies."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any, Protocol

from pydantic import SecretStr
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client

from core.clock import SYSTEM_CLOCK, Clock
from core.db import make_engine, session_scope
from core.db.migrate import SchemaNotAdoptable, upgrade
from core.ledger.generator import seed_population, write_statements
from core.seed import seed_demo_ledger, seed_demo_staff
from core.settings import Settings
from core.storage import ensure_bucket, make_s3_client
from gateway.codec import dev_keys
from launcher.mail import smtp_ready, smtp_sink
from launcher.stack import (
    ManagedProcess,
    StackError,
    check_port_free,
    free_port,
    http_ok,
    python_module,
    s3_server,
    tcp_open,
    temporal_dev_server,
    wait_until,
)

DEMO_POPULATION = 60
DEMO_POPULATION_SEED = 42


def temporal_ready(address: str, namespace: str) -> bool:
    async def _check() -> bool:
        client = await Client.connect(address, namespace=namespace)
        await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace=namespace))
        return True

    return asyncio.run(asyncio.wait_for(_check(), 5))


def worker_polling(address: str, namespace: str, task_queue: str, *, pid: int | None = None) -> bool:
    """Someone polls the task queue; with `pid`, the worker process with that id (the SDK's
    identity is `pid@host`): the server lists a killed worker's polls for minutes after it died."""

    async def _check() -> bool:
        client = await Client.connect(address, namespace=namespace)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        if pid is None:
            return len(response.pollers) > 0
        return any(poller.identity.startswith(f"{pid}@") for poller in response.pollers)

    return asyncio.run(asyncio.wait_for(_check(), 5))


def _iso_duration(value: timedelta) -> str:
    return f"PT{value.total_seconds():g}S"


def settings_env(settings: Settings) -> dict[str, str]:
    """What the API and worker processes need to find the parts this stack started."""
    env = {
        "APPEALS_ENVIRONMENT": settings.environment.value,
        "APPEALS_DATA_DIR": str(settings.data_dir),
        "APPEALS_DATABASE_URL": settings.effective_database_url,
        "APPEALS_TEMPORAL_ADDRESS": settings.temporal_address,
        "APPEALS_TEMPORAL_NAMESPACE": settings.temporal_namespace,
        "APPEALS_TEMPORAL_TASK_QUEUE": settings.temporal_task_queue,
        "APPEALS_S3_ENDPOINT_URL": settings.s3_endpoint_url or "",
        "APPEALS_S3_BUCKET": settings.s3_bucket,
        "APPEALS_API_HOST": settings.api_host,
        "APPEALS_API_PORT": str(settings.api_port),
        "APPEALS_JWT_SECRET": settings.jwt_secret,
        "APPEALS_REVIEW_DUE": _iso_duration(settings.review_due),
        "APPEALS_SMTP_HOST": settings.smtp_host,
        "APPEALS_SMTP_PORT": str(settings.smtp_port),
        "APPEALS_TEMPORAL_UI_PORT": str(settings.temporal_ui_port),
        "APPEALS_CODEC_SERVER_PORT": str(settings.codec_server_port),
        "APPEALS_WORKER_METRICS_HOST": settings.worker_metrics_host,
        "APPEALS_WORKER_METRICS_PORT": str(settings.worker_metrics_port),
        "APPEALS_BUSINESS_METRICS_PORT": str(settings.business_metrics_port),
        "APPEALS_BUSINESS_METRICS_CACHE_SECONDS": str(settings.business_metrics_cache_seconds),
        # .data/logs/ gets the parts' lines in the stack's format (JSON unless told otherwise).
        "APPEALS_LOG_FORMAT": settings.log_format,
        "APPEALS_LOG_LEVEL": settings.log_level,
    }
    if settings.otel_exporter_otlp_endpoint:
        env["APPEALS_OTEL_EXPORTER_OTLP_ENDPOINT"] = settings.otel_exporter_otlp_endpoint
    if settings.payload_keys:
        env["APPEALS_PAYLOAD_KEYS"] = json.dumps(
            {key_id: key.get_secret_value() for key_id, key in settings.payload_keys.items()}
        )
    if settings.payload_key_id is not None:
        env["APPEALS_PAYLOAD_KEY_ID"] = settings.payload_key_id
    if settings.temporal_web_url is not None:
        env["APPEALS_TEMPORAL_WEB_URL"] = settings.temporal_web_url
    if settings.document_deadline is not None:
        env["APPEALS_DOCUMENT_DEADLINE"] = _iso_duration(settings.document_deadline)
    if settings.document_reminders is not None:
        env["APPEALS_DOCUMENT_REMINDERS"] = json.dumps(
            [_iso_duration(r) for r in settings.document_reminders]
        )
    return env


# --- Keeping the stack running ---------------------------------------------------------------


@dataclass(frozen=True)
class Backoff:
    """How long a part that died waits before it is started again: `first`, doubling with each
    crash in a row, at most `cap`; a part that stayed up for `reset_after` starts from `first`
    again."""

    first: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    cap: timedelta = timedelta(seconds=30)
    reset_after: timedelta = timedelta(seconds=60)

    def delay(self, crashes: int) -> timedelta:
        """The wait before the restart that follows `crashes` crashes in a row (1: the first)."""
        if crashes < 1:
            raise ValueError(f"crashes counts from 1, not {crashes}")
        seconds = self.first.total_seconds()
        for _ in range(crashes - 1):
            seconds *= self.factor
            if seconds >= self.cap.total_seconds():
                return self.cap
        return min(timedelta(seconds=seconds), self.cap)


class SupervisedProcess(Protocol):
    """What the supervisor needs of a process; `ManagedProcess` is one."""

    name: str
    log_path: Path

    def start(self) -> Any: ...
    def alive(self) -> bool: ...
    def stop(self, timeout: float = ...) -> None: ...
    def kill_leftovers(self) -> None: ...
    def tail(self, lines: int = ...) -> str: ...
    @property
    def exit_code(self) -> int | None: ...


@dataclass(eq=False)
class Part:
    """One process of the stack, with the check that says it is ready (the same one at start
    and after a restart) and how long it may take to pass it."""

    process: SupervisedProcess
    ready: Callable[[], bool]
    timeout: timedelta
    # Why it is not started again when it dies; empty: it is.
    not_restarted_because: str = ""

    @property
    def name(self) -> str:
        return self.process.name

    def is_ready(self) -> bool:
        try:
            return bool(self.ready())
        except Exception:  # not up yet: connection refused, reset, 5xx, ...
            return False


class NoticeKind(Enum):
    DIED = "died"
    UNHEALTHY = "unhealthy"  # started again but not ready in time: stopped, and counted as a crash
    RESTARTING = "restarting"
    BACK = "back"
    NOT_RESTARTED = "not restarted"


@dataclass(frozen=True)
class Notice:
    """One thing the supervisor has to say; `loud` ones are failures."""

    at: datetime
    part: str
    kind: NoticeKind
    text: str
    loud: bool


class _State(Enum):
    UP = "up"
    WAITING = "waiting"  # died; started again at restart_at
    STARTING = "starting"  # started again; waiting for its ready check
    DOWN = "down"  # died and is not restarted


@dataclass(eq=False)
class _Watch:
    part: Part
    since: datetime  # when it entered its state
    state: _State = _State.UP
    crashes: int = 0  # in a row, since it last stayed up for Backoff.reset_after
    restart_at: datetime | None = None
    down_since: datetime | None = None


def describe_exit(code: int | None) -> str:
    if code is None:
        return "exit code unknown"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"exit code {code}, killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def _seconds(value: timedelta) -> str:
    return f"{value.total_seconds():g} s"


class Supervisor:
    """Watches the parts of a running stack; a part that dies is reported with its exit code and
    log, started again after `backoff`, and reported back once its ready check passes. A part
    that keeps dying is reported every time and never stops the others.

    `tick` looks at every part once and never sleeps (beyond a ready check's own timeout), so a
    test drives it with a fixed clock; `run` ticks every `interval` seconds through `sleep`."""

    def __init__(
        self,
        parts: Sequence[Part],
        *,
        report: Callable[[Notice], None],
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], object] = time.sleep,
        backoff: Backoff | None = None,
        interval: float = 0.5,
        log_lines: int = 8,
    ) -> None:
        self._report = report
        self._clock = clock
        self._sleep = sleep
        self.backoff = backoff or Backoff()
        self.interval = interval
        self._log_lines = log_lines
        now = clock.now()
        self._watches = [_Watch(part, since=now) for part in parts]

    def run(self, stop: threading.Event | None = None) -> None:
        """Ticks until `stop` is set (forever without one: Ctrl-C ends it)."""
        while stop is None or not stop.is_set():
            self.tick()
            self._sleep(self.interval)

    def states(self) -> dict[str, str]:
        """Each part's state by name: up, waiting (to be started again), starting, down."""
        return {w.part.name: w.state.value for w in self._watches}

    def tick(self) -> None:
        for watch in self._watches:
            self._tick(watch)

    def _tick(self, watch: _Watch) -> None:
        now = self._clock.now()
        proc = watch.part.process
        if watch.state is _State.UP:
            if not proc.alive():
                self._died(watch, now)
            elif watch.crashes and now - watch.since >= self.backoff.reset_after:
                watch.crashes = 0
        elif watch.state is _State.WAITING:
            assert watch.restart_at is not None
            if now >= watch.restart_at:
                self._restart(watch, now)
        elif watch.state is _State.STARTING:
            if not proc.alive():
                self._died(watch, now)
            elif watch.part.is_ready():
                self._back(watch, self._clock.now())
            elif now - watch.since >= watch.part.timeout:
                proc.stop()
                watch.crashes += 1
                delay = self._schedule(watch, now)
                self._say(
                    watch,
                    now,
                    NoticeKind.UNHEALTHY,
                    f"{proc.name} was not ready {_seconds(watch.part.timeout)} after it was started "
                    f"again, so it was stopped ({self._streak(watch)}); its log: {proc.log_path}. "
                    f"Starting it again in {_seconds(delay)}.",
                    loud=True,
                    with_log=True,
                )

    def _died(self, watch: _Watch, now: datetime) -> None:
        proc = watch.part.process
        how = describe_exit(proc.exit_code)
        proc.kill_leftovers()
        starting = watch.state is _State.STARTING
        if watch.down_since is None:
            watch.down_since = now
        if watch.state is _State.UP and now - watch.since >= self.backoff.reset_after:
            watch.crashes = 0
        if watch.part.not_restarted_because:
            watch.state, watch.since = _State.DOWN, now
            self._say(
                watch,
                now,
                NoticeKind.NOT_RESTARTED,
                f"{proc.name} died ({how}); its log: {proc.log_path}. It is not started again: "
                f"{watch.part.not_restarted_because}. The other parts keep running.",
                loud=True,
                with_log=True,
            )
            return
        watch.crashes += 1
        delay = self._schedule(watch, now)
        self._say(
            watch,
            now,
            NoticeKind.DIED,
            f"{proc.name} died{' again while starting' if starting else ''} ({how}"
            f"{', ' + self._streak(watch) if watch.crashes > 1 else ''}); its log: {proc.log_path}. "
            f"Restarting it in {_seconds(delay)}.",
            loud=True,
            with_log=watch.crashes > 1,
        )

    def _schedule(self, watch: _Watch, now: datetime) -> timedelta:
        delay = self.backoff.delay(watch.crashes)
        watch.state, watch.since, watch.restart_at = _State.WAITING, now, now + delay
        return delay

    def _streak(self, watch: _Watch) -> str:
        return f"crash {watch.crashes} in a row"

    def _restart(self, watch: _Watch, now: datetime) -> None:
        proc = watch.part.process
        watch.state, watch.since, watch.restart_at = _State.STARTING, now, None
        with contextlib.suppress(OSError), proc.log_path.open("a") as log:
            # A JSON line, like the API's and the worker's own (core/logs.py), so that their
            # logs stay one object per line across restarts.
            note = {
                "ts": now.isoformat(),
                "level": "warning",
                "logger": "appeals.dev",
                "message": f"--- appeals dev: starting {proc.name} again ---",
            }
            # After a newline: a killed part may have left its last line unfinished.
            log.write("\n" + json.dumps(note) + "\n")
        try:
            proc.start()
        except OSError as exc:
            watch.crashes += 1
            delay = self._schedule(watch, now)
            self._say(
                watch,
                now,
                NoticeKind.DIED,
                f"{proc.name} could not be started again ({exc}; {self._streak(watch)}); "
                f"its log: {proc.log_path}. Trying again in {_seconds(delay)}.",
                loud=True,
            )
            return
        self._say(
            watch,
            now,
            NoticeKind.RESTARTING,
            f"{proc.name} is starting again (waiting up to {_seconds(watch.part.timeout)} for it "
            "to be ready) ...",
            loud=False,
        )

    def _back(self, watch: _Watch, now: datetime) -> None:
        proc = watch.part.process
        down = now - watch.down_since if watch.down_since else timedelta(0)
        watch.state, watch.since, watch.down_since = _State.UP, now, None
        self._say(
            watch,
            now,
            NoticeKind.BACK,
            f"{proc.name} is back (ready again; it was down {down.total_seconds():.1f} s).",
            loud=False,
        )

    def _say(
        self, watch: _Watch, now: datetime, kind: NoticeKind, text: str, *, loud: bool, with_log: bool = False
    ) -> None:
        if with_log:
            tail = watch.part.process.tail(self._log_lines).strip()
            if tail:
                text += "\n" + "\n".join(f"    | {line}" for line in tail.splitlines())
        self._report(Notice(at=now, part=watch.part.name, kind=kind, text=text, loud=loud))


@dataclass
class DevStack:
    settings: Settings
    temporal_port: int
    ui_port: int
    s3_port: int
    api_port: int
    headless: bool = False
    persistent: bool = True
    # The codec server the Web UI decodes payloads with (not started headless); None: the
    # settings' codec_server_port.
    codec_port: int | None = None
    seed: bool = True
    # Dates the seeded ledger; the worker and API processes read the system clock.
    clock: Clock = SYSTEM_CLOCK
    processes: list[ManagedProcess] = field(default_factory=list)
    # The same processes with their ready checks, for the supervisor.
    parts: list[Part] = field(default_factory=list)

    @classmethod
    def on_free_ports(cls, data_dir: Path, *, persistent: bool = True) -> DevStack:
        """A headless stack on ports nobody uses, its state in `data_dir`: for a test or a
        script that runs the whole stack beside whatever else is running."""
        ports = {
            name: free_port()
            for name in ("temporal", "ui", "s3", "api", "smtp", "codec", "sdk_metrics", "business_metrics")
        }
        settings = Settings(
            data_dir=data_dir,
            api_port=ports["api"],
            temporal_address=f"127.0.0.1:{ports['temporal']}",
            temporal_ui_port=ports["ui"],
            s3_endpoint_url=f"http://127.0.0.1:{ports['s3']}",
            s3_port=ports["s3"],
            smtp_port=ports["smtp"],
            codec_server_port=ports["codec"],
            worker_metrics_port=ports["sdk_metrics"],
            business_metrics_port=ports["business_metrics"],
            # A test reads the counts right after what it did, not a scrape interval later.
            business_metrics_cache_seconds=1.0,
        )
        return cls(
            settings,
            temporal_port=ports["temporal"],
            ui_port=ports["ui"],
            s3_port=ports["s3"],
            api_port=ports["api"],
            codec_port=ports["codec"],
            headless=True,
            persistent=persistent,
        )

    @property
    def host(self) -> str:
        return self.settings.api_host

    @property
    def mail_dir(self) -> Path:
        return self.settings.data_dir / "mail"

    @property
    def logs(self) -> Path:
        return self.settings.data_dir / "logs"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.host}:{self.ui_port}"

    @property
    def metrics_urls(self) -> dict[str, str]:
        """Where Prometheus scrapes each part (docs/metrics.md); a port set to 0 is left out."""
        settings = self.settings
        host = settings.worker_metrics_host
        urls = {"API requests": f"{self.api_url}/metrics"}
        if settings.worker_metrics_port:
            urls["worker: Temporal SDK"] = f"http://{host}:{settings.worker_metrics_port}/metrics"
        if settings.business_metrics_port:
            urls["worker: business metrics"] = f"http://{host}:{settings.business_metrics_port}/metrics"
        return urls

    @property
    def public_host(self) -> str:
        """The host a person types: `localhost` for a loopback address. The Web UI, the web
        pages and the codec server must be one site for the pages' session cookie to reach the
        codec server from the Web UI."""
        return "localhost" if self.host in ("127.0.0.1", "localhost") else self.host

    @property
    def codec_server_port(self) -> int:
        return self.codec_port if self.codec_port is not None else self.settings.codec_server_port

    @property
    def codec_url(self) -> str:
        """The codec server, as the Web UI in a browser calls it."""
        return f"http://{self.public_host}:{self.codec_server_port}"

    def check_ports(self) -> None:
        check_port_free(self.host, self.temporal_port, "Temporal gRPC", "--temporal-port")
        if not self.headless:
            check_port_free(self.host, self.ui_port, "Temporal Web UI", "--ui-port")
        check_port_free(self.host, self.s3_port, "S3 server", "--s3-port")
        check_port_free(self.host, self.api_port, "API", "--api-port")
        check_port_free(self.host, self.settings.smtp_port, "SMTP sink", "--smtp-port")
        if not self.headless:
            check_port_free(self.host, self.codec_server_port, "codec server", "--codec-port")
        settings = self.settings
        for port, what, variable in (
            (settings.worker_metrics_port, "worker's Temporal SDK metrics", "APPEALS_WORKER_METRICS_PORT"),
            (settings.business_metrics_port, "worker's business metrics", "APPEALS_BUSINESS_METRICS_PORT"),
        ):
            if port:
                check_port_free(settings.worker_metrics_host, port, what, variable)

    def _with_payload_keys(self, settings: Settings) -> Settings:
        """The stack's settings with payload keys: those configured, or the stack's own, made
        on first start and kept in data_dir (gateway/codec.py `dev_keys`); and, with the Web
        UI, the codec server's port and the UI's address as a person types it."""
        update: dict[str, object] = {"codec_server_port": self.codec_server_port}
        if not settings.payload_keys:
            key_id, keys = dev_keys(settings.data_dir / "payload-keys.json")
            update["payload_keys"] = {name: SecretStr(key) for name, key in keys.items()}
            update["payload_key_id"] = key_id
        if not self.headless and settings.temporal_web_url is None:
            update["temporal_web_url"] = f"http://{self.public_host}:{self.ui_port}"
        return settings.model_copy(update=update)

    def start(self) -> None:
        self.check_ports()
        settings = self.settings = self._with_payload_keys(self.settings)
        try:
            temporal = temporal_dev_server(
                host=self.host,
                port=self.temporal_port,
                ui_port=self.ui_port,
                db_file=(settings.data_dir / "temporal.db") if self.persistent else None,
                log_path=self.logs / "temporal.log",
                namespace=settings.temporal_namespace,
                headless=self.headless,
                codec_endpoint=self.codec_url,
            )
            self._launch(
                temporal,
                lambda: temporal_ready(settings.temporal_address, settings.temporal_namespace),
                60,
                # Its state is in its db file: started again, it carries on where it stopped.
                not_restarted_because=""
                if self.persistent
                else "it kept its state in memory, so a new one would know no workflow",
            )

            s3 = s3_server(host=self.host, port=self.s3_port, log_path=self.logs / "s3.log")
            s3_client = make_s3_client(settings)

            def s3_ready() -> bool:
                # Objects live in the server's memory: a new server needs the bucket again.
                if not (tcp_open(self.host, self.s3_port) and http_ok(f"http://{self.host}:{self.s3_port}/")):
                    return False
                ensure_bucket(s3_client, settings.s3_bucket)
                return True

            self._launch(s3, s3_ready, 30)

            # Every email lands as an .eml file in .data/mail/.
            sink = smtp_sink(
                host=self.host,
                port=settings.smtp_port,
                mail_dir=self.mail_dir,
                log_path=self.logs / "smtp.log",
            )
            self._launch(sink, lambda: smtp_ready(self.host, settings.smtp_port), 30)

            engine = make_engine(settings.effective_database_url)
            # Before the API and worker start: they only check that the schema is at head.
            # A database from before migrations is adopted when its schema is the first revision's.
            try:
                upgrade(engine)
            except SchemaNotAdoptable as exc:
                engine.dispose()
                raise StackError(f"the database cannot be migrated: {exc}") from exc
            if self.seed:
                with session_scope(engine) as session:
                    today = self.clock.today()
                    seed_demo_ledger(session, today)
                    seed_demo_staff(session, self.clock.now())
                    # A generated population beside the walkthrough's four: every outcome to demo.
                    demo_population = seed_population(
                        session, DEMO_POPULATION, DEMO_POPULATION_SEED, today=today
                    )
                write_statements(demo_population.customers, settings.data_dir / "demo-statements")
            engine.dispose()

            env = settings_env(settings)
            if not self.headless:
                # The Web UI's decoder (launcher/codec_server.py), with the same keys.
                codec = python_module(
                    "codec server", ["codec-server"], env=env, log_path=self.logs / "codec.log"
                )
                codec_health = f"http://{self.host}:{self.codec_server_port}/health"
                self._launch(codec, lambda: http_ok(codec_health), 30)
            worker = python_module("worker", ["worker"], env=env, log_path=self.logs / "worker.log")
            self._launch(
                worker,
                lambda: worker_polling(
                    settings.temporal_address,
                    settings.temporal_namespace,
                    settings.temporal_task_queue,
                    pid=_pid(worker),
                ),
                60,
            )
            api = python_module("API", ["api"], env=env, log_path=self.logs / "api.log")
            self._launch(api, lambda: http_ok(f"{self.api_url}/health"), 60)
        except BaseException:
            self.stop()
            raise

    def _launch(
        self,
        proc: ManagedProcess,
        ready: Callable[[], bool],
        timeout: float,
        *,
        not_restarted_because: str = "",
    ) -> None:
        self.processes.append(proc.start())
        self.parts.append(Part(proc, ready, timedelta(seconds=timeout), not_restarted_because))
        wait_until(ready, proc, timeout)

    def supervisor(
        self,
        report: Callable[[Notice], None],
        *,
        clock: Clock = SYSTEM_CLOCK,
        sleep: Callable[[float], object] = time.sleep,
        backoff: Backoff | None = None,
    ) -> Supervisor:
        """Keeps the started stack running: a part that dies is started again (see Supervisor)."""
        return Supervisor(self.parts, report=report, clock=clock, sleep=sleep, backoff=backoff)

    def check_alive(self) -> None:
        for proc in self.processes:
            if not proc.alive():
                raise StackError(f"{proc.name} stopped unexpectedly; log ({proc.log_path}):\n{proc.tail()}")

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        self.parts.clear()


def _pid(proc: ManagedProcess) -> int | None:
    return proc.process.pid if proc.process is not None else None
