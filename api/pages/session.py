"""The web pages' sign-in: a cookie session and CSRF protection.

The session cookie holds the same signed token the JSON API takes as a bearer token, so a page
acts for exactly the principal the API would see (core/auth.py verifies both). It is HttpOnly,
SameSite=Lax, and Secure outside development.

CSRF: every browser gets a random `appeals_csrf` cookie (HttpOnly); the token a form or htmx
request must send back is an HMAC of it under the service secret. A cross-site page can make
the browser send the cookie but can neither read it nor compute the token.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Final

from fastapi import Request, Response

from api.request_log import note_caller
from core.auth import Principal, mint_token, verify_token
from core.errors import Forbidden, Unauthorized
from core.settings import Environment, Settings

SESSION_COOKIE: Final = "appeals_session"
CSRF_COOKIE: Final = "appeals_csrf"
CSRF_FIELD: Final = "csrf_token"
CSRF_HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})


class SignInRequired(Exception):
    """A page that needs a signed-in person was asked for without a valid session."""


def _secure(settings: Settings) -> bool:
    return settings.environment is not Environment.DEVELOPMENT


def session_principal(request: Request) -> Principal | None:
    """Who the session cookie says the caller is; None without a valid one."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    try:
        principal = verify_token(request.app.state.settings, token)
    except Unauthorized:
        return None
    note_caller(request, principal)
    return principal


def start_session(response: Response, settings: Settings, principal: Principal) -> None:
    # Stamped with the machine's time, not the app's business date (app.state.clock): the token
    # is verified against the machine's clock, like every bearer token.
    token = mint_token(settings, role=principal.role, subject=principal.subject)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(settings.jwt_ttl.total_seconds()),
        httponly=True,
        secure=_secure(settings),
        samesite="lax",
        path="/",
    )


def end_session(response: Response, settings: Settings) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, secure=_secure(settings), samesite="lax")


def _csrf_seed(request: Request) -> str:
    """The browser's CSRF seed: its cookie, or a new one that `ensure_csrf_cookie` will set."""
    seed = request.cookies.get(CSRF_COOKIE) or getattr(request.state, "new_csrf_seed", None)
    if not seed:
        seed = secrets.token_urlsafe(32)
        request.state.new_csrf_seed = seed
    return str(seed)


def csrf_token(request: Request) -> str:
    secret = request.app.state.settings.jwt_secret.encode()
    return hmac.new(secret, _csrf_seed(request).encode(), hashlib.sha256).hexdigest()


def ensure_csrf_cookie(request: Request, response: Response) -> None:
    seed = getattr(request.state, "new_csrf_seed", None)
    if seed and not request.cookies.get(CSRF_COOKIE):
        response.set_cookie(
            CSRF_COOKIE,
            seed,
            httponly=True,
            secure=_secure(request.app.state.settings),
            samesite="lax",
            path="/",
        )


async def check_csrf(request: Request) -> None:
    """Refuses an unsafe request that does not carry this browser's CSRF token (form field or
    header, as htmx sends it)."""
    if request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    verify_csrf(request, sent)


def verify_csrf(request: Request, sent: str | None) -> None:
    """Refuses `sent` unless it is this browser's CSRF token. For a route that reads its own
    body (a streamed upload), which the form parsing of `check_csrf` would consume."""
    seed = request.cookies.get(CSRF_COOKIE)
    if not seed or not sent or not hmac.compare_digest(sent, csrf_token(request)):
        raise Forbidden(
            "This form has expired or did not come from this site. Reload the page and try again.",
            code="csrf_failed",
        )


def require_signed_in(request: Request) -> Principal:
    principal = session_principal(request)
    if principal is None:
        raise SignInRequired()
    return principal


def forbid_unless(allowed: bool, what: str) -> None:
    if not allowed:
        raise Forbidden(f"This page is for {what}.", code="role_required")
