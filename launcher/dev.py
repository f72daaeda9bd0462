"""The whole local stack in one object: Temporal dev server, S3 server, worker and API."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, DescribeTaskQueueRequest
from temporalio.client import Client

from core.clock import SYSTEM_CLOCK, Clock
from core.db import create_tables, make_engine, session_scope
from core.ledger.generator import seed_population, write_statements
from core.seed import seed_demo_ledger
from core.settings import Settings
from core.storage import ensure_bucket, make_s3_client
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


def worker_polling(address: str, namespace: str, task_queue: str) -> bool:
    async def _check() -> bool:
        client = await Client.connect(address, namespace=namespace)
        response = await client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=namespace,
                task_queue=TaskQueue(name=task_queue),
                task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
            )
        )
        return len(response.pollers) > 0

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
    }
    if settings.document_deadline is not None:
        env["APPEALS_DOCUMENT_DEADLINE"] = _iso_duration(settings.document_deadline)
    if settings.document_reminders is not None:
        env["APPEALS_DOCUMENT_REMINDERS"] = json.dumps(
            [_iso_duration(r) for r in settings.document_reminders]
        )
    return env


@dataclass
class DevStack:
    settings: Settings
    temporal_port: int
    ui_port: int
    s3_port: int
    api_port: int
    headless: bool = False
    persistent: bool = True
    seed: bool = True
    # Dates the seeded ledger; the worker and API processes read the system clock.
    clock: Clock = SYSTEM_CLOCK
    processes: list[ManagedProcess] = field(default_factory=list)

    @classmethod
    def on_free_ports(cls, data_dir: Path, *, persistent: bool = True) -> DevStack:
        """A headless stack on ports nobody uses, its state in `data_dir`: for a test or a
        script that runs the whole stack beside whatever else is running."""
        ports = {name: free_port() for name in ("temporal", "ui", "s3", "api", "smtp")}
        settings = Settings(
            data_dir=data_dir,
            api_port=ports["api"],
            temporal_address=f"127.0.0.1:{ports['temporal']}",
            temporal_ui_port=ports["ui"],
            s3_endpoint_url=f"http://127.0.0.1:{ports['s3']}",
            s3_port=ports["s3"],
            smtp_port=ports["smtp"],
        )
        return cls(
            settings,
            temporal_port=ports["temporal"],
            ui_port=ports["ui"],
            s3_port=ports["s3"],
            api_port=ports["api"],
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

    def check_ports(self) -> None:
        check_port_free(self.host, self.temporal_port, "Temporal gRPC", "--temporal-port")
        if not self.headless:
            check_port_free(self.host, self.ui_port, "Temporal Web UI", "--ui-port")
        check_port_free(self.host, self.s3_port, "S3 server", "--s3-port")
        check_port_free(self.host, self.api_port, "API", "--api-port")
        check_port_free(self.host, self.settings.smtp_port, "SMTP sink", "--smtp-port")

    def start(self) -> None:
        self.check_ports()
        settings = self.settings
        try:
            temporal = temporal_dev_server(
                host=self.host,
                port=self.temporal_port,
                ui_port=self.ui_port,
                db_file=(settings.data_dir / "temporal.db") if self.persistent else None,
                log_path=self.logs / "temporal.log",
                namespace=settings.temporal_namespace,
                headless=self.headless,
            )
            self._launch(
                temporal,
                lambda: temporal_ready(settings.temporal_address, settings.temporal_namespace),
                60,
            )

            s3 = s3_server(host=self.host, port=self.s3_port, log_path=self.logs / "s3.log")
            self._launch(
                s3,
                lambda: tcp_open(self.host, self.s3_port) and http_ok(f"http://{self.host}:{self.s3_port}/"),
                30,
            )
            ensure_bucket(make_s3_client(settings), settings.s3_bucket)

            # Every email lands as an .eml file in .data/mail/.
            sink = smtp_sink(
                host=self.host,
                port=settings.smtp_port,
                mail_dir=self.mail_dir,
                log_path=self.logs / "smtp.log",
            )
            self._launch(sink, lambda: smtp_ready(self.host, settings.smtp_port), 30)

            engine = make_engine(settings.effective_database_url)
            create_tables(engine)
            if self.seed:
                with session_scope(engine) as session:
                    today = self.clock.today()
                    seed_demo_ledger(session, today)
                    # A generated population beside the walkthrough's four: every outcome to demo.
                    demo_population = seed_population(
                        session, DEMO_POPULATION, DEMO_POPULATION_SEED, today=today
                    )
                write_statements(demo_population.customers, settings.data_dir / "demo-statements")
            engine.dispose()

            env = settings_env(settings)
            worker = python_module("worker", ["worker"], env=env, log_path=self.logs / "worker.log")
            self._launch(
                worker,
                lambda: worker_polling(
                    settings.temporal_address,
                    settings.temporal_namespace,
                    settings.temporal_task_queue,
                ),
                60,
            )
            api = python_module("API", ["api"], env=env, log_path=self.logs / "api.log")
            self._launch(api, lambda: http_ok(f"{self.api_url}/health"), 60)
        except BaseException:
            self.stop()
            raise

    def _launch(self, proc: ManagedProcess, ready: object, timeout: float) -> None:
        self.processes.append(proc.start())
        wait_until(ready, proc, timeout)  # type: ignore[arg-type]

    def check_alive(self) -> None:
        for proc in self.processes:
            if not proc.alive():
                raise StackError(f"{proc.name} stopped unexpectedly; log ({proc.log_path}):\n{proc.tail()}")

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
