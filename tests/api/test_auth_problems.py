"""A refused bearer token is explained for a person; the JWT library's wording stays in the log."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio

from core.settings import Settings
from tests.api.conftest import offline_app

# Fixed instants, far from any real "now": no test here reads the clock.
LONG_AGO = datetime(2001, 1, 1, tzinfo=UTC)
FAR_AHEAD = datetime(2999, 1, 1, tzinfo=UTC)

# What PyJWT says; none of it may reach a response.
LIBRARY_WORDING = (
    "Not enough segments",
    "Invalid header padding",
    "Signature verification failed",
    "alg value is not allowed",
    "Invalid issuer",
    "Signature has expired",
    "is missing the",
    "not yet valid (nbf)",
)


def _claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {"sub": "c-1", "role": "customer", "iss": settings.jwt_issuer, "exp": FAR_AHEAD}
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _signed(settings: Settings, **changes: Any) -> str:
    return jwt.encode(_claims(settings, **changes), settings.jwt_secret, algorithm="HS256")


TokenFactory = Callable[[Settings], str]
CASES: list[tuple[str, TokenFactory, str, str, str]] = [
    # (id, token, code, reason, words the detail must contain)
    ("not-a-jwt", lambda s: "nope", "invalid_token", "malformed", "malformed"),
    ("broken-parts", lambda s: "a.b.c", "invalid_token", "malformed", "malformed"),
    ("expired", lambda s: _signed(s, exp=LONG_AGO), "token_expired", "expired", "has expired"),
    (
        "bad-signature",
        lambda s: jwt.encode(_claims(s), "another-secret-" + "x" * 40, algorithm="HS256"),
        "invalid_token",
        "bad_signature",
        "signature does not match",
    ),
    (
        "wrong-algorithm",
        lambda s: jwt.encode(_claims(s), s.jwt_secret + "-" * 64, algorithm="HS512"),
        "invalid_token",
        "wrong_algorithm",
        "algorithm this service does not accept",
    ),
    (
        "alg-none",
        lambda s: jwt.encode(_claims(s), "", algorithm="none"),
        "invalid_token",
        "wrong_algorithm",
        "algorithm this service does not accept",
    ),
    ("wrong-issuer", lambda s: _signed(s, iss="someone-else"), "invalid_token", "wrong_issuer", "another"),
    ("no-subject", lambda s: _signed(s, sub=None), "invalid_token", "missing_claim", "required claim"),
    ("not-yet-valid", lambda s: _signed(s, nbf=FAR_AHEAD), "invalid_token", "not_yet_valid", "not valid yet"),
    ("unknown-role", lambda s: _signed(s, role="root"), "invalid_token", "unknown_role", "no role"),
    # Issue 13: a signed token that names nobody is no one's token.
    ("empty-subject", lambda s: _signed(s, sub=""), "invalid_token", "invalid_subject", "does not say who"),
    ("blank-subject", lambda s: _signed(s, sub="  "), "invalid_token", "invalid_subject", "does not say who"),
    (
        "nul-subject",
        lambda s: _signed(s, sub="c-1\x00"),
        "invalid_token",
        "invalid_subject",
        "does not say who",
    ),
]


@pytest_asyncio.fixture(loop_scope="session")
async def client(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Settings]]:
    # Authentication fails before any service is used: SQLite, and nothing else started.
    settings = Settings(data_dir=tmp_path)
    async with offline_app(settings, tmp_path) as (http, _, _):
        yield http, settings


def _assert_explained(response: httpx.Response, code: str, reason: str | None, words: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    body = response.json()
    assert body["code"] == code
    if reason is not None:
        assert body["reason"] == reason
    assert words in body["detail"], body["detail"]
    # Every refusal says what to do next.
    assert "Sign in again" in body["detail"] and "`appeals token`" in body["detail"]
    for wording in LIBRARY_WORDING:
        assert wording not in response.text, wording


@pytest.mark.parametrize(
    ("token", "code", "reason", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
async def test_a_refused_token_is_explained(
    client: tuple[httpx.AsyncClient, Settings],
    token: TokenFactory,
    code: str,
    reason: str,
    words: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    http, settings = client
    with caplog.at_level(logging.DEBUG, logger="core.auth"):
        response = await http.get("/appeals", headers={"Authorization": f"Bearer {token(settings)}"})
    _assert_explained(response, code, reason, words)
    if reason not in ("unknown_role", "invalid_subject"):
        # The library's own account is kept for whoever runs the service.
        assert any("bearer token refused" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({}, "A bearer token is required"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "does not use the Bearer scheme"),
        ({"Authorization": "Bearer "}, "carries no token"),
    ],
    ids=["no-header", "basic-scheme", "empty-bearer"],
)
async def test_a_missing_token_is_explained(
    client: tuple[httpx.AsyncClient, Settings], headers: dict[str, str], words: str
) -> None:
    http, _ = client
    response = await http.get("/appeals", headers=headers)
    _assert_explained(response, "missing_token", None, words)
    assert "Authorization: Bearer <token>" in response.json()["detail"]


async def test_a_good_token_still_passes(client: tuple[httpx.AsyncClient, Settings]) -> None:
    http, settings = client
    response = await http.get("/appeals", headers={"Authorization": f"Bearer {_signed(settings)}"})
    assert response.status_code == 200, response.text
