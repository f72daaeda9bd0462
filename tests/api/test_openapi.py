"""The OpenAPI document tells the truth about errors: every operation lists the problem+json
answers it can give, by code, with the Problem schemas, and real error answers match it."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import pytest_asyncio
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from openapi_spec_validator import validate as validate_spec
from sqlalchemy.engine import Engine

from api.app import create_app
from api.deps import get_gateway, get_principal
from api.openapi import PROBLEMS
from api.request_guard import BODY_METHODS, RATE_LIMITED
from core.auth import Role, mint_token
from core.db import session_scope
from core.reviews.service import NewTask, create_task
from core.settings import Settings
from launcher.stack import free_port
from tests.api.conftest import offline_app
from tests.factories import make_customer

PROBLEM_JSON = "application/problem+json"
PROBLEM_SCHEMAS = {"Problem", "ValidationProblem", "LedgerImportProblem"}
AUTH_CODES = {"missing_token", "invalid_token", "token_expired"}
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def app() -> FastAPI:
    return create_app(Settings())


@pytest.fixture(scope="module")
def spec(app: FastAPI) -> dict[str, Any]:
    return app.openapi()


def _operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def _routes(app: FastAPI) -> list[Any]:
    """The app's API routes, with their full paths: newer FastAPI keeps included routers as
    one entry each in `app.routes`, and resolves their routes through route contexts."""
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # an older FastAPI lists every route in app.routes
        found: list[Any] = [r for r in app.routes if isinstance(r, APIRoute)]
    else:
        found = [c for c in iter_route_contexts(app.routes) if isinstance(c.original_route, APIRoute)]
    return [route for route in found if route.include_in_schema]


def _all(dependant: Dependant) -> list[Dependant]:
    """The route's dependant and all it depends on, however deep."""
    found = [dependant]
    for sub in dependant.dependencies:
        found += _all(sub)
    return found


def _can_fail_validation(parameter: dict[str, Any]) -> bool:
    """Whether a query or header parameter can be refused: required, or anything stricter
    than an optional plain string (a number, an enum, a length limit)."""
    if parameter.get("required"):
        return True
    schema = parameter.get("schema", {})
    for option in schema.get("anyOf", [schema]):
        if option.get("type") not in ("string", "null") or set(option) - {"type", "title", "description"}:
            return True
    return False


def _validator(spec: dict[str, Any], ref: str) -> jsonschema.Draft202012Validator:
    return _schema_validator(spec, {"$ref": ref})


def _schema_validator(spec: dict[str, Any], schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    """Validates against a schema of the document; its refs resolve within the document."""
    return jsonschema.Draft202012Validator({"allOf": [schema], "components": spec["components"]})


def _codes(operation: dict[str, Any], status: int) -> set[str]:
    response = operation["responses"].get(str(status))
    if response is None or PROBLEM_JSON not in response.get("content", {}):
        return set()
    return set(response["content"][PROBLEM_JSON]["examples"])


# -- the document as a whole ---------------------------------------------------------------------


def test_the_document_is_valid_openapi(spec: dict[str, Any]) -> None:
    validate_spec(spec)


def test_no_fastapi_validation_error_schema_remains(spec: dict[str, Any]) -> None:
    text = json.dumps(spec)
    assert "HTTPValidationError" not in text
    assert '"ValidationError"' not in text and "schemas/ValidationError" not in text
    assert set(spec["components"]["schemas"]) >= PROBLEM_SCHEMAS


def test_every_error_answer_is_a_documented_problem(spec: dict[str, Any]) -> None:
    for method, path, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if int(status) < 400 or (path in ("/health", "/health/ready") and status == "503"):
                continue
            where = f"{method} {path} {status}"
            assert set(response.get("content", {})) == {PROBLEM_JSON}, where
            media = response["content"][PROBLEM_JSON]
            ref = media["schema"]["$ref"]
            assert ref.rsplit("/", 1)[-1] in PROBLEM_SCHEMAS, where
            assert media["examples"], where
            validator = _validator(spec, ref)
            for code, example in media["examples"].items():
                body = example["value"]
                assert (body["code"], body["status"]) == (code, int(status)), where
                assert body["type"] == f"urn:problem:appeals:{code}", where
                assert f"`{code}`" in response["description"], where
                validator.validate(body)
                # The example's instance is this operation's path, with sample ids.
                assert re.fullmatch(re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(path)), body["instance"])


def test_the_operations_list_what_their_dependencies_can_raise(app: FastAPI, spec: dict[str, Any]) -> None:
    """Derived from each route itself, so a new route cannot forget the common answers."""
    routes = _routes(app)
    assert {(m, r.path_format) for r in routes for m in r.methods} == set(EXPECTED_STATUSES)
    # These start no workflow call whose failure reaches the caller: a failed start or signal is
    # retried later by the worker's reconciler (api/services.py, api/document_uploads.py).
    defers_workflow_calls = {
        ("POST", "/appeals"),
        ("POST", "/appeals/{appeal_id}/documents"),
        ("POST", "/appeals/{appeal_id}/documents/{document_id}/complete"),
        ("POST", "/admin/ledger/events"),  # a limit action not started now: the reconciler's
    }
    for route in routes:
        parts = _all(route.dependant)
        calls = {part.call for part in parts}
        headers = [param for part in parts for param in part.header_params]
        names = {param.name for part in parts for param in part.path_params}
        for method in route.methods or ():
            operation = spec["paths"][route.path_format][method.lower()]
            where = f"{method} {route.path_format}"
            if get_principal in calls:
                assert _codes(operation, 401) == AUTH_CODES, where
            if any(getattr(call, "__qualname__", "") == "require_role.<locals>._check" for call in calls):
                assert "role_required" in _codes(operation, 403), where
            validated = [
                p for p in operation.get("parameters", []) if p["in"] != "path" and _can_fail_validation(p)
            ]
            if route.body_field is not None or validated:
                assert "validation_failed" in _codes(operation, 422), where
                schema = operation["responses"]["422"]["content"][PROBLEM_JSON]["schema"]["$ref"]
                assert schema.endswith("/ValidationProblem"), where
            if "appeal_id" in names:
                assert "appeal_not_found" in _codes(operation, 404), where
            if "task_id" in names:
                assert "task_not_found" in _codes(operation, 404), where
            if any(param.alias == "If-Match" for param in headers):
                assert "stale_version" in _codes(operation, 412), where
                assert "invalid_if_match" in _codes(operation, 422), where
            if get_gateway in calls and (method, route.path_format) not in defers_workflow_calls:
                assert "temporal_unavailable" in _codes(operation, 503), where


EXPECTED_STATUSES = {
    ("POST", "/appeals"): {401, 403, 404, 409, 422},
    ("GET", "/appeals"): {401, 403, 422},
    ("GET", "/appeals/{appeal_id}"): {401, 404, 422},
    ("POST", "/appeals/{appeal_id}/withdraw"): {401, 403, 404, 409, 422, 503},
    ("GET", "/appeals/{appeal_id}/assessment"): {401, 404},
    ("POST", "/appeals/{appeal_id}/human-review"): {401, 403, 404, 409, 422, 503},
    ("POST", "/appeals/{appeal_id}/documents"): {400, 401, 403, 404, 409, 413, 415, 422, 503},
    ("POST", "/appeals/{appeal_id}/documents/uploads"): {401, 403, 404, 409, 413, 415, 422},
    ("POST", "/appeals/{appeal_id}/documents/{document_id}/complete"): {401, 403, 404, 409, 410, 422, 503},
    ("GET", "/appeals/{appeal_id}/documents"): {401, 404},
    ("GET", "/appeals/{appeal_id}/documents/{document_id}/link"): {401, 403, 404, 409, 415, 422, 503},
    ("GET", "/review-tasks"): {401, 403, 422},
    ("POST", "/review-tasks/claim-next"): {401, 403, 409, 503},
    ("GET", "/review-tasks/{task_id}"): {401, 403, 404},
    ("POST", "/review-tasks/{task_id}/claim"): {401, 403, 404, 409, 412, 422, 503},
    ("POST", "/review-tasks/{task_id}/release"): {401, 403, 404, 409, 412, 422, 503},
    ("POST", "/review-tasks/{task_id}/reassign"): {401, 403, 404, 409, 412, 422, 503},
    ("POST", "/review-tasks/{task_id}/decision"): {401, 403, 404, 409, 412, 422, 503},
    ("GET", "/me/notifications"): {401, 403},
    ("GET", "/me/account-notices"): {401, 403},
    ("POST", "/admin/ledger/import"): {400, 401, 403, 413, 415, 422},
    ("POST", "/admin/ledger/events"): {401, 403, 413, 422},
    ("GET", "/admin/ledger/customers/{customer_id}"): {401, 403, 404},
    ("GET", "/admin/portfolio-reviews"): {401, 403, 422},
    ("GET", "/admin/staff"): {401, 403},
    ("GET", "/admin/staff/{staff_id}"): {401, 403, 404, 422},
    ("PUT", "/admin/staff/{staff_id}"): {401, 403, 422},
    ("GET", "/health"): {503},
    ("GET", "/health/ready"): {503},
    ("GET", "/health/live"): set(),
}


def test_each_operation_documents_exactly_its_error_statuses(spec: dict[str, Any]) -> None:
    documented = {
        (method, path): {int(s) for s in operation["responses"] if int(s) >= 400}
        for method, path, operation in _operations(spec)
    }
    # Besides each route's own answers, api/request_guard.py's before any route runs: 413 for a
    # body over its cap on every operation that takes one, 429 on the rate-limited writes.
    guarded = {
        operation: statuses
        | ({413} if operation[0] in BODY_METHODS else set())
        | ({429} if operation in RATE_LIMITED else set())
        for operation, statuses in EXPECTED_STATUSES.items()
    }
    assert documented == guarded
    for operation in RATE_LIMITED:
        if operation in documented:
            assert "rate_limited" in _codes(spec["paths"][operation[1]][operation[0].lower()], 429)


MAIN_OPERATIONS = [
    ("POST", "/appeals"),
    ("GET", "/appeals/{appeal_id}"),
    ("POST", "/appeals/{appeal_id}/withdraw"),
    ("POST", "/appeals/{appeal_id}/documents"),
    ("POST", "/appeals/{appeal_id}/documents/uploads"),
    ("POST", "/appeals/{appeal_id}/documents/{document_id}/complete"),
    ("POST", "/review-tasks/claim-next"),
    ("GET", "/review-tasks/{task_id}"),
    ("POST", "/review-tasks/{task_id}/claim"),
    ("POST", "/review-tasks/{task_id}/decision"),
]


@pytest.mark.parametrize(("method", "path"), MAIN_OPERATIONS)
def test_main_operations_are_described_with_examples(spec: dict[str, Any], method: str, path: str) -> None:
    operation = spec["paths"][path][method.lower()]
    assert operation.get("summary") and len(operation.get("description", "")) > 100
    ok = [s for s in operation["responses"] if s.startswith("2") and s != "204"]
    assert ok
    for status in ok:
        media = operation["responses"][status]["content"]["application/json"]
        if "example" in media:  # each example is a valid answer of the operation
            _schema_validator(spec, media["schema"]).validate(media["example"])
    assert any("example" in operation["responses"][s]["content"]["application/json"] for s in ok)
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        assert body.get("examples"), f"{method} {path}: no request example"
        for example in body["examples"].values():
            _schema_validator(spec, body["schema"]).validate(example["value"])


def test_every_code_the_api_raises_is_catalogued(spec: dict[str, Any]) -> None:
    # Raised by the workflow's activities only; they never reach an API caller.
    internal = {"invalid_transition"}
    raised: set[str] = set()
    for folder in ("api", "core"):
        for source in (ROOT / folder).rglob("*.py"):
            if source.is_relative_to(ROOT / "api" / "pages"):
                continue  # the web pages answer people with HTML pages, not in the OpenAPI document
            raised |= set(re.findall(r'\bcode="([a-z_]+)"', source.read_text()))
    assert raised - internal - set(PROBLEMS) == set()
    # ... and every catalogued answer is given by some operation.
    used = {
        (int(status), code)
        for _, _, operation in _operations(spec)
        for status in operation["responses"]
        for code in _codes(operation, int(status))
    }
    catalogued = {(status, code) for code, docs in PROBLEMS.items() for status in docs}
    assert catalogued - used == set()


# -- real answers match the document -------------------------------------------------------------


class Client:
    def __init__(self, http: httpx.AsyncClient, settings: Settings, engine: Engine, spec: dict[str, Any]):
        self.http, self.settings, self.engine, self.spec = http, settings, engine, spec

    def auth(self, role: Role, subject: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {mint_token(self.settings, role=role, subject=subject)}"}

    def assert_documented(self, response: httpx.Response, method: str, path: str, code: str) -> None:
        """The answer is one the operation documents: its status, content type, schema, code."""
        operation = self.spec["paths"][path][method.lower()]
        status = str(response.status_code)
        assert status in operation["responses"], f"{method} {path} answered {status}: {response.text}"
        assert response.headers["content-type"] == PROBLEM_JSON
        media = operation["responses"][status]["content"][PROBLEM_JSON]
        body = response.json()
        _validator(self.spec, media["schema"]["$ref"]).validate(body)
        assert body["code"] == code, body
        assert code in media["examples"], f"{code} is not documented for {method} {path} {status}"


@pytest_asyncio.fixture(loop_scope="session")
async def client(tmp_path: Path) -> AsyncIterator[Client]:
    """The real app on SQLite, with Temporal down (nothing listens on its port) and no S3."""
    settings = Settings(data_dir=tmp_path, temporal_address=f"127.0.0.1:{free_port()}")
    async with offline_app(settings, tmp_path) as (http, engine, app):
        yield Client(http, settings, engine, app.openapi())


async def test_real_error_answers_match_the_document(client: Client) -> None:
    c = make_customer(client.engine, original_limit_minor=800_000)
    me = client.auth(Role.CUSTOMER, c.customer_id)
    reviewer = client.auth(Role.REVIEWER, "r-1")
    http, check = client.http, client.assert_documented
    # What /openapi.json serves (and /docs shows) is the finished document.
    served = await http.get("/openapi.json")
    assert served.json() == client.spec and "HTTPValidationError" not in served.text

    check(await http.get("/appeals/x"), "GET", "/appeals/{appeal_id}", "missing_token")
    check(
        await http.get("/appeals/x", headers={"Authorization": "Bearer nope"}),
        "GET",
        "/appeals/{appeal_id}",
        "invalid_token",
    )
    check(await http.get("/appeals/x", headers=me), "GET", "/appeals/{appeal_id}", "appeal_not_found")
    body = {"account_id": c.account_id, "requested_limit_minor": 600_000}
    check(await http.post("/appeals", json=body, headers=reviewer), "POST", "/appeals", "role_required")
    check(
        await http.post("/appeals", json={**body, "requested_limit_minor": -1}, headers=me),
        "POST",
        "/appeals",
        "validation_failed",
    )
    check(
        await http.post("/appeals", json={**body, "requested_limit_minor": 900_000}, headers=me),
        "POST",
        "/appeals",
        "requested_limit_above_original",
    )
    check(
        await http.post("/appeals", json={**body, "account_id": "acct-nope"}, headers=me),
        "POST",
        "/appeals",
        "account_not_found",
    )
    # With Temporal down the appeal is still recorded (its workflow starts later) ...
    created = await http.post("/appeals", json=body, headers=me)
    assert created.status_code == 201, created.text
    appeal_id = created.json()["id"]
    # ... a second one for the account is refused, and a withdrawal cannot reach the workflow.
    check(await http.post("/appeals", json=body, headers=me), "POST", "/appeals", "open_appeal_exists")
    check(
        await http.post(f"/appeals/{appeal_id}/withdraw", headers=me),
        "POST",
        "/appeals/{appeal_id}/withdraw",
        "temporal_unavailable",
    )
    check(
        await http.get("/appeals", headers=me, params={"cursor": "!!"}), "GET", "/appeals", "invalid_cursor"
    )

    uploads = f"/appeals/{appeal_id}/documents/uploads"
    upload = {
        "doc_type": "BANK_STATEMENT",
        "content_type": "application/pdf",
        "size_bytes": 10,
        "filename": "s.pdf",
    }
    path = "/appeals/{appeal_id}/documents/uploads"
    check(
        await http.post(uploads, json={**upload, "size_bytes": 10**9}, headers=me),
        "POST",
        path,
        "document_too_large",
    )
    check(
        await http.post(uploads, json={**upload, "content_type": "application/zip"}, headers=me),
        "POST",
        path,
        "unsupported_document_type",
    )
    check(
        await http.post(uploads, json={**upload, "doc_type": "PAYSLIP"}, headers=me),
        "POST",
        path,
        "unknown_document_type",
    )
    check(await http.post(uploads, json=upload, headers=me), "POST", path, "not_collecting_documents")

    # A review task on the appeal: stale and malformed If-Match, and a claim the workflow
    # cannot be told about (so it is undone).
    task_id = str(uuid.uuid4())
    with session_scope(client.engine) as session:
        due = datetime(2999, 1, 1, tzinfo=UTC) - timedelta(days=1)
        create_task(session, NewTask(task_id=task_id, appeal_id=appeal_id, round=1, stage=1, due_at=due))
    claim = f"/review-tasks/{task_id}/claim"
    path = "/review-tasks/{task_id}/claim"
    check(await http.post(claim, headers={**reviewer, "If-Match": '"99"'}), "POST", path, "stale_version")
    check(await http.post(claim, headers={**reviewer, "If-Match": "abc"}), "POST", path, "invalid_if_match")
    check(await http.post(claim, headers=me), "POST", path, "role_required")
    check(await http.post(claim, headers=reviewer), "POST", path, "temporal_unavailable")
    check(await http.post("/review-tasks/nope/claim", headers=reviewer), "POST", path, "task_not_found")
    # The failed claim was given back: the task is open again, and still claimable.
    task = (await http.get(f"/review-tasks/{task_id}", headers=reviewer)).json()["task"]
    assert (task["status"], task["assignee"]) == ("OPEN", None)
    check(
        await http.post(f"/review-tasks/{task_id}/decision", headers=reviewer, json={"outcome": "DECLINE"}),
        "POST",
        "/review-tasks/{task_id}/decision",
        "validation_failed",
    )
