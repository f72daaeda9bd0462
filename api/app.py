"""The FastAPI application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.engine import Engine

from api.db_reads import DatabaseReads
from api.docs_pages import install_docs
from api.metrics import HttpMetrics, MetricsMiddleware, metrics_endpoint
from api.openapi import install_openapi
from api.pages import install_pages
from api.problems import install_problem_handlers
from api.request_guard import RequestGuard
from api.request_log import RequestLog
from api.routers import (
    appeals,
    assessments,
    documents,
    health,
    ledger,
    me,
    portfolio_reviews,
    review_tasks,
    staff,
)
from api.routers.health import Readiness, readiness_probes
from core.clock import SYSTEM_CLOCK, Clock
from core.db import make_engine
from core.db.migrate import require_head
from core.settings import Settings, get_settings
from core.storage import ensure_bucket, make_s3_client
from core.tracing import API_SERVICE, Tracing, tracing_from_settings
from gateway.temporal import TemporalGateway, forward_core_logs


def create_app(
    settings: Settings | None = None,
    *,
    engine: Engine | None = None,
    s3_client: Any = None,
    gateway: TemporalGateway | None = None,
    clock: Clock = SYSTEM_CLOCK,
    tracing: Tracing | None = None,
) -> FastAPI:
    """The app. Called without arguments it reads its settings from the environment (APPEALS_*,
    core/settings.py) and makes its own engine, S3 client and Temporal gateway: the factory
    uvicorn's worker processes call (`appeals api`: `api.app:create_app`, factory=True)."""
    settings = settings or get_settings()
    # Traces only when an OTLP endpoint is configured (core/tracing.py); a test passes its own.
    tracing = tracing or tracing_from_settings(settings, API_SERVICE)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.clock = clock  # the business date of ledger imports and submissions
        app.state.engine = engine or make_engine(settings.effective_database_url)
        # Migrations run before (`appeals db upgrade`, the compose stack's migrate job), never
        # here: API processes starting together would race to migrate.
        require_head(app.state.engine)
        app.state.s3 = s3_client or make_s3_client(settings)
        if gateway is None:
            forward_core_logs()  # this process's own client: its core's lines as ours
        app.state.gateway = gateway or TemporalGateway(
            settings, interceptors=[tracing.interceptor] if tracing else []
        )
        app.state.readiness = Readiness(readiness_probes(app.state))
        app.state.reads = DatabaseReads(settings.api_read_threads)
        yield
        if engine is None:
            app.state.engine.dispose()

    app = FastAPI(
        title="Limit-restore appeals",
        version="0.1.0",
        description="Customers appeal a frozen or reduced credit limit; reviewers decide.",
        lifespan=lifespan,
        # /docs and /redoc come from api/docs_pages.py: assets served locally, no CDN.
        docs_url=None,
        redoc_url=None,
    )
    install_problem_handlers(app)
    # Before the app reads a request: NULs, the token, rate limits, then a capped body.
    app.add_middleware(RequestGuard)
    # Outside the guard, so that what it refuses is on the access line too.
    app.add_middleware(RequestLog)
    # Outside the guard too, so that its refusals (413, 429, ...) are counted (api/metrics.py).
    metrics = HttpMetrics()
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    # Open like /health: request counts by route template, no ids, nothing about anyone
    # (docs/metrics.md); not in the OpenAPI document, which describes the product's API.
    app.add_api_route("/metrics", metrics_endpoint(metrics), methods=["GET"], include_in_schema=False)
    install_docs(app)
    for module in (
        appeals,
        assessments,
        documents,
        review_tasks,
        me,
        ledger,
        portfolio_reviews,
        staff,
        health,
    ):
        app.include_router(module.router)
    install_pages(app)
    install_openapi(app)
    if tracing:
        tracing.instrument(app)
    return app


def ensure_storage(settings: Settings) -> None:
    ensure_bucket(make_s3_client(settings), settings.s3_bucket)
