"""The app on a real HTTP port for the browser tests: the API (`appeals api`: create_app under
uvicorn), a worker (`appeals worker`) and the SMTP sink as child processes, started by the same
launcher code as `appeals dev` (launcher/stack.py, launcher/dev.py), against the session's
Temporal dev server and S3 server and a SQLite file seeded with the demo ledger.

Presigned download and preview links point at the S3 server, which the browser reaches too.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import Engine

from core.auth import Role, mint_token
from core.clock import SYSTEM_CLOCK
from core.db import make_engine, session_scope
from core.db.migrate import create_all_at_head
from core.seed import seed_demo_ledger
from core.settings import Settings
from core.storage import ensure_bucket, make_s3_client
from launcher.dev import settings_env, worker_polling
from launcher.mail import start_smtp_sink
from launcher.stack import ManagedProcess, StackError, free_port, http_ok, python_module, wait_until


@dataclass
class LiveStack:
    settings: Settings
    engine: Engine  # the same SQLite file the API and worker use: for test data and checks
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{self.settings.api_host}:{self.settings.api_port}"

    @property
    def mail_dir(self) -> Path:
        return self.settings.data_dir / "mail"

    @property
    def logs(self) -> Path:
        return self.settings.data_dir / "logs"

    def token(self, role: Role, subject: str) -> str:
        return mint_token(self.settings, role=role, subject=subject)

    def auth(self, role: Role, subject: str) -> dict[str, str]:
        """Bearer headers for the JSON API, to set a scene faster than clicking through it."""
        return {"Authorization": f"Bearer {self.token(role, subject)}"}

    def check_alive(self) -> None:
        for proc in self.processes:
            if not proc.alive():
                raise StackError(f"{proc.name} stopped; its log ({proc.log_path}):\n{proc.tail(40)}")

    def stop(self) -> None:
        for proc in reversed(self.processes):
            proc.stop()
        self.processes.clear()
        self.engine.dispose()


def start_live_stack(*, data_dir: Path, temporal_address: str, s3_endpoint: str) -> LiveStack:
    """Starts the SMTP sink, the worker and the API on free ports and waits until each is
    healthy; a part that fails to start stops the others and raises with its log."""
    settings = Settings(
        data_dir=data_dir,
        api_port=free_port(),
        smtp_port=free_port(),
        temporal_address=temporal_address,
        s3_endpoint_url=s3_endpoint,
        # The Temporal and S3 servers are shared with the rest of the session: own queue, own bucket.
        s3_bucket=f"browser-{uuid.uuid4().hex[:8]}",
        temporal_task_queue=f"browser-{uuid.uuid4().hex[:8]}",
        # No metrics endpoints: the default ports are `appeals dev`'s, and another test's.
        worker_metrics_port=0,
        business_metrics_port=0,
    )
    ensure_bucket(make_s3_client(settings), settings.s3_bucket)
    engine = make_engine(settings.effective_database_url)
    create_all_at_head(engine)
    with session_scope(engine) as session:
        # Today by the system clock: the worker and API processes judge the ledger on that day.
        seed_demo_ledger(session, SYSTEM_CLOCK.today())
    stack = LiveStack(settings, engine)
    logs = stack.logs
    env = settings_env(settings)
    try:
        stack.processes.append(
            start_smtp_sink(
                host=settings.smtp_host,
                port=settings.smtp_port,
                mail_dir=stack.mail_dir,
                log_path=logs / "smtp.log",
            )
        )
        # Both start at once (each takes a few seconds to import), then each is waited for.
        worker = python_module("worker", ["worker"], env=env, log_path=logs / "worker.log").start()
        stack.processes.append(worker)
        api = python_module("API", ["api"], env=env, log_path=logs / "api.log").start()
        stack.processes.append(api)
        wait_until(
            lambda: worker_polling(
                settings.temporal_address, settings.temporal_namespace, settings.temporal_task_queue
            ),
            worker,
            60,
        )
        wait_until(lambda: http_ok(f"{stack.url}/health"), api, 60)
    except BaseException:
        stack.stop()
        raise
    return stack
