"""Sign-in with an OpenID Connect provider (api/pages/oidc.py) against a local provider run by
the tests (tests/oidc_provider.py): the app talks to it over real HTTP."""

from __future__ import annotations

import time
import typing
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import pytest_asyncio
from pydantic import ValidationError

from api.pages.oidc import STATE_COOKIE, seal_state
from core.auth import Role
from core.db import session_scope
from core.db.staff_tables import StaffMember
from core.settings import Environment, RoleName, Settings
from tests.api.conftest import offline_app
from tests.api.pages.helpers import csrf_from
from tests.oidc_provider import OMIT, LocalOidcProvider
from tests.staff_directory import add_staff

PRODUCTION_SECRET = "a-production-secret-of-more-than-32-characters"
REVIEWER = {"sub": "r-7", "appeals_roles": ["reviewer"]}


@pytest.fixture(scope="module")
def running_provider() -> Iterator[LocalOidcProvider]:
    with LocalOidcProvider() as provider:
        yield provider


@pytest.fixture
def provider(running_provider: LocalOidcProvider) -> LocalOidcProvider:
    running_provider.reset()
    return running_provider


def oidc_settings(provider: LocalOidcProvider, tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "oidc_issuer": provider.issuer,
        "oidc_client_id": provider.client_id,
        "oidc_client_secret": provider.client_secret,
        "oidc_provider_name": "Test IdP",
        **overrides,
    }
    return Settings(**values)


@pytest_asyncio.fixture(loop_scope="session")
async def http(provider: LocalOidcProvider, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with offline_app(oidc_settings(provider, tmp_path), tmp_path) as (client, _, _):
        yield client


async def start(http: httpx.AsyncClient, next: str | None = None) -> httpx.Response:
    answer = await http.get("/sign-in/oidc", params={"next": next} if next else None)
    assert answer.status_code == 303, answer.text
    return answer


async def at_provider(authorize_url: str) -> str:
    """The browser at the provider: where the provider sends it back to."""
    async with httpx.AsyncClient() as browser:
        answer = await browser.get(authorize_url)
    assert answer.status_code == 302, answer.text
    return answer.headers["location"]


async def sign_in_oidc(http: httpx.AsyncClient, next: str | None = None) -> httpx.Response:
    """The whole flow as a browser follows it; the app's answer to the callback."""
    back = await at_provider((await start(http, next)).headers["location"])
    return await http.get(back)


def no_session(http: httpx.AsyncClient) -> bool:
    return "appeals_session" not in http.cookies


async def test_the_sign_in_page_offers_the_provider(http: httpx.AsyncClient) -> None:
    page = await http.get("/sign-in", params={"next": "/review"})
    assert "Sign in with" in page.text and "Test IdP" in page.text
    assert 'href="/sign-in/oidc?next=/review"' in page.text


@pytest.mark.parametrize(
    ("claims", "home"),
    [
        ({"sub": "r-7", "appeals_roles": ["reviewer"]}, "/review"),
        ({"sub": "sup-3", "appeals_roles": "supervisor"}, "/dashboard"),
        ({"sub": "c-1002", "appeals_roles": ["customer"]}, "/app"),
    ],
)
async def test_a_person_signs_in_and_lands_on_their_home_page(
    http: httpx.AsyncClient, provider: LocalOidcProvider, claims: dict[str, Any], home: str
) -> None:
    provider.login_as(claims)
    started = await start(http)
    state_cookie = next(h for h in started.headers.get_list("set-cookie") if h.startswith(f"{STATE_COOKIE}="))
    for attribute in ("HttpOnly", "Path=/sign-in/oidc", "SameSite=lax", "Max-Age=600"):
        assert attribute in state_cookie
    assert "Secure" not in state_cookie  # development: plain http

    authorize = urlsplit(started.headers["location"])
    assert f"{authorize.scheme}://{authorize.netloc}{authorize.path}" == f"{provider.issuer}/authorize"
    query = {k: v[0] for k, v in parse_qs(authorize.query).items()}
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert query["scope"] == "openid profile" and query["state"] and query["nonce"]
    assert query["redirect_uri"] == "http://testserver/sign-in/oidc/callback"

    landed = await http.get(await at_provider(started.headers["location"]))
    assert landed.status_code == 303 and landed.headers["location"] == home
    session = next(c for c in http.cookies.jar if c.name == "appeals_session")
    assert session.has_nonstandard_attr("HttpOnly") and not session.secure
    assert STATE_COOKIE not in http.cookies  # one answer per sign-in started
    assert (await http.get("/")).headers["location"] == home

    # A confidential client authenticates with client_secret_basic and proves PKCE.
    (request,) = provider.token_requests
    assert request.authorization and request.authorization.startswith("Basic ")
    assert "client_secret" not in request.form and len(request.form["code_verifier"]) >= 43


async def test_the_page_asked_for_is_kept_on_this_site_only(
    http: httpx.AsyncClient, provider: LocalOidcProvider
) -> None:
    provider.login_as(REVIEWER)
    landed = await sign_in_oidc(http, next="/review/tasks/42?tab=documents")
    assert landed.headers["location"] == "/review/tasks/42?tab=documents"
    landed = await sign_in_oidc(http, next="//evil.example/steal")
    assert landed.headers["location"] == "/review"


@pytest.mark.parametrize(
    ("roles", "home"),
    [
        (["reviewer", "senior_reviewer"], "/review"),
        (["reviewer", "supervisor", "unrelated-app-role"], "/dashboard"),
        (["supervisor", "admin"], "/dashboard"),
    ],
)
async def test_several_staff_roles_give_the_most_privileged(
    http: httpx.AsyncClient, provider: LocalOidcProvider, roles: list[str], home: str
) -> None:
    provider.login_as({"sub": "s-9", "appeals_roles": roles})
    assert (await sign_in_oidc(http)).headers["location"] == home


async def test_the_role_map_and_a_nested_claim(provider: LocalOidcProvider, tmp_path: Path) -> None:
    settings = oidc_settings(
        provider,
        tmp_path,
        oidc_role_claim="realm_access.roles",
        oidc_role_map={"Appeals Supervisors": "supervisor", "Appeals Customers": "customer"},
        oidc_subject_claim="preferred_username",
    )
    async with offline_app(settings, tmp_path) as (http, _, _):
        provider.login_as(
            {
                "sub": "uuid-1",
                "preferred_username": "sup-3",
                "realm_access": {"roles": ["Appeals Supervisors"]},
            }
        )
        assert (await sign_in_oidc(http)).headers["location"] == "/dashboard"
        # With a map, a bare role name is not enough.
        http.cookies.clear()
        provider.login_as(
            {"sub": "uuid-2", "preferred_username": "x-1", "realm_access": {"roles": ["admin"]}}
        )
        refused = await sign_in_oidc(http)
        assert refused.status_code == 403 and "no role in this service" in refused.text
        assert no_session(http)


async def refused_with(http: httpx.AsyncClient, answer: httpx.Response, status: int, text: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    assert text in answer.text, answer.text
    assert no_session(http)
    assert STATE_COOKIE not in http.cookies


@pytest.mark.parametrize(
    ("claims", "status", "text"),
    [
        ({"sub": "x-1"}, 403, "no role in this service"),
        ({"sub": "x-1", "appeals_roles": ["auditor"]}, 403, "no role in this service"),
        (
            {"sub": "c-1", "appeals_roles": ["customer", "reviewer"]},
            403,
            "both a customer and a member of staff",
        ),
        ({"sub": "two words", "appeals_roles": ["reviewer"]}, 403, "did not say who you are"),
    ],
)
async def test_a_person_without_exactly_one_role_of_ours_is_refused(
    http: httpx.AsyncClient, provider: LocalOidcProvider, claims: dict[str, Any], status: int, text: str
) -> None:
    provider.login_as(claims)
    await refused_with(http, await sign_in_oidc(http), status, text)


@pytest.mark.parametrize(
    ("claims", "sign_with"),
    [
        ({"aud": "another-client"}, "own"),  # a token for another client id
        ({"aud": ["appeals-web", "another-client"]}, "own"),  # shared, no azp naming us
        ({"iss": "http://127.0.0.1:1/other"}, "own"),
        ({"exp": int(time.time()) - 600, "iat": int(time.time()) - 900}, "own"),  # expired
        ({"iat": int(time.time()) + 3600}, "own"),  # issued in the future
        ({"nonce": OMIT}, "own"),  # missing nonce
        ({"nonce": "another-sign-in"}, "own"),
        ({}, "other_key_same_kid"),  # signed by another key
        ({}, "unknown_kid"),
        ({}, "none"),
    ],
    ids=[
        "wrong-audience",
        "shared-audience",
        "wrong-issuer",
        "expired",
        "future-iat",
        "missing-nonce",
        "wrong-nonce",
        "other-key",
        "unknown-kid",
        "alg-none",
    ],
)
async def test_an_id_token_that_does_not_verify_is_refused(
    http: httpx.AsyncClient, provider: LocalOidcProvider, claims: dict[str, Any], sign_with: Any
) -> None:
    provider.login_as({**REVIEWER, **claims}, sign_with=sign_with)
    await refused_with(http, await sign_in_oidc(http), 401, "could not be verified")


async def test_an_unknown_kid_refetches_the_keys_once(
    http: httpx.AsyncClient, provider: LocalOidcProvider
) -> None:
    provider.login_as(REVIEWER)
    assert (await sign_in_oidc(http)).status_code == 303
    assert (provider.discovery_fetches, provider.jwks_fetches) == (1, 1)  # cached since
    provider.rotate_key()  # the provider signs with a new key the app has not seen yet
    http.cookies.clear()
    assert (await sign_in_oidc(http)).status_code == 303
    assert (provider.discovery_fetches, provider.jwks_fetches) == (1, 2)
    provider.login_as(REVIEWER, sign_with="unknown_kid")
    http.cookies.clear()
    await refused_with(http, await sign_in_oidc(http), 401, "could not be verified")
    assert provider.jwks_fetches == 3


async def test_the_provider_saying_no_is_shown_in_the_viewers_language(
    http: httpx.AsyncClient, provider: LocalOidcProvider
) -> None:
    provider.login_as(REVIEWER, error="access_denied")
    answer = await sign_in_oidc(http)
    await refused_with(http, answer, 401, "Test IdP did not sign you in (access_denied)")
    assert "Please sign in" in answer.text
    back = await at_provider((await start(http)).headers["location"])
    chinese = await http.get(back, headers={"Accept-Language": "zh-CN"})
    await refused_with(http, chinese, 401, "Test IdP 未能让您登录（access_denied）")
    assert '<html lang="zh-CN">' in chinese.text


async def test_a_tampered_state_is_refused(http: httpx.AsyncClient, provider: LocalOidcProvider) -> None:
    provider.login_as(REVIEWER)
    back = urlsplit(await at_provider((await start(http)).headers["location"]))
    query = {k: v[0] for k, v in parse_qs(back.query).items()}
    tampered = await http.get(back.path, params={**query, "state": query["state"][:-2] + "xx"})
    await refused_with(http, tampered, 400, "does not belong to the sign-in this browser started")
    assert provider.token_requests == []  # the code was never exchanged


async def test_an_expired_altered_or_missing_state_cookie_is_refused(
    http: httpx.AsyncClient, provider: LocalOidcProvider, tmp_path: Path
) -> None:
    provider.login_as(REVIEWER)
    settings = oidc_settings(provider, tmp_path)  # the app's secret, to seal an old cookie
    for replace_with in ("expired", "altered", "missing"):
        back = await at_provider((await start(http)).headers["location"])
        sealed = http.cookies[STATE_COOKIE]
        http.cookies.delete(STATE_COOKIE)
        if replace_with == "expired":
            query = {k: v[0] for k, v in parse_qs(urlsplit(back).query).items()}
            flow = {
                "state": query["state"],
                "nonce": "n",
                "verifier": "v" * 43,
                "redirect_uri": "",
                "next": "",
            }
            old = seal_state(settings, flow, at=time.time() - 3600)
            http.cookies.set(STATE_COOKIE, old, domain="testserver.local", path="/sign-in/oidc")
        elif replace_with == "altered":
            altered = sealed[:-4] + ("AAAA" if not sealed.endswith("AAAA") else "BBBB")
            http.cookies.set(STATE_COOKIE, altered, domain="testserver.local", path="/sign-in/oidc")
        await refused_with(http, await http.get(back), 410, "took too long or was started in another browser")
    assert provider.token_requests == []


async def test_a_replayed_code_is_refused_by_the_token_endpoint(
    http: httpx.AsyncClient, provider: LocalOidcProvider
) -> None:
    provider.login_as(REVIEWER)
    back = await at_provider((await start(http)).headers["location"])
    sealed = http.cookies[STATE_COOKIE]
    assert (await http.get(back)).status_code == 303
    # Replayed as is: this browser's sign-in is over.
    http.cookies.clear()
    await refused_with(http, await http.get(back), 410, "took too long")
    # Replayed with the state cookie too (a stolen browser state): the provider refuses the code.
    http.cookies.set(STATE_COOKIE, sealed, domain="testserver.local", path="/sign-in/oidc")
    await refused_with(http, await http.get(back), 401, "refused to complete this sign-in")
    assert len(provider.token_requests) == 2


async def test_an_answer_naming_another_issuer_is_refused(
    http: httpx.AsyncClient, provider: LocalOidcProvider
) -> None:
    provider.login_as(REVIEWER)
    back = await at_provider((await start(http)).headers["location"])
    mixed_up = await http.get(f"{back}&{urlencode({'iss': 'https://other-idp.example'})}")
    await refused_with(http, mixed_up, 400, "came from another identity provider")
    assert provider.token_requests == []


async def test_a_discovery_document_for_another_issuer_is_refused(
    provider: LocalOidcProvider, tmp_path: Path
) -> None:
    # The provider names itself http://127.0.0.1:<port>, not localhost.
    settings = oidc_settings(
        provider, tmp_path, oidc_issuer=provider.issuer.replace("127.0.0.1", "localhost")
    )
    async with offline_app(settings, tmp_path) as (http, _, _):
        answer = await http.get("/sign-in/oidc")
        assert answer.status_code == 503 and "not set up correctly" in answer.text
        assert STATE_COOKIE not in http.cookies


async def test_a_token_endpoint_refusing_the_client_is_shown(
    provider: LocalOidcProvider, tmp_path: Path
) -> None:
    settings = oidc_settings(provider, tmp_path, oidc_client_secret="a-wrong-secret")
    async with offline_app(settings, tmp_path) as (http, _, _):
        provider.login_as(REVIEWER)
        await refused_with(http, await sign_in_oidc(http), 401, "refused to complete this sign-in")


async def test_a_callback_without_a_code_is_refused(
    http: httpx.AsyncClient, provider: LocalOidcProvider
) -> None:
    provider.login_as(REVIEWER)
    back = urlsplit(await at_provider((await start(http)).headers["location"]))
    state = parse_qs(back.query)["state"][0]
    await refused_with(
        http, await http.get(f"{back.path}?{urlencode({'state': state})}"), 400, "without a sign-in code"
    )


async def test_a_public_client_uses_pkce_alone(provider: LocalOidcProvider, tmp_path: Path) -> None:
    provider.reset(client_secret=None)
    settings = oidc_settings(provider, tmp_path, oidc_client_secret=None)
    async with offline_app(settings, tmp_path) as (http, _, _):
        provider.login_as(REVIEWER)
        assert (await sign_in_oidc(http)).headers["location"] == "/review"
    (request,) = provider.token_requests
    assert request.authorization is None and request.form["client_id"] == provider.client_id
    assert "client_secret" not in request.form


async def test_client_secret_post_when_the_provider_takes_only_that(
    provider: LocalOidcProvider, tmp_path: Path
) -> None:
    provider.auth_methods = ["client_secret_post"]
    async with offline_app(oidc_settings(provider, tmp_path), tmp_path) as (http, _, _):
        provider.login_as(REVIEWER)
        assert (await sign_in_oidc(http)).headers["location"] == "/review"
    (request,) = provider.token_requests
    assert request.authorization is None and request.form["client_secret"] == provider.client_secret


async def test_an_unreachable_provider_gets_a_page_not_a_crash(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, oidc_issuer="http://127.0.0.1:9", oidc_client_id="x", oidc_timeout_seconds=2
    )
    async with offline_app(settings, tmp_path) as (http, _, _):
        answer = await http.get("/sign-in/oidc")
        assert answer.status_code == 503 and "cannot be reached right now" in answer.text
        assert STATE_COOKIE not in http.cookies and no_session(http)


async def test_without_oidc_settings_there_is_no_button_and_no_route(tmp_path: Path) -> None:
    async with offline_app(Settings(data_dir=tmp_path), tmp_path) as (http, _, _):
        assert "/sign-in/oidc" not in (await http.get("/sign-in")).text
        answer = await http.get("/sign-in/oidc")
        assert answer.status_code == 404 and "not set up here" in answer.text
        assert (await http.get("/sign-in/oidc/callback?code=x&state=y")).status_code == 404


async def test_production_cookies_are_secure_and_the_dev_sign_in_is_absent(
    provider: LocalOidcProvider, tmp_path: Path
) -> None:
    settings = oidc_settings(
        provider,
        tmp_path,
        environment=Environment.PRODUCTION,
        jwt_secret=PRODUCTION_SECRET,
        oidc_redirect_url="https://appeals.example/sign-in/oidc/callback",
    )
    async with offline_app(settings, tmp_path, base_url="https://appeals.example") as (http, _, _):
        page = await http.get("/sign-in")
        assert "Sign in with" in page.text and "/sign-in/dev" not in page.text
        refused = await http.post(
            "/sign-in/dev", data={"subject": "a-1", "role": "admin", "csrf_token": csrf_from(page.text)}
        )
        assert refused.status_code == 404 and no_session(http)

        provider.login_as({"sub": "sup-3", "appeals_roles": ["supervisor"]})
        started = await start(http)
        assert (
            "redirect_uri=https%3A%2F%2Fappeals.example%2Fsign-in%2Foidc%2Fcallback"
            in (started.headers["location"])
        )
        state_cookie = next(c for c in http.cookies.jar if c.name == STATE_COOKIE)
        assert state_cookie.secure and state_cookie.has_nonstandard_attr("HttpOnly")
        landed = await http.get(await at_provider(started.headers["location"]))
        assert landed.headers["location"] == "/dashboard"
        names = {c.name for c in http.cookies.jar}
        assert {"appeals_session", "appeals_csrf"} <= names
        assert all(c.secure for c in http.cookies.jar)


def test_settings_refuse_an_incomplete_or_plain_http_provider(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="OIDC_CLIENT_ID"):
        Settings(data_dir=tmp_path, oidc_issuer="https://id.example")
    with pytest.raises(ValidationError, match="https"):
        Settings(data_dir=tmp_path, oidc_issuer="http://id.example", oidc_client_id="x")
    with pytest.raises(ValidationError, match="openid"):
        Settings(
            data_dir=tmp_path, oidc_issuer="https://id.example", oidc_client_id="x", oidc_scopes="profile"
        )
    unknown_role: Any = {"x": "superuser"}
    with pytest.raises(ValidationError, match="oidc_role_map"):
        Settings(data_dir=tmp_path, oidc_role_map=unknown_role)
    assert (
        Settings(oidc_issuer="https://id.example/realms/a", oidc_client_id="x").oidc_display_name
        == "id.example"
    )
    assert set(typing.get_args(RoleName)) == {role.value for role in Role}


async def test_staff_sign_in_keeps_the_staff_directory(provider: LocalOidcProvider, tmp_path: Path) -> None:
    """Issue 13: the identity provider's claims are written to the staff directory at sign-in,
    the one source of staff roles; an entry an admin keeps wins over the claims."""
    async with offline_app(oidc_settings(provider, tmp_path), tmp_path) as (http, engine, _):
        provider.login_as({"sub": "s-4", "appeals_roles": ["reviewer", "senior_reviewer", "other"]})
        assert (await sign_in_oidc(http)).headers["location"] == "/review"
        with session_scope(engine, read_only=True) as session:
            entry = session.get(StaffMember, "s-4")
            assert entry is not None and entry.roles == ["senior_reviewer", "reviewer"] and entry.active
        # An admin makes s-4 a supervisor: the session acts as one, whatever the claims say.
        add_staff(engine, "s-4", Role.SUPERVISOR)
        assert (await sign_in_oidc(http)).headers["location"] == "/dashboard"
        # ... and someone who left is refused, with no session.
        add_staff(engine, "s-4", Role.SUPERVISOR, active=False)
        http.cookies.clear()
        refused = await sign_in_oidc(http)
        assert refused.status_code == 403 and "inactive" in refused.text and no_session(http)
        # Customers are not staff: nothing is written for them.
        provider.login_as({"sub": "c-1002", "appeals_roles": ["customer"]})
        assert (await sign_in_oidc(http)).headers["location"] == "/app"
        with session_scope(engine, read_only=True) as session:
            assert session.get(StaffMember, "c-1002") is None
