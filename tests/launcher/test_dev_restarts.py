"""`appeals dev` keeps running when a part dies: the headless stack on free ports under its
supervisor (the one `appeals dev` runs), a part killed with SIGKILL, and the stack seen to carry
on: the part started again and reported back, and an appeal submitted after the kill reaching
its final status."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from core.auth import Role, mint_token
from core.clock import SYSTEM_CLOCK
from core.demo_documents import statement_csv
from launcher.dev import DevStack, Notice, NoticeKind
from launcher.stack import ManagedProcess
from tests.eventually import eventually_sync, patience

pytestmark = pytest.mark.e2e


@dataclass
class Supervised:
    stack: DevStack
    notices: list[Notice]

    def process(self, name: str) -> ManagedProcess:
        return next(p for p in self.stack.processes if p.name == name)

    def wait_said(self, part: str, kind: NoticeKind, since: int) -> Notice:
        """The first notice of `kind` about `part` among those said after the first `since`."""

        def matches(notices: list[Notice]) -> list[Notice]:
            return [n for n in notices if n.part == part and n.kind is kind]

        said = eventually_sync(
            lambda: self.notices[since:],
            lambda notices: matches(notices),
            what=f"the supervisor to say {part} {kind.value}",
        )
        return matches(said)[0]

    def auth(self, subject: str) -> dict[str, str]:
        token = mint_token(self.stack.settings, role=Role.CUSTOMER, subject=subject)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def supervised(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Supervised]:
    stack = DevStack.on_free_ports(tmp_path_factory.mktemp("dev"))
    stack.start()
    notices: list[Notice] = []
    stop = threading.Event()
    # Its pauses are plain sleeps (half a second; it checks `stop` after each), as in `appeals
    # dev`: a timed wait on an Event takes an absolute deadline, which a faked clock (Debian
    # faketime, how the suite is run on other days) puts years away.
    supervisor = stack.supervisor(report=notices.append, sleep=time.sleep)
    thread = threading.Thread(target=supervisor.run, args=(stop,), name="supervisor", daemon=True)
    thread.start()
    try:
        yield Supervised(stack, notices)
    finally:
        stop.set()
        # A tick may be in a ready check (a few seconds at most); the stack stops after it, or
        # the supervisor would start again what the stop just stopped.
        thread.join(patience(60))
        stack.stop()
        assert not thread.is_alive(), "the supervisor did not stop"


def _appeal(http: httpx.Client, url: str, headers: dict[str, str], status: str) -> dict[str, Any]:
    def fetch() -> dict[str, Any]:
        response = http.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return eventually_sync(fetch, lambda body: body["status"] == status, what=f"{url} to be {status}")


def _kill(proc: ManagedProcess) -> int:
    assert proc.process is not None and proc.alive()
    pid = proc.process.pid
    os.kill(pid, signal.SIGKILL)
    return pid


def test_a_killed_worker_is_started_again_and_an_appeal_submitted_meanwhile_closes(
    supervised: Supervised,
) -> None:
    stack = supervised.stack
    worker = supervised.process("worker")
    since = len(supervised.notices)
    killed = _kill(worker)
    wang = supervised.auth("c-1001")
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        # Submitted while the worker is down (or only just starting): Temporal holds the work.
        created = http.post(
            "/appeals", headers=wang, json={"account_id": "acct-1001", "requested_limit_minor": 800_000}
        )
        assert created.status_code == 201, created.text
        url = f"/appeals/{created.json()['id']}"

        died = supervised.wait_said("worker", NoticeKind.DIED, since)
        first_line = died.text.splitlines()[0]
        assert first_line.startswith("worker died (exit code -9, killed by SIGKILL)"), died.text
        assert f"its log: {stack.logs / 'worker.log'}" in first_line
        assert "Restarting it in 1 s" in first_line and died.loud
        back = supervised.wait_said("worker", NoticeKind.BACK, since)
        assert back.text.startswith("worker is back") and not back.loud
        assert worker.alive() and worker.process is not None and worker.process.pid != killed

        # Wang's appeal goes all the way: documents asked for, his statement checked, approved
        # automatically and the limit applied.
        _appeal(http, url, wang, "AWAITING_DOCUMENTS")
        upload = http.post(
            f"{url}/documents",
            headers=wang,
            files={"file": ("statement.csv", statement_csv(SYSTEM_CLOCK.today(), seed=1001), "text/csv")},
        )
        assert upload.status_code == 201, upload.text
        assert _appeal(http, url, wang, "CLOSED")["decided_limit_minor"] == 800_000
    # Nothing else had to be started again.
    assert {n.part for n in supervised.notices[since:]} == {"worker"}


def test_a_killed_api_is_started_again_and_answers_on_its_port(supervised: Supervised) -> None:
    stack = supervised.stack
    api = supervised.process("API")
    since = len(supervised.notices)
    killed = _kill(api)
    died = supervised.wait_said("API", NoticeKind.DIED, since)
    assert died.text.startswith("API died (exit code -9, killed by SIGKILL)"), died.text
    assert f"its log: {stack.logs / 'api.log'}" in died.text

    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        health = eventually_sync(
            lambda: http.get("/health"),
            lambda response: response.status_code == 200,
            what=f"the API to answer on port {stack.api_port} again",
        )
        assert health.json()["status"] == "ok"
        supervised.wait_said("API", NoticeKind.BACK, since)
        assert api.alive() and api.process is not None and api.process.pid != killed

        # The new API takes appeals: Zhang still owes ¥450 and is told so.
        zhang = supervised.auth("c-1003")
        created = http.post(
            "/appeals", headers=zhang, json={"account_id": "acct-1003", "requested_limit_minor": 500_000}
        )
        assert created.status_code == 201, created.text
        detail = _appeal(http, f"/appeals/{created.json()['id']}", zhang, "INELIGIBLE")
        assert detail["amount_owed_minor"] == 45_000
    # The worker, the SMTP sink, the S3 and Temporal servers were left alone.
    assert {n.part for n in supervised.notices[since:]} == {"API"}
    assert all(p.alive() for p in supervised.stack.processes)
