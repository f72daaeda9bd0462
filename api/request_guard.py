"""What every request passes before the app reads it (an ASGI middleware, api/app.py).

For the route a request is for (matched here on the app's own routes, so a new route is
covered without being listed):

1. No NUL in a path id, a declared query parameter or a declared header: a path id with one
   names nothing (404, the route's own `*_not_found`), anything else is 422
   `validation_failed`. (PostgreSQL refuses NUL in text; no value of this API needs one.)
2. A route that takes a bearer token and a body has its token checked before a byte of the
   body is read: 401 as the route itself would answer.
3. Writes that are rate limited per principal (submissions, uploads, decisions;
   core/rate_limits.py) are counted next, still before the body: 429 `rate_limited` with
   `Retry-After`.
4. The body is capped: a JSON body at `json_body_max_bytes`, a form at `form_body_max_bytes`,
   both read here (at most the cap) and refused with 413 `payload_too_large` past it, and a
   JSON body holding a NUL or an unpaired surrogate in any string is 422. A multipart upload
   the route streams itself is counted as it is read: past `document_max_bytes` plus the
   envelope the route's read fails with 413 `document_too_large` (the ledger import: its own
   limit). A declared `Content-Length` over the cap is refused before anything is read. A
   route that reads no body gets the JSON cap (a page: the form cap) on whatever reads it.

Answers given here are the route's kind: problem+json for the API, an HTML page for the web
pages (api/pages/web.py `PageRoute`)."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final
from urllib.parse import parse_qsl

from anyio import to_thread
from fastapi import FastAPI, params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path, get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import get_principal, principal_from_authorization
from api.openapi import PROBLEMS
from api.pages.session import session_principal
from api.pages.web import PageRoute, error_page
from api.problems import problem
from api.streaming_form import ENVELOPE_ALLOWANCE
from core.auth import Principal
from core.errors import DomainError, InvalidInput, NotFound, PayloadTooLarge, TooManyRequests
from core.rate_limits import Action, take
from core.settings import Settings

BODY_METHODS: Final = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# What a ledger import may carry: api/routers/ledger.py MAX_UPLOAD_BYTES plus the envelope.
LEDGER_IMPORT_MAX_BYTES: Final = 64 * 1024 * 1024 + ENVELOPE_ALLOWANCE


class BodyKind(StrEnum):
    NONE = "none"  # FastAPI reads no body for the route (a dependency may read a form)
    JSON = "json"
    FORM = "form"
    STREAM = "stream"  # the route reads its own multipart body as it arrives


# The routes that stream their own body, and the problem a body over their cap is.
STREAMED: Final[dict[tuple[str, str], str]] = {
    ("POST", "/appeals/{appeal_id}/documents"): "document_too_large",
    ("POST", "/app/appeals/{appeal_id}/documents"): "document_too_large",
    ("POST", "/admin/ledger/import"): "payload_too_large",
    # Risk events: the route reads its JSON itself (per-event errors, the signature over the raw
    # body) and caps it at core/lender/risk_events.py MAX_BODY_BYTES.
    ("POST", "/admin/ledger/events"): "payload_too_large",
}
# The writes counted per principal (the JSON API's and the web pages' doors alike).
RATE_LIMITED: Final[dict[tuple[str, str], Action]] = {
    ("POST", "/appeals"): Action.SUBMISSION,
    ("POST", "/app/appeals"): Action.SUBMISSION,
    ("POST", "/appeals/{appeal_id}/documents"): Action.UPLOAD,
    ("POST", "/appeals/{appeal_id}/documents/uploads"): Action.UPLOAD,
    ("POST", "/app/appeals/{appeal_id}/documents"): Action.UPLOAD,
    ("POST", "/review-tasks/{task_id}/decision"): Action.DECISION,
    ("POST", "/review/tasks/{task_id}/decision"): Action.DECISION,
}
# A path id with a NUL names nothing: the route's own answer for an id it does not know.
_NOT_FOUND: Final = {
    "appeal_id": ("appeal_not_found", "Appeal"),
    "task_id": ("task_not_found", "Review task"),
    "document_id": ("document_not_found", "Document"),
    "customer_id": ("customer_not_found", "Customer"),
    "staff_id": ("staff_member_not_found", "Staff member"),
}
# Text no value of this API holds: NUL (PostgreSQL refuses it) and unpaired surrogates (not
# encodable as UTF-8).
_BAD_TEXT: Final = re.compile("[\x00\ud800-\udfff]")
_BAD_TEXT_MESSAGE: Final = "Text may not contain NUL characters or unpaired surrogates"


@dataclass(frozen=True)
class Rule:
    """What the guard knows of one route."""

    path: str
    methods: frozenset[str]
    regex: re.Pattern[str]
    body: BodyKind
    bearer: bool  # takes a bearer token (api/deps.py get_principal)
    page: bool  # a web page: answers are HTML pages
    path_params: tuple[str, ...]
    query: frozenset[str]
    headers: frozenset[str]  # lower case
    too_large_code: str = "payload_too_large"


def _dependants(dependant: Dependant) -> Iterator[Dependant]:
    yield dependant
    for sub in dependant.dependencies:
        yield from _dependants(sub)


def _api_routes(app: FastAPI) -> list[Any]:
    """The app's API routes with their full paths (FastAPI 0.13x+ keeps included routers as one
    entry each in `app.routes` and resolves their routes through route contexts)."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - an older FastAPI lists every route in app.routes
        return [route for route in app.routes if isinstance(route, APIRoute)]
    return [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]


def _body_kind(route: Any, method: str) -> BodyKind:
    if (method, route.path_format) in STREAMED:
        return BodyKind.STREAM
    if route.body_field is None:
        return BodyKind.NONE
    forms = [p for d in _dependants(route.dependant) for p in d.body_params]
    if any(isinstance(p.field_info, params.Form) for p in forms):
        return BodyKind.FORM
    return BodyKind.JSON


def route_rules(app: FastAPI) -> list[Rule]:
    rules: list[Rule] = []
    for route in _api_routes(app):
        parts = list(_dependants(route.dependant))
        calls = {part.call for part in parts}
        regex, _, _ = compile_path(route.path_format)
        for method in sorted(route.methods or ()):
            kind = _body_kind(route, method)
            rules.append(
                Rule(
                    path=route.path_format,
                    methods=frozenset({method}),
                    regex=regex,
                    body=kind,
                    bearer=get_principal in calls,
                    page=isinstance(route.original_route, PageRoute),
                    path_params=tuple(p.name for part in parts for p in part.path_params),
                    query=frozenset(p.alias for part in parts for p in part.query_params),
                    headers=frozenset(p.alias.lower() for part in parts for p in part.header_params),
                    too_large_code=STREAMED.get((method, route.path_format), "payload_too_large"),
                )
            )
    return rules


def rules_of(app: FastAPI) -> list[Rule]:
    """The app's rules, made once (the routes are all in place by the first request)."""
    rules: list[Rule] | None = getattr(app.state, "request_guard_rules", None)
    if rules is None:
        rules = app.state.request_guard_rules = route_rules(app)
    return rules


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """The methods some route takes on this path (a 405's `Allow`), HEAD with GET."""
    path = get_route_path(scope)
    methods = {method for rule in rules_of(app) if rule.regex.match(path) for method in rule.methods}
    if "GET" in methods:
        methods.add("HEAD")
    order = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return sorted(methods, key=lambda m: (order.index(m) if m in order else len(order), m))


def body_cap(rule: Rule, settings: Settings) -> int:
    if rule.body is BodyKind.STREAM:
        if rule.too_large_code == "document_too_large":
            return settings.document_max_bytes + ENVELOPE_ALLOWANCE
        return LEDGER_IMPORT_MAX_BYTES
    if rule.body is BodyKind.FORM or (rule.body is BodyKind.NONE and rule.page):
        return settings.form_body_max_bytes
    return settings.json_body_max_bytes


def _too_large(rule: Rule, settings: Settings, cap: int) -> PayloadTooLarge:
    if rule.too_large_code == "document_too_large":
        limit = settings.document_max_bytes
        return PayloadTooLarge(
            f"The file is larger than the {limit // (1024 * 1024)} MiB limit.",
            code="document_too_large",
            max_bytes=limit,
        )
    size = f"{cap // (1024 * 1024)} MiB" if cap >= 1024 * 1024 else f"{math.ceil(cap / 1024)} KiB"
    return PayloadTooLarge(
        f"The request body is larger than the {size} this operation takes.",
        code="payload_too_large",
        max_bytes=cap,
    )


def _bad_text(value: Any, where: list[str | int]) -> list[str | int] | None:
    """Where in a parsed JSON value a string holds a NUL or an unpaired surrogate."""
    if isinstance(value, str):
        return where if _BAD_TEXT.search(value) else None
    if isinstance(value, dict):
        for key, item in value.items():
            found = [*where, key] if _BAD_TEXT.search(key) else _bad_text(item, [*where, key])
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = _bad_text(item, [*where, index])
            if found is not None:
                return found
    return None


def _invalid_text(location: list[str | int]) -> InvalidInput:
    where = ".".join(str(part) for part in location)
    return InvalidInput(
        f"The request is not valid: {where}: {_BAD_TEXT_MESSAGE}",
        code="validation_failed",
        errors=[{"location": location, "message": _BAD_TEXT_MESSAGE, "type": "string_characters"}],
    )


def _body_text_problem(body: bytes, content_type: str) -> InvalidInput | None:
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/x-www-form-urlencoded":
        for name, value in parse_qsl(body.decode("latin-1"), keep_blank_values=True):
            if _BAD_TEXT.search(name) or _BAD_TEXT.search(value):
                return _invalid_text(["body", name])
        return None
    if media.startswith("multipart/"):
        return _invalid_text(["body"]) if b"\x00" in body else None
    try:
        parsed = json.loads(body)
    except UnicodeDecodeError:
        # FastAPI would answer an undocumented 400; it is a body that is not valid JSON (422).
        message = "The body is not JSON in UTF-8"
        return InvalidInput(
            f"The request is not valid: body: {message}",
            code="validation_failed",
            errors=[{"location": ["body"], "message": message, "type": "json_invalid"}],
        )
    except ValueError:
        return None  # not JSON: the route's own parsing answers (422 json_invalid)
    found = _bad_text(parsed, ["body"])
    return _invalid_text(found) if found is not None else None


class _Refused(Exception):
    def __init__(self, error: DomainError, headers: dict[str, str] | None = None) -> None:
        self.error, self.headers = error, headers or {}


class RequestGuard:
    """The middleware. `app.state` gives it the settings, engine and clock."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def _rule(self, scope: Scope) -> tuple[Rule, dict[str, str]] | None:
        path, method = get_route_path(scope), scope["method"]
        method = "GET" if method == "HEAD" else method
        for rule in rules_of(scope["app"]):
            if method in rule.methods:
                match = rule.regex.match(path)
                if match:
                    return rule, match.groupdict()
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        found = self._rule(scope)
        if found is None:  # not a route of ours (static files, a 404 or 405): nothing is read
            await self.app(scope, receive, send)
            return
        rule, path_params = found
        try:
            receive = await self._admit(scope, receive, rule, path_params)
        except _Refused as refused:
            await self._answer(scope, receive, send, rule, refused)
            return
        await self.app(scope, receive, send)

    async def _admit(
        self, scope: Scope, receive: Receive, rule: Rule, path_params: dict[str, str]
    ) -> Receive:
        """The `receive` the app is to read the body through; _Refused if it is refused."""
        _check_text(scope, rule, path_params)
        if scope["method"] not in BODY_METHODS:
            return receive
        state = scope["app"].state
        settings: Settings = state.settings
        headers = Headers(scope=scope)
        principal: Principal | None = None
        if rule.bearer:
            try:
                principal = principal_from_authorization(settings, headers.get("authorization", ""))
            except DomainError as exc:
                raise _Refused(exc) from exc
        action = RATE_LIMITED.get((scope["method"], rule.path))
        if action is not None:
            if rule.page:
                principal = session_principal(Request(scope))
            if principal is not None:
                await _count(state, settings, principal, action)
        cap = body_cap(rule, settings)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise _Refused(_too_large(rule, settings, cap))
        if rule.body in (BodyKind.JSON, BodyKind.FORM):
            body = await _read_capped(receive, cap)
            if body is None:
                raise _Refused(_too_large(rule, settings, cap))
            problem_ = _body_text_problem(body, headers.get("content-type", ""))
            if problem_ is not None:
                raise _Refused(problem_)
            return _replay(body, receive)
        return _counting(receive, cap, lambda: _too_large(rule, settings, cap))

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, rule: Rule, refused: _Refused
    ) -> None:
        error = refused.error
        if scope["method"] in BODY_METHODS:
            # Answered before the body was read: close the connection rather than let the
            # server take in the rest of a body nobody will read.
            refused.headers.setdefault("Connection", "close")
        request = Request(scope, receive)
        response: Response
        if rule.page:
            response = error_page(request, error.status_code, error.detail, error.code)
            response.headers.update(refused.headers)
        else:
            response = problem(
                error.status_code,
                error.code,
                error.title,
                error.detail,
                instance=request.url.path,
                extra=error.extra,
                headers=refused.headers,
            )
        await response(scope, receive, send)


def _check_text(scope: Scope, rule: Rule, path_params: dict[str, str]) -> None:
    for name, value in path_params.items():
        if "\x00" in value:
            code, label = _NOT_FOUND.get(name, ("not_found", "The resource"))
            if 404 not in PROBLEMS.get(code, {}):  # an id this API names no answer for
                code = "not_found"
            raise _Refused(NotFound(f"{label} was not found: its id holds a NUL character.", code=code))
    if rule.query:
        for name, value in QueryParams(scope.get("query_string", b"")).multi_items():
            if name in rule.query and _BAD_TEXT.search(value):
                raise _Refused(_invalid_text(["query", name]))
    if rule.headers:
        for raw_name, raw_value in scope.get("headers", []):
            name = raw_name.decode("latin-1").lower()
            if name in rule.headers and b"\x00" in raw_value:
                raise _Refused(_invalid_text(["header", name]))


async def _count(state: Any, settings: Settings, principal: Principal, action: Action) -> None:
    verdict = await to_thread.run_sync(
        take, state.engine, settings, principal.actor, action, state.clock.now()
    )
    if verdict.allowed:
        return
    window = verdict.window_seconds
    per = "minute" if window == 60 else f"{window} seconds"
    raise _Refused(
        TooManyRequests(
            f"You made {verdict.limit} {action.value}s in the last {per}, the most we take; "
            f"try again in {verdict.retry_after} s.",
            code="rate_limited",
            retry_after=verdict.retry_after,
        ),
        {"Retry-After": str(verdict.retry_after)},
    )


async def _read_capped(receive: Receive, cap: int) -> bytes | None:
    """The whole body, or None as soon as it is longer than `cap` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > cap:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # after the body: the disconnect, when it comes
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _counting(
    receive: Receive, cap: int, too_large: Callable[[], DomainError]
) -> Callable[[], Awaitable[Message]]:
    """`receive` for a body the route reads itself: past `cap`, reading it fails with
    `too_large()` (a DomainError, answered by the route's own error handling)."""
    size = 0

    async def counted() -> Message:
        nonlocal size
        message = await receive()
        if message["type"] == "http.request":
            size += len(message.get("body", b""))
            if size > cap:
                raise too_large()
        return message

    return counted
