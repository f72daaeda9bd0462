"""The codec server (`appeals codec-server`): the Temporal Web UI (and `temporal workflow show
--codec-endpoint`) sends it the payloads it shows and gets them back decrypted, so an operator
reads plaintext where the database holds ciphertext (gateway/codec.py).

The protocol is the Temporal codec server's: `POST .../decode` and `POST .../encode` with the
JSON form of `temporal.api.common.v1.Payloads` (`{"payloads": [{"metadata": {...}, "data":
"<base64>"}]}`), answered in the same form; only the last part of the path counts, and the UI
names the namespace in `X-Namespace`.

Only staff may use it: a bearer token (`Authorization: Bearer`, as `temporal --codec-auth` and a
Web UI with `passAccessToken` send it) or the web pages' session cookie (sent by a Web UI whose
codec setting "Include cross-origin credentials" is on, from the same host as the pages) whose
role is reviewer, senior_reviewer, supervisor or admin (core/auth.py `STAFF_ROLES`). No token is
401, a customer's token 403. Cross-origin calls are allowed from the Web UI's origins only
(`APPEALS_CODEC_SERVER_CORS_ORIGINS`; by default the Web UI at `temporal_ui_url`), with
credentials. Each answered call logs one line: who, which namespace, how many payloads, never
their contents.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads

from core.auth import STAFF_ROLES, Principal, missing_bearer, verify_token
from core.errors import DomainError, Forbidden, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from core.logs import logging_config
from core.settings import Settings
from gateway.codec import AesGcmCodec, PayloadKeyError, payload_codec

log = logging.getLogger(__name__)

# The web pages' session cookie (api/pages/session.py; a test checks they agree). Named here so
# the codec server loads none of the web app.
SESSION_COOKIE = "appeals_session"

# A page of history decoded at once stays far below this; Temporal refuses payloads over 2 MiB.
MAX_BODY_BYTES = 8 * 1024 * 1024


def problem(status: int, code: str, title: str, detail: str, instance: str) -> JSONResponse:
    """An RFC 9457 problem, shaped as the API's (api/problems.py)."""
    body = {
        "type": f"urn:problem:appeals:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "instance": instance,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type="application/problem+json", headers=headers)


def cors_origins(settings: Settings) -> list[str]:
    """The origins whose pages may call the codec server: the configured ones, or the Web UI at
    `temporal_ui_url` under both names of a loopback host (a browser treats them as two sites)."""
    if settings.codec_server_cors_origins:
        return [origin.rstrip("/") for origin in settings.codec_server_cors_origins]
    ui = urlsplit(settings.temporal_ui_url)
    origin = f"{ui.scheme}://{ui.netloc}"
    if ui.hostname in ("127.0.0.1", "localhost"):
        port = f":{ui.port}" if ui.port else ""
        return [f"{ui.scheme}://localhost{port}", f"{ui.scheme}://127.0.0.1{port}"]
    return [origin]


def staff_caller(settings: Settings, request: Request) -> Principal:
    """The member of staff making the call; Unauthorized without a valid token, Forbidden for
    anyone else."""
    header = request.headers.get("authorization", "")
    if header.strip():
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise missing_bearer(header)
        token = token.strip()
    else:
        token = request.cookies.get(SESSION_COOKIE, "")
        if not token:
            raise missing_bearer("")
    principal = verify_token(settings, token)
    if principal.role not in STAFF_ROLES:
        raise Forbidden(
            "Only staff (reviewer, senior_reviewer, supervisor, admin) may decode or encode "
            "what Temporal stores.",
            code="staff_only",
        )
    return principal


async def _body(request: Request) -> bytes:
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise UnsupportedMediaType(
            "Send the payloads as application/json (the JSON form of Payloads).",
            code="json_required",
        )
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > MAX_BODY_BYTES:
            raise PayloadTooLarge(
                f"At most {MAX_BODY_BYTES // (1024 * 1024)} MiB of payloads per call.",
                code="payloads_too_large",
            )
    return bytes(received)


def _payloads(body: bytes) -> list[Payload]:
    try:
        parsed = json_format.Parse(body, Payloads())
    except (json_format.ParseError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            'The body is not the JSON form of Payloads ({"payloads": [...]}).', code="payloads_invalid"
        ) from exc
    return list(parsed.payloads)


def _answer(payloads: Sequence[Payload]) -> Response:
    body = json_format.MessageToJson(Payloads(payloads=payloads), indent=None)
    return Response(body, media_type="application/json")


def create_codec_app(settings: Settings, codec: AesGcmCodec | None = None) -> FastAPI:
    """The codec server for `settings`' keys (or `codec`); PayloadKeyError without keys."""
    codec = codec or payload_codec(settings)
    if codec is None:
        raise PayloadKeyError(
            "The codec server needs the payload keys (APPEALS_PAYLOAD_KEYS) the clients encrypt with."
        )
    app = FastAPI(title="Limit-restore appeals: Temporal codec server", docs_url=None, redoc_url=None)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=cors_origins(settings),
        allow_credentials=True,
        allow_methods=["POST"],
        allow_headers=["content-type", "x-namespace", "authorization"],
        max_age=600,
    )

    @app.exception_handler(DomainError)
    async def _refused(request: Request, exc: DomainError) -> JSONResponse:
        return problem(exc.status_code, exc.code, exc.title, exc.detail, instance=request.url.path)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/{path:path}")
    async def convert(path: str, request: Request) -> Response:
        operation = path.rstrip("/").rsplit("/", 1)[-1]
        if operation not in ("decode", "encode"):
            return problem(404, "not_found", "Not found", "POST .../decode or .../encode.", request.url.path)
        principal = staff_caller(settings, request)
        payloads = _payloads(await _body(request))
        namespace = request.headers.get("x-namespace", "")
        if operation == "encode":
            converted = await codec.encode(payloads)
        else:
            converted = _decode_each(codec, payloads)
        log.info(
            "codec %s by %s namespace=%s payloads=%d",
            *(operation, principal.actor, namespace or "-", len(payloads)),
        )
        return _answer(converted)

    return app


def _decode_each(codec: AesGcmCodec, payloads: Sequence[Payload]) -> list[Payload]:
    """Each payload decoded; one that cannot be (a key id this server lacks, an altered payload)
    is returned as it came, so the UI shows the rest and that one still encrypted."""
    decoded = []
    for payload in payloads:
        try:
            decoded.append(codec.decode_one(payload))
        except PayloadKeyError as exc:
            log.warning("codec decode: a payload left encrypted: %s", exc)
            decoded.append(payload)
    return decoded


def run_codec_server(settings: Settings, *, host: str, port: int) -> None:
    import uvicorn

    app = create_codec_app(settings)  # refuses before listening when the keys are missing
    # The same JSON lines as the API's (core/logs.py); its own access line, not uvicorn's.
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=logging_config(settings.log_format, settings.log_level),
        access_log=False,
    )
