"""One JSON line per request (the access line), and each request's log context.

Instead of uvicorn's access log, which quotes the query string: the method, the route's
template (`/appeals/{appeal_id}`, not the path), the status and the duration, with the
request's context (api/deps.py adds the caller's role; the path's appeal and task ids are
added here) and, when traced, the trace id. Health checks and scrapes log at DEBUG.
"""

from __future__ import annotations

import logging
import time

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.auth import Principal
from core.logs import add_log_context, log_context, log_event
from core.tracing import annotate_span

ACCESS_LOGGER = "appeals.access"
# Path parameters that are ids of this service's records: on the line and the span.
CONTEXT_PARAMS = ("appeal_id", "task_id")
QUIET_PREFIXES = ("/health", "/metrics")

access_log = logging.getLogger(ACCESS_LOGGER)


def note_caller(request: Request, principal: Principal) -> None:
    """The caller's role and the ids in the path, on the request's log lines and its span
    (the role only: the subject may be a customer's id, which the appeal id already implies)."""
    ids = {name: request.path_params.get(name) for name in CONTEXT_PARAMS}
    add_log_context(actor_role=principal.role.value, **ids)
    annotate_span(actor_role=principal.role.value, **ids)


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app raises before it answers
        started = time.perf_counter()

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with log_context():
            try:
                await self.app(scope, receive, send_status)
            finally:
                # The router writes the matched route into the scope it was given (this one).
                template = getattr(scope.get("route"), "path", None)
                params = scope.get("path_params") or {}
                add_log_context(**{name: params.get(name) for name in CONTEXT_PARAMS})
                path = template or ""
                level = logging.DEBUG if path.startswith(QUIET_PREFIXES) else logging.INFO
                if status >= 500:
                    level = logging.ERROR
                log_event(
                    access_log,
                    level,
                    "http_request",
                    method=scope["method"],
                    route=template or "unmatched",
                    status=status,
                    duration_ms=round((time.perf_counter() - started) * 1000, 1),
                )
