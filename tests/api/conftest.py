from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from temporalio.client import Client

from api.app import create_app
from core.auth import Role, mint_token
from core.clock import Clock
from core.db import make_engine
from core.db.migrate import create_all_at_head
from core.settings import Settings
from core.storage import make_s3_client
from gateway.temporal import TemporalGateway
from tests.workflows.conftest import running_worker


class Api:
    """An HTTP client on the real app plus token helpers."""

    def __init__(self, http: httpx.AsyncClient, settings: Settings, engine: Engine, app: FastAPI) -> None:
        self.http = http
        self.settings = settings
        self.engine = engine
        self.app = app

    def set_business_date(self, clock: Clock) -> None:
        """The clock the API's rules read the business date from (the system's by default)."""
        self.app.state.clock = clock

    def auth(self, role: Role, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings, role=role, subject=sub)}"}


@pytest_asyncio.fixture(loop_scope="session")
async def api(settings: Settings, engine: Engine, temporal_client: Client) -> AsyncIterator[Api]:
    s3: Any = make_s3_client(settings)
    app = create_app(
        settings, engine=engine, s3_client=s3, gateway=TemporalGateway(settings, temporal_client)
    )
    async with (
        running_worker(temporal_client, settings, engine, s3),
        app.router.lifespan_context(app),
    ):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Api(http, settings, engine, app)


@asynccontextmanager
async def offline_app(
    settings: Settings, tmp_path: Path, *, base_url: str = "http://testserver"
) -> AsyncIterator[tuple[httpx.AsyncClient, Engine, FastAPI]]:
    """The real app on a fresh SQLite file with no S3 and no worker: for the answers it gives
    before any other service is used, or when Temporal (at `settings.temporal_address`) is down."""
    engine = make_engine(f"sqlite:///{tmp_path / 'appeals.db'}")
    create_all_at_head(engine)
    app = create_app(settings, engine=engine, s3_client=object(), gateway=TemporalGateway(settings))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
                yield http, engine, app
    finally:
        engine.dispose()
