"""Liveness of the API and its dependencies."""

from __future__ import annotations

import asyncio
from typing import Any

from anyio import to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy import text

from api.deps import EngineDep, GatewayDep, S3Dep, SettingsDep

router = APIRouter(tags=["health"])


class HealthReport(BaseModel):
    status: str = Field(description="`ok`, or `degraded` when any dependency is unavailable.")
    checks: dict[str, str] = Field(
        description="Per dependency (database, object_store, temporal): `ok` or `unavailable: <error>`.",
        examples=[{"database": "ok", "object_store": "ok", "temporal": "unavailable: TimeoutError"}],
    )


@router.get(
    "/health",
    summary="Whether the API and its dependencies are up",
    response_model=HealthReport,
    responses={503: {"model": HealthReport, "description": "A dependency is unavailable (`degraded`)."}},
)
async def health(engine: EngineDep, s3: S3Dep, settings: SettingsDep, gateway: GatewayDep) -> JSONResponse:
    def _db() -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def _s3() -> None:
        s3.head_bucket(Bucket=settings.s3_bucket)

    async def _temporal() -> None:
        client = await gateway.client()
        await asyncio.wait_for(client.service_client.check_health(), 5)

    checks: dict[str, Any] = {}
    for name, probe in (
        ("database", lambda: to_thread.run_sync(_db)),
        ("object_store", lambda: to_thread.run_sync(_s3)),
        ("temporal", _temporal),
    ):
        try:
            await asyncio.wait_for(probe(), 10)
            checks[name] = "ok"
        except Exception as exc:  # a health probe reports every failure, whatever it is
            checks[name] = f"unavailable: {type(exc).__name__}"
    healthy = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "degraded", "checks": checks},
        status_code=200 if healthy else 503,
    )
