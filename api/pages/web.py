"""Rendering the web pages: one Jinja2 environment (templates/pages/, autoescaped), the viewer's
language and time zone, and HTML error pages for page routes.

Every page is written in both languages side by side: `{{ tr("My appeals", "我的申诉") }}`
picks the viewer's. The language is the viewer's choice (the switch, a `lang` cookie), else a
customer's own locale, else the browser's Accept-Language, else English. Times are shown in the
zone the browser reports (a `tz` cookie set by static/js/pages.js), else the configured one
(Asia/Shanghai by default).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Mapping
from datetime import date, datetime
from typing import Any, Final
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context, select_autoescape
from jinja2.runtime import Context

from api.pages.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    SignInRequired,
    csrf_token,
    ensure_csrf_cookie,
    session_principal,
)
from core.appeals.status_reason import reader_locale
from core.auth import Principal, Role
from core.db import session_scope
from core.db.ledger_tables import Customer
from core.errors import DomainError
from core.notifications.rendering import TEMPLATES_DIR, format_money, pick_locale

LANG_COOKIE: Final = "lang"
TZ_COOKIE: Final = "tz"
LOCALES: Final = ("en", "zh-CN")


@functools.cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["tr"] = _tr
    env.filters["money"] = format_money
    env.filters["datetime"] = _datetime
    env.filters["date"] = _date
    return env


@pass_context
def _tr(context: Context, en: str, zh: str) -> str:
    return zh if context["locale"] == "zh-CN" else en


@pass_context
def _datetime(context: Context, value: datetime | None) -> str:
    if value is None:
        return ""
    local = value.astimezone(context["tz"])
    if context["locale"] == "zh-CN":
        return f"{local.year}年{local.month}月{local.day}日 {local:%H:%M}"
    return f"{local.day} {local:%b %Y, %H:%M}"


@pass_context
def _date(context: Context, value: date | datetime | None) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = value.astimezone(context["tz"]).date()
    if context["locale"] == "zh-CN":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {value:%b %Y}"


def _customer_locale(request: Request, principal: Principal) -> str | None:
    with session_scope(request.app.state.engine, read_only=True) as session:
        customer = session.get(Customer, principal.subject)
        return customer.locale if customer else None


def viewer_locale(request: Request, principal: Principal | None) -> str:
    chosen = request.cookies.get(LANG_COOKIE)
    if chosen in LOCALES:
        return str(chosen)
    if principal is not None and principal.role is Role.CUSTOMER:
        own = _customer_locale(request, principal)
        if own:
            return pick_locale(own)
    return reader_locale(
        customer_locale=None, accept_language=request.headers.get("accept-language"), is_customer=False
    )


def viewer_zone(request: Request) -> ZoneInfo:
    for name in (request.cookies.get(TZ_COOKIE), request.app.state.settings.display_timezone):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return ZoneInfo("UTC")


def page_context(request: Request, principal: Principal | None) -> dict[str, Any]:
    """What every page template sees, besides its own values."""
    cached = getattr(request.state, "page_context", None)
    if cached is not None:
        return dict(cached)
    context = {
        "request": request,
        "viewer": principal,
        "locale": viewer_locale(request, principal),
        "tz": viewer_zone(request),
        "csrf_token": csrf_token(request),
        "csrf_field": CSRF_FIELD,
        "csrf_header": CSRF_HEADER,
        "is_staff": principal is not None and principal.role is not Role.CUSTOMER,
        "static": lambda path: f"/static/{path}",
    }
    request.state.page_context = context
    return dict(context)


def render(
    request: Request,
    template: str,
    values: Mapping[str, Any] | None = None,
    *,
    principal: Principal | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    context = page_context(request, principal if principal is not None else session_principal(request))
    context.update(values or {})
    html = environment().get_template(f"pages/{template}").render(context)
    response = HTMLResponse(html, status_code=status_code, headers=dict(headers or {}))
    # Pages show personal data: never from a shared cache.
    response.headers.setdefault("Cache-Control", "no-store")
    ensure_csrf_cookie(request, response)
    return response


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def redirect(request: Request, url: str) -> Response:
    """A redirect after a form post; htmx follows HX-Redirect instead of swapping the page."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return redirect(request, f"/sign-in?next={quote(target, safe='')}")


_ERROR_TITLES: Final = {
    400: ("Something is wrong with this request", "请求有误"),
    401: ("Please sign in", "请先登录"),
    403: ("You cannot do this", "您无权执行此操作"),
    404: ("Page not found", "页面不存在"),
    409: ("This has changed in the meantime", "内容已被更新"),
    410: ("This link has expired", "链接已过期"),
    412: ("Someone else changed this first", "其他人已先行修改"),
    413: ("The file is too large", "文件过大"),
    415: ("This kind of file is not accepted", "不支持此文件类型"),
    422: ("Please check what you entered", "请检查您填写的内容"),
    503: ("The service is busy; please try again shortly", "服务繁忙，请稍后重试"),
}


def error_page(request: Request, status_code: int, detail: str, code: str | None = None) -> HTMLResponse:
    en, zh = _ERROR_TITLES.get(status_code, ("Something went wrong", "出错了"))
    template = "error_fragment.html" if is_htmx(request) else "error.html"
    response = render(
        request,
        template,
        {"status_code": status_code, "title_en": en, "title_zh": zh, "detail": detail, "code": code},
        status_code=status_code,
    )
    if is_htmx(request):
        # htmx swaps error answers into the page's message area instead of ignoring them.
        response.headers["HX-Retarget"] = "#page-message"
        response.headers["HX-Reswap"] = "innerHTML"
    return response


Handler = Callable[[Request], Coroutine[Any, Any, Response]]


class PageRoute(APIRoute):
    """A route that answers a person: sign-in redirects and HTML error pages instead of
    problem+json. The same domain errors the JSON API raises give the same status codes."""

    def get_route_handler(self) -> Handler:
        handler = super().get_route_handler()

        async def page_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return sign_in_redirect(request)
            except DomainError as exc:
                return error_page(request, exc.status_code, exc.detail, exc.code)
            except RequestValidationError as exc:
                fields = ", ".join(str(e.get("loc", ("?",))[-1]) for e in exc.errors())
                return error_page(request, 422, f"Please check: {fields}.", "validation_failed")

        return page_handler


def wants_html(request: Request) -> bool:
    """A browser asking for a page (not an API client asking for JSON)."""
    accept = request.headers.get("accept", "")
    return "text/html" in accept and "application/json" not in accept
