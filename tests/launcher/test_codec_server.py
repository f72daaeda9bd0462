"""The codec server (launcher/codec_server.py): decodes and encodes for staff only (a bearer
token or the web pages' session cookie), answers the Web UI's origin with CORS and credentials,
and never hands a customer or an anonymous caller plaintext. `appeals codec-server`, `api` and
`worker` refuse to start without the keys they need."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from google.protobuf import json_format
from pydantic import SecretStr
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.contrib.pydantic import pydantic_data_converter
from typer.testing import CliRunner

from api.pages import session
from core.auth import Role, mint_token
from core.settings import Settings, get_settings
from gateway.codec import AesGcmCodec, PayloadKeyError, PayloadKeys, is_encrypted, new_key
from launcher.cli import app as cli
from launcher.codec_server import SESSION_COOKIE, cors_origins, create_codec_app

SECRET = "acct-7-secret"
UI = "http://localhost:8233"
STRONG_JWT = "9f2c6e1a7b3d4f5e8a0c2b4d6e8f1a3c5e7b9d0f2a4c6e8b"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, temporal_ui_port=8233)


@pytest.fixture
def codec() -> AesGcmCodec:
    return AesGcmCodec(PayloadKeys.generate("k1"))


@pytest.fixture
async def http(settings: Settings, codec: AesGcmCodec) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_codec_app(settings, codec))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8081") as client:
        yield client


async def sealed_body(codec: AesGcmCodec, value: object = SECRET) -> str:
    payloads = await codec.encode(pydantic_data_converter.payload_converter.to_payloads([value]))
    return json_format.MessageToJson(Payloads(payloads=payloads))


def headers(settings: Settings, role: Role | None, subject: str = "x-1") -> dict[str, str]:
    sent = {"Content-Type": "application/json", "X-Namespace": "default", "Origin": UI}
    if role is not None:
        sent["Authorization"] = f"Bearer {mint_token(settings, role=role, subject=subject)}"
    return sent


def payloads_of(answer: httpx.Response) -> list[Payload]:
    return list(json_format.Parse(answer.content, Payloads()).payloads)


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SUPERVISOR, Role.ADMIN])
async def test_staff_get_plaintext_with_cors_for_the_web_ui(
    http: httpx.AsyncClient, settings: Settings, codec: AesGcmCodec, role: Role
) -> None:
    answer = await http.post("/decode", content=await sealed_body(codec), headers=headers(settings, role))
    assert answer.status_code == 200, answer.text
    (payload,) = payloads_of(answer)
    assert not is_encrypted(payload) and json.loads(payload.data) == SECRET
    assert answer.headers["access-control-allow-origin"] == UI
    assert answer.headers["access-control-allow-credentials"] == "true"


@pytest.mark.parametrize(
    ("role", "status", "code"),
    [(Role.CUSTOMER, 403, "staff_only"), (None, 401, "missing_token")],
)
async def test_a_customer_or_no_token_is_refused(
    http: httpx.AsyncClient,
    settings: Settings,
    codec: AesGcmCodec,
    role: Role | None,
    status: int,
    code: str,
) -> None:
    for path in ("/decode", "/encode"):
        answer = await http.post(
            path, content=await sealed_body(codec), headers=headers(settings, role, "c-7")
        )
        assert answer.status_code == status and answer.json()["code"] == code, answer.text
        assert SECRET not in answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        # The UI can read why (CORS headers on the refusal too).
        assert answer.headers["access-control-allow-origin"] == UI
    if status == 401:
        assert answer.headers["www-authenticate"] == "Bearer"


async def test_a_bad_token_is_refused(
    http: httpx.AsyncClient, settings: Settings, codec: AesGcmCodec
) -> None:
    other = settings.model_copy(update={"jwt_secret": "another-secret-of-at-least-32-characters!"})
    forged = mint_token(other, role=Role.ADMIN, subject="a-1")
    sent = {**headers(settings, None), "Authorization": f"Bearer {forged}"}
    answer = await http.post("/decode", content=await sealed_body(codec), headers=sent)
    assert answer.status_code == 401 and answer.json()["code"] == "invalid_token"
    sent["Authorization"] = "Basic YTpi"
    answer = await http.post("/decode", content=await sealed_body(codec), headers=sent)
    assert answer.status_code == 401 and answer.json()["code"] == "missing_token"


async def test_the_pages_session_cookie_of_staff_is_accepted_and_of_a_customer_refused(
    http: httpx.AsyncClient, settings: Settings, codec: AesGcmCodec
) -> None:
    body = await sealed_body(codec)
    staff = mint_token(settings, role=Role.SUPERVISOR, subject="sup-1")
    http.cookies.set(SESSION_COOKIE, staff)
    answer = await http.post("/decode", content=body, headers=headers(settings, None))
    assert answer.status_code == 200 and json.loads(payloads_of(answer)[0].data) == SECRET
    http.cookies.set(SESSION_COOKIE, mint_token(settings, role=Role.CUSTOMER, subject="c-7"))
    answer = await http.post("/decode", content=body, headers=headers(settings, None))
    assert answer.status_code == 403 and SECRET not in answer.text


def test_the_cookie_is_the_web_pages_session_cookie() -> None:
    assert SESSION_COOKIE == session.SESSION_COOKIE


async def test_preflight_is_answered_for_the_web_ui_only(http: httpx.AsyncClient) -> None:
    asked = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "content-type,x-namespace",
    }
    for origin in (UI, "http://127.0.0.1:8233"):
        answer = await http.options("/decode", headers={**asked, "Origin": origin})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == origin
        assert answer.headers["access-control-allow-credentials"] == "true"
        assert "x-namespace" in answer.headers["access-control-allow-headers"].lower()
    stranger = await http.options("/decode", headers={**asked, "Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in stranger.headers


def test_the_allowed_origins_follow_the_web_ui_or_the_setting(settings: Settings) -> None:
    assert cors_origins(settings) == ["http://localhost:8233", "http://127.0.0.1:8233"]
    remote = settings.model_copy(update={"temporal_web_url": "https://temporal.example.com/"})
    assert cors_origins(remote) == ["https://temporal.example.com"]
    configured = settings.model_copy(update={"codec_server_cors_origins": ["https://ui.example/"]})
    assert cors_origins(configured) == ["https://ui.example"]


async def test_encode_then_decode_round_trips_and_any_prefix_works(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    plain = pydantic_data_converter.payload_converter.to_payloads([{"note": "hello"}])
    body = json_format.MessageToJson(Payloads(payloads=plain))
    staff = headers(settings, Role.REVIEWER)
    encoded = await http.post("/default/encode", content=body, headers=staff)
    assert encoded.status_code == 200 and all(is_encrypted(p) for p in payloads_of(encoded))
    decoded = await http.post("/default/decode", content=encoded.content, headers=staff)
    assert payloads_of(decoded) == list(plain)


async def test_plain_payloads_and_another_keys_payloads_come_back_as_they_were(
    http: httpx.AsyncClient, settings: Settings
) -> None:
    plain = pydantic_data_converter.payload_converter.to_payloads(["old, unencrypted"])[0]
    foreign = (await AesGcmCodec(PayloadKeys.generate("k9")).encode([plain]))[0]
    body = json_format.MessageToJson(Payloads(payloads=[plain, foreign]))
    answer = await http.post("/decode", content=body, headers=headers(settings, Role.REVIEWER))
    assert answer.status_code == 200 and payloads_of(answer) == [plain, foreign]


async def test_malformed_requests_get_a_problem(http: httpx.AsyncClient, settings: Settings) -> None:
    staff = headers(settings, Role.REVIEWER)
    assert (
        await http.post("/decode", content="{}", headers={**staff, "Content-Type": "text/plain"})
    ).status_code == 415
    bad = await http.post("/decode", content='{"payloads": 3}', headers=staff)
    assert bad.status_code == 422 and bad.json()["code"] == "payloads_invalid"
    assert (await http.post("/elsewhere", content="{}", headers=staff)).status_code == 404
    assert (await http.get("/health")).json() == {"status": "ok"}


def test_the_server_needs_keys(settings: Settings) -> None:
    with pytest.raises(PayloadKeyError, match="APPEALS_PAYLOAD_KEYS"):
        create_codec_app(settings)


@pytest.fixture
def environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """The commands read get_settings() (cached): a clean environment for each case."""
    monkeypatch.chdir(tmp_path)  # no .env of the checkout's
    monkeypatch.setenv("APPEALS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    yield monkeypatch
    get_settings.cache_clear()


@pytest.mark.parametrize("command", [["codec-server"], ["api"], ["worker"]])
def test_production_commands_refuse_to_start_without_keys(
    environment: pytest.MonkeyPatch, command: list[str]
) -> None:
    environment.setenv("APPEALS_ENVIRONMENT", "production")
    environment.setenv("APPEALS_JWT_SECRET", STRONG_JWT)
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 1, result.output
    assert "APPEALS_PAYLOAD_KEYS must be set in production" in result.output


def test_a_command_with_an_unusable_key_says_which(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("APPEALS_PAYLOAD_KEYS", json.dumps({"k1": "dG9vIHNob3J0"}))
    result = CliRunner().invoke(cli, ["codec-server"])
    assert result.exit_code == 1 and "payload key 'k1' is 9 bytes" in result.output


def test_the_codec_server_command_needs_keys_in_development_too(environment: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["codec-server"])
    assert result.exit_code == 1 and "needs the payload keys" in result.output


def test_payload_key_prints_an_entry_for_the_keys_setting() -> None:
    result = CliRunner().invoke(cli, ["payload-key", "--id", "2026-06"])
    assert result.exit_code == 0, result.output
    entry = json.loads(result.output)
    settings = Settings(payload_keys={k: SecretStr(v) for k, v in entry.items()})
    assert PayloadKeys.from_settings(settings) is not None and list(entry) == ["2026-06"]
    assert CliRunner().invoke(cli, ["payload-key", "--id", "bad id"]).exit_code != 0
    assert new_key() != new_key()
