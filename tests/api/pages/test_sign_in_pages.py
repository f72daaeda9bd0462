"""Signing in to the web pages: the cookie session, CSRF, the development form, the language."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from core.settings import Environment, Settings
from tests.api.conftest import offline_app
from tests.api.pages.helpers import csrf_from, sign_in

pytestmark = pytest.mark.asyncio(loop_scope="session")

PRODUCTION_SECRET = "a-production-secret-of-more-than-32-characters"


@pytest_asyncio.fixture(loop_scope="session")
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with offline_app(Settings(data_dir=tmp_path), tmp_path) as (client, _, _):
        yield client


async def test_signing_in_sets_an_httponly_lax_session_and_lands_on_the_home_page(
    http: httpx.AsyncClient,
) -> None:
    assert (await http.get("/")).headers["location"] == "/sign-in"
    await sign_in(http, "c-1002", "customer")
    cookie = next(c for c in http.cookies.jar if c.name == "appeals_session")
    assert cookie.has_nonstandard_attr("HttpOnly") and not cookie.secure  # development: plain http
    assert (await http.get("/")).headers["location"] == "/app"


@pytest.mark.parametrize(
    ("subject", "role", "home"),
    [
        ("r-1", "reviewer", "/review"),
        ("s-1", "senior_reviewer", "/review"),
        ("sup-1", "supervisor", "/dashboard"),
    ],
)
async def test_staff_land_on_their_pages(http: httpx.AsyncClient, subject: str, role: str, home: str) -> None:
    await sign_in(http, subject, role)
    assert (await http.get("/")).headers["location"] == home


async def test_a_post_without_the_csrf_token_is_refused(http: httpx.AsyncClient) -> None:
    await http.get("/sign-in")  # the browser has its CSRF cookie
    refused = await http.post("/sign-in/dev", data={"subject": "c-1002", "role": "customer"})
    assert refused.status_code == 403 and "expired or did not come from this site" in refused.text
    forged = await http.post(
        "/sign-in/dev", data={"subject": "c-1002", "role": "customer", "csrf_token": "0" * 64}
    )
    assert forged.status_code == 403
    assert "appeals_session" not in http.cookies


async def test_a_token_from_another_browser_is_refused(http: httpx.AsyncClient, tmp_path: Path) -> None:
    page = await http.get("/sign-in")
    token = csrf_from(page.text)
    http.cookies.clear()  # another browser: a CSRF cookie of its own
    await http.get("/sign-in")
    refused = await http.post(
        "/sign-in/dev", data={"subject": "c-1", "role": "customer", "csrf_token": token}
    )
    assert refused.status_code == 403


async def test_production_has_no_development_sign_in(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, environment=Environment.PRODUCTION, jwt_secret=PRODUCTION_SECRET)
    # Outside development every cookie is Secure: the browser sends them over https only.
    async with offline_app(settings, tmp_path, base_url="https://appeals.example") as (http, _, _):
        page = await http.get("/sign-in")
        assert page.status_code == 200 and "/sign-in/dev" not in page.text
        assert "Sign-in is not set up on this server yet" in page.text  # no provider configured
        token = csrf_from(page.text)
        refused = await http.post(
            "/sign-in/dev", data={"subject": "sup-1", "role": "supervisor", "csrf_token": token}
        )
        assert refused.status_code == 404 and "appeals_session" not in http.cookies
        csrf_cookie = next(c for c in http.cookies.jar if c.name == "appeals_csrf")
        assert csrf_cookie.secure


async def test_the_language_switch_and_accept_language(http: httpx.AsyncClient) -> None:
    chinese = await http.get("/sign-in", headers={"Accept-Language": "zh-CN,zh;q=0.9"})
    assert '<html lang="zh-CN">' in chinese.text and "登录" in chinese.text
    token = csrf_from(chinese.text)
    switched = await http.post("/language", data={"lang": "en", "next": "/sign-in", "csrf_token": token})
    assert switched.status_code == 303 and switched.headers["location"] == "/sign-in"
    english = await http.get("/sign-in", headers={"Accept-Language": "zh-CN"})
    assert '<html lang="en">' in english.text


async def test_redirects_stay_on_this_site(http: httpx.AsyncClient) -> None:
    page = await http.get("/sign-in", params={"next": "//evil.example/steal"})
    token = csrf_from(page.text)
    answer = await http.post(
        "/sign-in/dev",
        data={"subject": "c-1", "role": "customer", "next": "https://evil.example/", "csrf_token": token},
    )
    assert answer.headers["location"] == "/app"


async def test_a_wrong_link_gets_a_page_and_an_api_client_gets_json(http: httpx.AsyncClient) -> None:
    page = await http.get("/no-such-page", headers={"Accept": "text/html,application/xhtml+xml"})
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Page not found" in page.text
    api = await http.get("/no-such-page", headers={"Accept": "application/json"})
    assert api.status_code == 404 and api.headers["content-type"].startswith("application/problem+json")
