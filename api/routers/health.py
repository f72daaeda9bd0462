"""Health: liveness (the process answers, no I/O) and readiness (its dependencies answer).

`GET /health/live` does no I/O at all: it says the process is up and serving HTTP, so an
orchestrator restarts the API only when it is wedged, never because the database or S3 is.
`GET /health/ready` probes the database, the object store and Temporal; each probe's result is
kept for a second and concurrent callers share one probe in flight, so a burst of readiness
checks (several replicas' load balancers, a compose healthcheck, a dashboard) costs one round
of I/O a second. `GET /health` is the readiness check under its old name.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.settings import Settings
from gateway.temporal import TemporalGateway

router = APIRouter(tags=["health"])

PROBE_TTL_SECONDS = 1.0  # how long a probe's answer is reused
PROBE_TIMEOUT_SECONDS = 10.0


class Liveness(BaseModel):
    status: Literal["ok"] = Field(description="Always `ok`: the process is up and answers HTTP.")


class HealthReport(BaseModel):
    status: str = Field(
        description="`ok`; `degraded` when any dependency is unavailable; `draining` (no checks) "
        "once the process is shutting down."
    )
    checks: dict[str, str] = Field(
        description="Per dependency (database, object_store, temporal): `ok` or `unavailable: <error>`.",
        examples=[{"database": "ok", "object_store": "ok", "temporal": "unavailable: TimeoutError"}],
    )


@dataclass
class _Probe:
    run: Callable[[], Awaitable[None]]
    result: str = ""
    checked_at: float = -math.inf
    in_flight: asyncio.Future[str] | None = None


class Readiness:
    """The dependency probes of one app, each answer reused for `ttl` seconds (`clock` is
    monotonic seconds; tests may replace it)."""

    def __init__(
        self,
        probes: dict[str, Callable[[], Awaitable[None]]],
        *,
        ttl: float = PROBE_TTL_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probes = {name: _Probe(run) for name, run in probes.items()}
        # Set when the process begins to shut down (launcher/api_server.py): not ready, whatever
        # the dependencies say, so a load balancer drains it.
        self.draining = False
        self.ttl = ttl
        self.clock = clock

    async def checks(self) -> dict[str, str]:
        results = await asyncio.gather(*(self._answer(probe) for probe in self._probes.values()))
        return dict(zip(self._probes, results, strict=True))

    async def _answer(self, probe: _Probe) -> str:
        if self.clock() - probe.checked_at < self.ttl:
            return probe.result
        if probe.in_flight is None:  # the first caller probes; the others wait for its answer
            probe.in_flight = asyncio.ensure_future(self._probe(probe))
        # Shielded: a caller that gives up does not cancel the probe the others wait for.
        return await asyncio.shield(probe.in_flight)

    async def _probe(self, probe: _Probe) -> str:
        try:
            await asyncio.wait_for(probe.run(), PROBE_TIMEOUT_SECONDS)
            result = "ok"
        except Exception as exc:  # a health probe reports every failure, whatever it is
            result = f"unavailable: {type(exc).__name__}"
        probe.result, probe.checked_at, probe.in_flight = result, self.clock(), None
        return result


def readiness_probes(state: Any) -> dict[str, Callable[[], Awaitable[None]]]:
    """The database (SELECT 1), the object store (HEAD of the documents bucket) and Temporal
    (the frontend's health check), on the app's own engine, S3 client and gateway (`state`:
    the app's state, read when a probe runs)."""

    def _db() -> None:
        engine: Engine = state.engine
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def _s3() -> None:
        settings: Settings = state.settings
        state.s3.head_bucket(Bucket=settings.s3_bucket)

    async def _database() -> None:
        await to_thread.run_sync(_db)

    async def _object_store() -> None:
        await to_thread.run_sync(_s3)

    async def _temporal() -> None:
        gateway: TemporalGateway = state.gateway
        client = await gateway.client()
        await asyncio.wait_for(client.service_client.check_health(), 5)

    return {"database": _database, "object_store": _object_store, "temporal": _temporal}


_LIVE = Liveness(status="ok").model_dump_json().encode()


@router.get(
    "/health/live",
    summary="Liveness: the API process is up (no I/O)",
    response_model=Liveness,
)
async def live() -> Response:
    """Answers `{"status": "ok"}` without touching the database, S3 or Temporal: for a
    liveness probe, which should restart the process only when it no longer answers."""
    return Response(_LIVE, media_type="application/json")


_READY_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {
        "model": HealthReport,
        "description": "A dependency is unavailable (`degraded`; `checks` names which), or the "
        "process is shutting down (`draining`).",
    }
}


async def _ready(request: Request) -> JSONResponse:
    readiness: Readiness = request.app.state.readiness
    if readiness.draining:
        return JSONResponse({"status": "draining", "checks": {}}, status_code=503)
    checks = await readiness.checks()
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status_code=200 if healthy else 503,
    )


@router.get(
    "/health/ready",
    summary="Readiness: the database, the object store and Temporal answer",
    response_model=HealthReport,
    responses=_READY_RESPONSES,
)
async def ready(request: Request) -> JSONResponse:
    """Probes the database, the object store and Temporal, each answer reused for a second
    (a burst of checks costs one round of I/O). 503 `degraded` when any is unavailable, with
    `checks` saying which and the error's type; 503 `draining` once the process is shutting
    down (SIGTERM), so a load balancer sends its requests elsewhere."""
    return await _ready(request)


@router.get(
    "/health",
    summary="Readiness (the old name of /health/ready)",
    response_model=HealthReport,
    responses=_READY_RESPONSES,
)
async def health(request: Request) -> JSONResponse:
    """The same answer as `GET /health/ready`."""
    return await _ready(request)
