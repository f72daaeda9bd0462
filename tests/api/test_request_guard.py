"""api/request_guard.py on the real app and both databases: bodies capped before they are read
(and tokens checked first), NULs and crafted cursors answered with 4xx problems, rate limits on
writes per principal, and `Allow` on 405 answers (issue 13, items 2, 3, 9 and 10)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import select

from api.app import create_app
from api.request_guard import RATE_LIMITED, STREAMED, route_rules
from core.appeals.service import NewAppeal, create_appeal
from core.auth import Role, mint_token
from core.clock import FixedClock
from core.db import session_scope
from core.db.case_tables import Appeal
from core.reviews.service import NewTask, create_task
from core.settings import Settings
from core.status import AppealStatus
from core.storage import make_s3_client
from gateway.temporal import TemporalGateway
from launcher.stack import free_port
from tests.api.pages.helpers import sign_in
from tests.factories import make_customer

pytestmark = pytest.mark.asyncio(loop_scope="session")
PROBLEM = "application/problem+json"
CHUNK = 64 * 1024


@dataclass
class Guarded:
    app: FastAPI
    http: httpx.AsyncClient
    engine: Engine
    settings: Settings
    clock: FixedClock

    def auth(self, role: Role, sub: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings, role=role, subject=sub)}"}


def _settings(settings: Settings, **changes: Any) -> Settings:
    # Temporal is down (nothing listens on the port): no test here needs a workflow.
    return settings.model_copy(
        update={"temporal_address": f"127.0.0.1:{free_port()}", "temporal_request_timeout_seconds": 1.0}
        | changes
    )


@asynccontextmanager
async def _guarded(settings: Settings, engine: Engine, clock: FixedClock) -> AsyncIterator[Guarded]:
    app = create_app(
        settings,
        engine=engine,
        s3_client=make_s3_client(settings),
        gateway=TemporalGateway(settings),
        clock=clock,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield Guarded(app, http, engine, settings, clock)


@pytest_asyncio.fixture(loop_scope="session")
async def guarded(settings: Settings, engine: Engine) -> AsyncIterator[Guarded]:
    clock = FixedClock(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    async with _guarded(_settings(settings, document_max_bytes=256 * 1024), engine, clock) as g:
        yield g


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert (body["status"], body["code"]) == (status, code) and body["detail"]
    return body


# -- raw ASGI: what the app reads of a body ------------------------------------------------------


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes
    bytes_read: int

    def json(self) -> Any:
        return json.loads(self.body)


async def _raw(
    app: FastAPI, method: str, path: str, headers: dict[str, str], chunks: Iterator[bytes]
) -> RawAnswer:
    """Drives the app as a server would, counting the body bytes it asks for."""
    read = 0
    done = False

    async def receive() -> dict[str, Any]:
        nonlocal read, done
        if done:
            return {"type": "http.disconnect"}
        chunk = next(chunks, None)
        if chunk is None:
            done = True
            return {"type": "http.request", "body": b"", "more_body": False}
        read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": True}

    sent: list[MutableMapping[str, Any]] = []

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
        "state": {},
    }
    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    answer_headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return RawAnswer(start["status"], answer_headers, body, read)


def _json_chunks(total: int) -> Iterator[bytes]:
    yield b'{"account_id": "'
    for _ in range(total // CHUNK):
        yield b"x" * CHUNK


BIG = 150 * 1024 * 1024  # the probe's 150 MB body


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_json_body_without_a_token_is_refused_before_a_byte_is_read(
    guarded: Guarded, declared: bool
) -> None:
    headers = {"content-type": "application/json"} | ({"content-length": str(BIG)} if declared else {})
    answer = await _raw(guarded.app, "POST", "/appeals", headers, _json_chunks(BIG))
    assert answer.status == 401 and answer.json()["code"] == "missing_token"
    assert answer.bytes_read == 0


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_json_body_over_its_cap_is_refused_without_reading_the_rest(
    guarded: Guarded, declared: bool
) -> None:
    me = guarded.auth(Role.CUSTOMER, "c-guard")
    headers = {"content-type": "application/json", **me} | ({"content-length": str(BIG)} if declared else {})
    answer = await _raw(guarded.app, "POST", "/appeals", headers, _json_chunks(BIG))
    assert answer.status == 413, answer.body
    assert answer.headers["content-type"] == PROBLEM and answer.headers["connection"] == "close"
    body = answer.json()
    assert body["code"] == "payload_too_large" and body["max_bytes"] == guarded.settings.json_body_max_bytes
    # Declared: nothing read. Chunked: read up to the cap, and not one chunk more.
    assert (
        answer.bytes_read == 0
        if declared
        else answer.bytes_read <= guarded.settings.json_body_max_bytes + CHUNK
    )


async def test_a_body_within_the_cap_reaches_the_route(guarded: Guarded) -> None:
    c = make_customer(guarded.engine, original_limit_minor=800_000)
    body = {"account_id": c.account_id, "requested_limit_minor": 600_000, "statement": "修" * 2000}
    response = await guarded.http.post(
        "/appeals", json=body, headers=guarded.auth(Role.CUSTOMER, c.customer_id)
    )
    assert response.status_code == 201, response.text
    # The longest statement, every character escaped, still fits.
    assert len(json.dumps(body).encode()) <= guarded.settings.json_body_max_bytes


def _collecting(engine: Engine) -> tuple[str, str]:
    c = make_customer(engine, original_limit_minor=800_000)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(
            session, NewAppeal(customer_id=c.customer_id, account_id=c.account_id, requested_limit_minor=1000)
        )
        appeal.status = AppealStatus.AWAITING_DOCUMENTS
        session.add(appeal)
        return appeal.id, c.customer_id


def _multipart(file_bytes: int) -> Iterator[bytes]:
    boundary = b"guard"
    yield (
        b'--guard\r\nContent-Disposition: form-data; name="doc_type"\r\n\r\nBANK_STATEMENT\r\n'
        b'--guard\r\nContent-Disposition: form-data; name="file"; filename="s.csv"\r\n'
        b"Content-Type: text/csv\r\n\r\n"
    )
    for _ in range(file_bytes // CHUNK):
        yield b"1" * CHUNK
    yield b"\r\n--" + boundary + b"--\r\n"


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_an_upload_is_capped_at_the_document_limit_plus_its_envelope(
    guarded: Guarded, declared: bool
) -> None:
    appeal_id, customer_id = _collecting(guarded.engine)
    size = 4 * 1024 * 1024  # 16 x the test's document limit
    headers = {
        "content-type": "multipart/form-data; boundary=guard",
        **guarded.auth(Role.CUSTOMER, customer_id),
    }
    if declared:
        headers["content-length"] = str(size + 400)
    answer = await _raw(guarded.app, "POST", f"/appeals/{appeal_id}/documents", headers, _multipart(size))
    assert answer.status == 413, answer.body
    assert answer.json()["code"] == "document_too_large"
    cap = guarded.settings.document_max_bytes + 64 * 1024
    assert answer.bytes_read == 0 if declared else answer.bytes_read <= cap + CHUNK
    with session_scope(guarded.engine, read_only=True) as session:
        assert session.get(Appeal, appeal_id) is not None


@pytest.mark.filterwarnings("ignore:.*is marked with '@pytest.mark.asyncio'")
def test_the_streamed_and_rate_limited_routes_exist(settings: Settings) -> None:
    """The guard's tables name routes by path: a renamed route must not drop out of them."""
    app = create_app(settings)
    routes = {(m, r.path) for r in route_rules(app) for m in r.methods}
    assert set(STREAMED) <= routes and set(RATE_LIMITED) <= routes


# -- NUL characters and crafted cursors: 4xx, never a database error --------------------------


async def test_nul_characters_are_refused_as_problems(guarded: Guarded) -> None:
    c = make_customer(guarded.engine, original_limit_minor=800_000)
    me = guarded.auth(Role.CUSTOMER, c.customer_id)
    reviewer = guarded.auth(Role.REVIEWER, "r-guard")
    http = guarded.http

    body = _problem(
        await http.post("/appeals", json={"account_id": "acct\x00", "requested_limit_minor": 5}, headers=me),
        422,
        "validation_failed",
    )
    assert body["errors"][0]["location"] == ["body", "account_id"]
    surrogate = b'{"account_id": "%s", "requested_limit_minor": 5, "statement": "\\ud800"}'
    _problem(
        await http.post(
            "/appeals",
            content=surrogate % c.account_id.encode(),
            headers={**me, "content-type": "application/json"},
        ),
        422,
        "validation_failed",
    )
    # Not UTF-8 at all (schemathesis found FastAPI's undocumented 400 for it): 422.
    body = _problem(
        await http.post(
            "/appeals", content=b"i\xf89\xa0'B", headers={**me, "content-type": "application/json"}
        ),
        422,
        "validation_failed",
    )
    assert body["errors"][0]["type"] == "json_invalid"
    _problem(await http.get("/appeals/ab%00cd", headers=me), 404, "appeal_not_found")
    _problem(await http.get("/review-tasks/ab%00cd", headers=reviewer), 404, "task_not_found")
    _problem(await http.post("/review-tasks/ab%00cd/claim", headers=reviewer), 404, "task_not_found")
    body = _problem(
        await http.get("/review-tasks", params={"queue": "review\x00"}, headers=reviewer),
        422,
        "validation_failed",
    )
    assert body["errors"][0]["location"] == ["query", "queue"]
    _problem(
        await http.get("/review-tasks", params={"assignee": "\x00"}, headers=reviewer),
        422,
        "validation_failed",
    )
    # A header httpx would not send: driven raw.
    answer = await _raw(
        guarded.app,
        "POST",
        "/appeals",
        {**me, "content-type": "application/json", "idempotency-key": "k\x00"},
        iter([json.dumps({"account_id": c.account_id, "requested_limit_minor": 5}).encode()]),
    )
    assert answer.status == 422 and answer.json()["errors"][0]["location"] == ["header", "idempotency-key"]
    # A token whose subject holds a NUL names nobody.
    token = mint_token(guarded.settings, role=Role.CUSTOMER, subject="c\x00")
    nul = {"Authorization": f"Bearer {token}"}
    _problem(await http.get("/appeals", headers=nul), 401, "invalid_token")
    _problem(await http.post("/appeals", json={}, headers=nul), 401, "invalid_token")


def _cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


CRAFTED = [
    ["2026-11-01T10:00:00", "x"],  # a naive time
    ["2026-11-01T10:00:00+00:00", "x\x00"],  # a NUL in the id
    ["2026-11-01T10:00:00+00:00", "\ud800"],  # an unpaired surrogate
    ["2026-11-01T10:00:00+00:00", 10**30],
    [10**30, "x"],
    ["9999-12-31T23:59:59-14:00", "x"],  # past the largest time once in UTC
    {"a": 1},
    "not json",
]


@pytest.mark.parametrize("values", CRAFTED, ids=range(len(CRAFTED)))
async def test_crafted_appeal_cursors_are_invalid_cursor(guarded: Guarded, values: Any) -> None:
    cursor = _cursor(values) if not isinstance(values, str) else values
    me = guarded.auth(Role.CUSTOMER, "c-guard")
    _problem(await guarded.http.get("/appeals", params={"cursor": cursor}, headers=me), 422, "invalid_cursor")


QUEUE_CRAFTED = [
    ("priority", ["priority", 10**30, "2026-11-01T10:00:00+00:00", "x"]),
    ("priority", ["priority", -(10**30), "2026-11-01T10:00:00+00:00", "x"]),
    ("priority", ["priority", True, "2026-11-01T10:00:00+00:00", "x"]),
    ("priority", ["priority", 1, "2026-11-01T10:00:00", "x"]),
    ("due", ["due", "2026-11-01T10:00:00", "x"]),
    ("due", ["due", "2026-11-01T10:00:00+00:00", "x\x00"]),
    ("age", ["age", 10**30, "x"]),
    ("due", ["due"]),
]


@pytest.mark.parametrize(("sort", "values"), QUEUE_CRAFTED, ids=range(len(QUEUE_CRAFTED)))
async def test_crafted_queue_cursors_are_invalid_cursor(
    guarded: Guarded, sort: str, values: list[Any]
) -> None:
    with session_scope(guarded.engine) as session:  # one task, so that the listing runs its query
        c = make_customer(guarded.engine)
        appeal, _ = create_appeal(
            session, NewAppeal(customer_id=c.customer_id, account_id=c.account_id, requested_limit_minor=1000)
        )
        due = guarded.clock.now() + timedelta(days=1)
        create_task(
            session, NewTask(task_id=f"t-{appeal.id[:8]}", appeal_id=appeal.id, round=1, stage=1, due_at=due)
        )
    response = await guarded.http.get(
        "/review-tasks",
        params={"sort": sort, "cursor": _cursor(values)},
        headers=guarded.auth(Role.REVIEWER, "r-guard"),
    )
    _problem(response, 422, "invalid_cursor")


# -- 405 ------------------------------------------------------------------------------------


async def test_a_405_names_every_method_the_path_takes(guarded: Guarded) -> None:
    me = guarded.auth(Role.CUSTOMER, "c-guard")
    response = await guarded.http.delete("/appeals", headers=me)
    _problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, HEAD, POST"
    response = await guarded.http.put("/appeals/x", headers=me)
    assert response.status_code == 405 and response.headers["allow"] == "GET, HEAD"
    page = await guarded.http.put("/review", headers={"accept": "text/html"})
    assert page.status_code == 405 and page.headers["allow"] == "GET, HEAD"


# -- rate limits ------------------------------------------------------------------------------


async def test_submissions_over_the_rate_get_429_with_retry_after(settings: Settings, engine: Engine) -> None:
    """Two API processes on one database share the count (two apps here); the window slides
    on the app's clock."""
    clock = FixedClock(datetime(2026, 11, 2, 10, 0, 30, tzinfo=UTC))
    limited = _settings(settings, rate_limit_submissions=3, rate_limit_window=timedelta(minutes=1))
    c = make_customer(engine, original_limit_minor=800_000)
    body = {"account_id": c.account_id, "requested_limit_minor": 600_000}
    async with _guarded(limited, engine, clock) as one, _guarded(limited, engine, clock) as other:
        me = one.auth(Role.CUSTOMER, c.customer_id)
        assert (await one.http.post("/appeals", json=body, headers=me)).status_code == 201
        # Refusals by the route count too: the write was attempted.
        _problem(await other.http.post("/appeals", json=body, headers=me), 409, "open_appeal_exists")
        _problem(await one.http.post("/appeals", json=body, headers=me), 409, "open_appeal_exists")
        refused = await other.http.post("/appeals", json=body, headers=me)
        problem = _problem(refused, 429, "rate_limited")
        assert refused.headers["retry-after"] == str(problem["retry_after"])
        # 3 in this window, 30 s in: the next fits 20 s into the next window, where two thirds
        # of this one's count still weigh (2 + 1 <= 3).
        assert problem["retry_after"] == 50
        # Someone else is not held up.
        stranger = make_customer(engine, original_limit_minor=800_000)
        theirs = {"account_id": stranger.account_id, "requested_limit_minor": 600_000}
        mine = one.auth(Role.CUSTOMER, stranger.customer_id)
        assert (await one.http.post("/appeals", json=theirs, headers=mine)).status_code == 201
        clock.advance(timedelta(seconds=49))
        _problem(await one.http.post("/appeals", json=body, headers=me), 429, "rate_limited")
        clock.advance(timedelta(seconds=1))
        _problem(await one.http.post("/appeals", json=body, headers=me), 409, "open_appeal_exists")


async def test_decisions_and_uploads_are_rate_limited_per_principal(
    settings: Settings, engine: Engine
) -> None:
    clock = FixedClock(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    limited = _settings(settings, rate_limit_decisions=2, rate_limit_uploads=1)
    async with _guarded(limited, engine, clock) as g:
        reviewer = g.auth(Role.REVIEWER, "r-rate")
        decision = {"outcome": "DECLINE", "reasons": ["RC_DEBT_BURDEN"]}
        for _ in range(2):
            _problem(
                await g.http.post("/review-tasks/nope/decision", json=decision, headers=reviewer),
                404,
                "task_not_found",
            )
        _problem(
            await g.http.post("/review-tasks/nope/decision", json=decision, headers=reviewer),
            429,
            "rate_limited",
        )
        # Another reviewer has their own count.
        other = g.auth(Role.REVIEWER, "r-other")
        _problem(
            await g.http.post("/review-tasks/nope/decision", json=decision, headers=other),
            404,
            "task_not_found",
        )

        me = g.auth(Role.CUSTOMER, "c-rate")
        upload = {
            "doc_type": "BANK_STATEMENT",
            "content_type": "text/csv",
            "size_bytes": 10,
            "filename": "s.csv",
        }
        _problem(
            await g.http.post("/appeals/nope/documents/uploads", json=upload, headers=me),
            404,
            "appeal_not_found",
        )
        # The streamed upload is refused before its body is read.
        answer = await _raw(
            g.app,
            "POST",
            "/appeals/nope/documents",
            {**me, "content-type": "multipart/form-data; boundary=guard"},
            _multipart(1024 * 1024),
        )
        assert answer.status == 429 and answer.bytes_read == 0 and int(answer.headers["retry-after"]) > 0


async def test_the_portal_shares_the_submission_limit_and_answers_with_a_page(
    settings: Settings, engine: Engine
) -> None:
    """The web page's door is counted with the API's, per signed-in principal; past the limit
    it gets an HTML page (429, Retry-After) and nothing is read or created."""
    clock = FixedClock(datetime(2026, 11, 2, 10, 0, tzinfo=UTC))
    async with _guarded(_settings(settings, rate_limit_submissions=1), engine, clock) as g:
        c = make_customer(g.engine, original_limit_minor=800_000)
        api = await g.http.post(
            "/appeals",
            json={"account_id": "acct-nope", "requested_limit_minor": 5},
            headers=g.auth(Role.CUSTOMER, c.customer_id),
        )
        _problem(api, 404, "account_not_found")
        token = await sign_in(g.http, c.customer_id, "customer")
        form = {"account_id": c.account_id, "idempotency_key": "form-1", "requested_limit": "6000"}
        page = await g.http.post(
            "/app/appeals", data={**form, "csrf_token": token}, headers={"accept": "text/html"}
        )
        assert page.status_code == 429 and page.headers["content-type"].startswith("text/html")
        assert int(page.headers["retry-after"]) > 0 and "rate_limited" in page.text
        with session_scope(g.engine, read_only=True) as session:
            assert session.get(Appeal, "form-1") is None
            assert not list(session.exec(select(Appeal).where(Appeal.customer_id == c.customer_id)))
