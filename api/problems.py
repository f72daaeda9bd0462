"""RFC 9457 problem+json responses for every error the API gives."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from api.pages.web import error_page, wants_html
from core.errors import DomainError

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


def problem(
    status: int,
    code: str,
    title: str,
    detail: str,
    *,
    instance: str | None = None,
    extra: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:problem:appeals:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if instance:
        body["instance"] = instance
    # Extension members never override the standard ones.
    body.update({k: v for k, v in jsonable_encoder(extra or {}).items() if k not in body})
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    if status == 429 and "retry_after" in body:
        headers.setdefault("Retry-After", str(body["retry_after"]))
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers or None)


_HTTP_CODES = {
    400: ("bad_request", "Bad request"),
    401: ("unauthorized", "Unauthorized"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
}


def install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return problem(
            exc.status_code,
            exc.code,
            exc.title,
            exc.detail,
            instance=request.url.path,
            extra=exc.extra,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {
                "location": list(error.get("loc", ())),
                "message": error.get("msg", ""),
                "type": error.get("type"),
            }
            for error in exc.errors()
        ]
        return problem(
            422,
            "validation_failed",
            "Unprocessable content",
            "The request is not valid: "
            + "; ".join(f"{'.'.join(str(p) for p in e['location'])}: {e['message']}" for e in errors),
            instance=request.url.path,
            extra={"errors": errors},
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every method the path takes, not only one route's
            from api.request_guard import allowed_methods

            headers["Allow"] = ", ".join(allowed_methods(request.app, request.scope)) or headers.get(
                "Allow", ""
            )
        if wants_html(request):  # a person who followed a wrong link gets a page, not JSON
            page = error_page(request, exc.status_code, str(exc.detail), code)
            page.headers.update(headers)
            return page
        return problem(
            exc.status_code, code, title, str(exc.detail), instance=request.url.path, headers=headers
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(
            500,
            "internal_error",
            "Internal server error",
            "Something went wrong on our side; nothing you sent was lost. Please retry.",
            instance=request.url.path,
        )
