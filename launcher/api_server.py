"""`appeals api`: uvicorn serving the app, with a graceful shutdown.

On SIGTERM each worker process first says it is draining (`/health/ready` answers 503, so a
load balancer stops sending it new requests) for APPEALS_API_SHUTDOWN_DRAIN_SECONDS while it
still serves, then uvicorn stops accepting connections and lets the requests in flight finish
for at most APPEALS_API_GRACEFUL_SHUTDOWN_SECONDS. The process then exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from types import FrameType
from typing import Any

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.routers.health import Readiness
from core.logs import logging_config
from core.settings import Settings, get_settings

log = logging.getLogger(__name__)

Handler = Callable[[int, FrameType | None], Any] | int | None


def create_served_app() -> FastAPI:
    """The factory each uvicorn worker process calls: the app, draining on SIGTERM."""
    app = create_app()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        async with inner(app) as state:
            # Here, inside uvicorn's serve(), the SIGTERM handler is uvicorn's own: wrapped.
            drain_on_sigterm(app.state.readiness, get_settings().api_shutdown_drain_seconds)
            yield state

    app.router.lifespan_context = lifespan
    return app


def drain_on_sigterm(readiness: Readiness, drain_seconds: float) -> None:
    """On SIGTERM: readiness answers 503 at once; uvicorn's own handler (the shutdown) runs
    `drain_seconds` later."""
    loop = asyncio.get_running_loop()
    shutdown: Handler = signal.getsignal(signal.SIGTERM)
    if not callable(shutdown):
        return

    def _draining(signum: int, frame: FrameType | None) -> None:
        if readiness.draining:
            return
        readiness.draining = True
        log.info("SIGTERM: draining for %gs (readiness 503), then shutting down", drain_seconds)
        loop.call_soon_threadsafe(loop.call_later, drain_seconds, shutdown, signum, frame)

    signal.signal(signal.SIGTERM, _draining)


def serve_api(settings: Settings, *, host: str, port: int, workers: int) -> None:
    # uvicorn raises the signal it stopped on again once it is done, to whatever handler was
    # there before it: this one, so that a graceful stop ends with exit 0.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    # An import string and a factory, not an app object: each worker process builds its own app
    # from the same APPEALS_* environment (uvicorn can only fork workers from an import string).
    uvicorn.run(
        "launcher.api_server:create_served_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        # Our JSON lines for uvicorn's own loggers too; its access line is replaced by
        # api/request_log.py's, which leaves the query string out.
        log_config=logging_config(settings.log_format, settings.log_level),
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=settings.api_graceful_shutdown_seconds,
    )
