"""Signing in and out, the home redirect and the language switch.

In development a sign-in page lets you pick a demo customer or a member of staff by role; in
production that form does not exist (404) and people sign in with the identity provider.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request, Response

from api.deps import SettingsDep
from api.pages.session import check_csrf, end_session, session_principal, start_session
from api.pages.viewers import home_for
from api.pages.web import LANG_COOKIE, LOCALES, PageRoute, redirect, render
from core import staff
from core.auth import STAFF_ROLES, Principal, Role
from core.db import session_scope
from core.errors import InvalidInput, NotFound
from core.seed import DEMO_CUSTOMERS, DEMO_STAFF
from core.settings import Environment

router = APIRouter(route_class=PageRoute, include_in_schema=False, dependencies=[Depends(check_csrf)])


def directory_sign_in(request: Request, principal: Principal, roles: list[Role]) -> Principal:
    """Signs a member of staff in against the staff directory (core/staff.py `sign_in`): the
    principal the session is for. Run in a worker thread."""
    if principal.role not in STAFF_ROLES:
        return principal
    with session_scope(request.app.state.engine) as session:
        return staff.sign_in(session, principal, roles, at=request.app.state.clock.now())


def _safe_next(target: str | None) -> str | None:
    """Only a path on this site: never an open redirect to another host."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return None


@router.get("/")
def home(request: Request) -> Response:
    principal = session_principal(request)
    return redirect(request, home_for(principal) if principal else "/sign-in")


@router.get("/sign-in")
def sign_in_page(request: Request, settings: SettingsDep, next: str | None = None) -> Response:
    return render(
        request,
        "sign_in.html",
        {
            "next": _safe_next(next) or "",
            "dev_sign_in": settings.environment is Environment.DEVELOPMENT,
            "oidc_provider": settings.oidc_display_name,
            "demo_customers": DEMO_CUSTOMERS,
            "demo_staff": DEMO_STAFF,
            "roles": list(Role),
        },
    )


@router.post("/sign-in/dev")
def dev_sign_in(
    request: Request,
    settings: SettingsDep,
    subject: Annotated[str, Form(min_length=1, max_length=100)],
    role: Annotated[Role, Form()],
    next: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    if settings.environment is not Environment.DEVELOPMENT:
        raise NotFound("Development sign-in is not available here.", code="dev_sign_in_disabled")
    subject = subject.strip()
    if not subject or any(ch.isspace() for ch in subject):
        raise InvalidInput("An id has no spaces, e.g. c-1002 or r-1.", code="invalid_subject")
    # The form stands in for the identity provider: a member of staff is recorded in the staff
    # directory (or, if an admin keeps their entry, acts with the roles it gives them).
    principal = directory_sign_in(request, Principal(subject=subject, role=role), [role])
    response = redirect(request, _safe_next(next) or home_for(principal))
    start_session(response, settings, principal)
    return response


@router.post("/sign-out")
def sign_out(request: Request, settings: SettingsDep) -> Response:
    response = redirect(request, "/sign-in")
    end_session(response, settings)
    return response


@router.post("/language")
def choose_language(
    request: Request,
    lang: Annotated[str, Form()],
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    if lang not in LOCALES:
        raise InvalidInput(f"Choose one of {', '.join(LOCALES)}.", code="unknown_language")
    response = redirect(request, _safe_next(next) or "/")
    response.set_cookie(LANG_COOKIE, lang, max_age=365 * 24 * 3600, samesite="lax", path="/")
    return response
