"""Liveness without I/O, readiness whose probes are shared and reused for a second."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from api.routers.health import Readiness
from core.settings import Settings
from launcher.stack import free_port
from tests.api.conftest import offline_app
from tests.eventually import eventually

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_liveness_answers_while_every_dependency_is_down(tmp_path: Path) -> None:
    # Temporal's port has nobody listening and the S3 client is not one: readiness says so,
    # liveness does not care (an orchestrator must not restart the API for a dependency).
    settings = Settings(data_dir=tmp_path, temporal_address=f"127.0.0.1:{free_port()}")
    async with offline_app(settings, tmp_path) as (http, _engine, _app):
        live = await http.get("/health/live")
        assert (live.status_code, live.json()) == (200, {"status": "ok"})
        for path in ("/health/ready", "/health"):
            ready = await http.get(path)
            assert ready.status_code == 503, path
            body = ready.json()
            assert body["status"] == "degraded", path
            assert body["checks"]["database"] == "ok", path
            assert body["checks"]["object_store"].startswith("unavailable: "), path
            assert body["checks"]["temporal"].startswith("unavailable: "), path


class _Counted:
    """A probe that counts its runs, holds until released, and fails when told to."""

    def __init__(self) -> None:
        self.runs = 0
        self.fail = False
        self.gate = asyncio.Event()

    async def __call__(self) -> None:
        self.runs += 1
        await self.gate.wait()
        if self.fail:
            raise RuntimeError("down")


async def test_concurrent_checks_share_one_probe_and_reuse_it_for_the_ttl() -> None:
    probe = _Counted()
    now = [100.0]
    readiness = Readiness({"database": probe}, ttl=1.0, clock=lambda: now[0])
    burst = [asyncio.ensure_future(readiness.checks()) for _ in range(20)]
    # Held at the gate until all twenty callers are waiting on the one probe in flight.
    await eventually(lambda: probe.runs, what="the probe to start")
    probe.gate.set()
    answers = await asyncio.gather(*burst)
    assert probe.runs == 1 and all(answer == {"database": "ok"} for answer in answers)

    now[0] += 0.5  # within the ttl: the answer is reused
    assert await readiness.checks() == {"database": "ok"} and probe.runs == 1

    now[0] += 0.6  # past it: probed again, and a failure is reported by its type
    probe.fail = True
    assert await readiness.checks() == {"database": "unavailable: RuntimeError"}
    assert probe.runs == 2


async def test_a_caller_that_gives_up_does_not_cancel_the_probe_others_wait_for() -> None:
    probe = _Counted()
    readiness = Readiness({"temporal": probe}, clock=lambda: 0.0)
    impatient = asyncio.ensure_future(readiness.checks())
    patient = asyncio.ensure_future(readiness.checks())
    await eventually(lambda: probe.runs, what="the probe to start")
    impatient.cancel()
    probe.gate.set()
    assert await patient == {"temporal": "ok"} and probe.runs == 1


async def test_a_draining_process_is_not_ready_but_live(tmp_path: Path) -> None:
    """Once shutdown begins (launcher/api_server.py sets `draining` on SIGTERM) readiness is 503
    whatever the dependencies say, so a load balancer sends the requests elsewhere."""
    settings = Settings(data_dir=tmp_path, temporal_address=f"127.0.0.1:{free_port()}")
    async with offline_app(settings, tmp_path) as (http, _engine, app):
        app.state.readiness.draining = True
        for path in ("/health/ready", "/health"):
            ready = await http.get(path)
            assert (ready.status_code, ready.json()) == (503, {"status": "draining", "checks": {}}), path
        assert (await http.get("/health/live")).status_code == 200
