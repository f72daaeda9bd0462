"""The authorization matrix (issue 13): every operation of the app's OpenAPI document, called by
each kind of caller, on the real stack (dev server, worker, S3, SQLite and PostgreSQL).

The operations are read from the document when the tests are collected, and each must have a
row in ACCESS saying who may use it: a new endpoint without one fails here, so none can skip
the matrix. Each operation is called by twelve principals: no token, an expired one, one signed
with another key, one with `alg: none`, one with a role we do not know, one naming nobody
(an empty `sub`), another customer, the appeal's owner, a reviewer, a senior reviewer, a
supervisor and an admin. Those not allowed get the refusal documented for them (401 for a bad
token, 403 `role_required` for a role the operation does not serve, 404 for another customer's
appeal); those allowed get past authorization; nobody gets a 5xx; every answer's status is one
the operation documents.

The figures (operations x principals, answers by status) are printed at the end of each
database's run and written to test-artifacts/authorization-matrix-{database}.json.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

import httpx
import jwt
import pytest
import pytest_asyncio
from sqlalchemy.engine import Engine
from temporalio.client import Client

from api.app import create_app
from core.auth import Role, mint_token
from core.db import make_engine
from core.db.migrate import create_all_at_head
from core.settings import Settings
from core.storage import ensure_bucket, make_s3_client
from gateway.temporal import TemporalGateway
from tests.api.conftest import Api
from tests.api.review_helpers import appeal_in_review
from tests.conftest import _drop_schema, _postgres_engine, make_settings
from tests.documents import recent_statement_csv
from tests.workflows.conftest import running_worker

ON_THE_STACK = pytest.mark.asyncio(loop_scope="session")

ROOT = Path(__file__).resolve().parents[2]


class Access(StrEnum):
    """Who may use an operation."""

    PUBLIC = "public"  # no token needed (health)
    CUSTOMER = "customer"  # any customer, about themselves; staff 403
    OWNER = "owner"  # the appeal's customer; another customer 404; staff 403
    READER = "reader"  # the appeal's customer or any staff; another customer 404
    STAFF = "staff"  # reviewers, senior reviewers, supervisors, admins; customers 403
    SUPERVISING = "supervising"  # supervisors and admins; everyone else 403
    ADMIN = "admin"  # admins only


# Every operation of the API, and who may use it. A new operation fails the test below until
# it has a row here (rows for operations the document no longer has are ignored).
ACCESS: Final[dict[tuple[str, str], Access]] = {
    ("POST", "/appeals"): Access.CUSTOMER,
    ("GET", "/appeals"): Access.CUSTOMER,
    ("GET", "/appeals/{appeal_id}"): Access.READER,
    ("POST", "/appeals/{appeal_id}/withdraw"): Access.OWNER,
    ("GET", "/appeals/{appeal_id}/assessment"): Access.READER,
    ("POST", "/appeals/{appeal_id}/human-review"): Access.OWNER,
    ("POST", "/appeals/{appeal_id}/documents"): Access.OWNER,
    ("GET", "/appeals/{appeal_id}/documents"): Access.READER,
    ("POST", "/appeals/{appeal_id}/documents/uploads"): Access.OWNER,
    ("POST", "/appeals/{appeal_id}/documents/{document_id}/complete"): Access.OWNER,
    ("GET", "/appeals/{appeal_id}/documents/{document_id}/link"): Access.STAFF,
    ("GET", "/review-tasks"): Access.STAFF,
    ("POST", "/review-tasks/claim-next"): Access.STAFF,
    ("GET", "/review-tasks/{task_id}"): Access.STAFF,
    ("POST", "/review-tasks/{task_id}/claim"): Access.STAFF,
    ("POST", "/review-tasks/{task_id}/release"): Access.STAFF,
    ("POST", "/review-tasks/{task_id}/reassign"): Access.SUPERVISING,
    ("POST", "/review-tasks/{task_id}/decision"): Access.STAFF,
    ("GET", "/me/notifications"): Access.CUSTOMER,
    ("GET", "/me/account-notices"): Access.CUSTOMER,
    ("POST", "/admin/ledger/import"): Access.ADMIN,
    ("POST", "/admin/ledger/events"): Access.ADMIN,
    ("GET", "/admin/ledger/customers/{customer_id}"): Access.ADMIN,
    ("GET", "/admin/portfolio-reviews"): Access.SUPERVISING,
    ("GET", "/admin/staff"): Access.ADMIN,
    ("GET", "/admin/staff/{staff_id}"): Access.ADMIN,
    ("PUT", "/admin/staff/{staff_id}"): Access.ADMIN,
    ("GET", "/health/live"): Access.PUBLIC,
    ("GET", "/health/ready"): Access.PUBLIC,
    ("GET", "/health"): Access.PUBLIC,
}

# The twelve callers, in the order each operation is called by them: the refused first, and
# the appeal's owner last (their withdrawal is the one call that ends the scenario's appeal).
BAD_TOKENS: Final = ("no token", "expired", "wrong key", "alg none", "unknown role", "empty sub")
PRINCIPALS: Final = (
    *BAD_TOKENS,
    "other customer",
    "reviewer",
    "senior reviewer",
    "supervisor",
    "admin",
    "owner",
)
STAFF_ROLES: Final = {
    "reviewer": (Role.REVIEWER, "r-matrix"),
    "senior reviewer": (Role.SENIOR_REVIEWER, "s-matrix"),
    "supervisor": (Role.SUPERVISOR, "sup-matrix"),
    "admin": (Role.ADMIN, "a-matrix"),
}
AUTH_CODES: Final = {"missing_token", "invalid_token", "token_expired"}
# Operations whose call changes the scenario for the ones after it run last, withdrawal last.
LAST: Final = ("POST /review-tasks/{task_id}/decision", "POST /appeals/{appeal_id}/withdraw")


def _document() -> dict[str, Any]:
    settings = Settings()
    spec: dict[str, Any] = create_app(settings).openapi()
    return spec


def _operations() -> list[tuple[str, str]]:
    ops = [
        (method.upper(), path)
        for path, item in _document()["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    ]
    return sorted(ops, key=lambda op: LAST.index(" ".join(op)) + 1 if " ".join(op) in LAST else 0)


OPERATIONS: Final = _operations()


def test_every_operation_has_a_row_in_the_matrix() -> None:
    missing = [f"{method} {path}" for method, path in OPERATIONS if (method, path) not in ACCESS]
    assert not missing, f"add these operations to ACCESS in {Path(__file__).name}: {missing}"


# -- the principals ------------------------------------------------------------------------


def _claims(settings: Settings, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)  # PyJWT checks `exp` against the machine's clock
    return {
        "sub": "c-matrix",
        "role": "customer",
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + timedelta(hours=1),
        **changes,
    }


def _headers(settings: Settings, who: str, owner: str) -> dict[str, str]:
    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    secret, alg = settings.jwt_secret, settings.jwt_algorithm
    if who == "no token":
        return {}
    if who == "expired":
        past = datetime.now(UTC) - timedelta(hours=2)
        return bearer(jwt.encode(_claims(settings, sub=owner, iat=past, exp=past), secret, algorithm=alg))
    if who == "wrong key":
        return bearer(jwt.encode(_claims(settings, sub=owner), "not-this-service-" * 4, algorithm=alg))
    if who == "alg none":
        return bearer(jwt.encode(_claims(settings, sub="a-matrix", role="admin"), "", algorithm="none"))
    if who == "unknown role":
        return bearer(jwt.encode(_claims(settings, sub="x-matrix", role="auditor"), secret, algorithm=alg))
    if who == "empty sub":
        return bearer(jwt.encode(_claims(settings, sub="", role="admin"), secret, algorithm=alg))
    if who == "other customer":
        return bearer(mint_token(settings, role=Role.CUSTOMER, subject="c-someone-else"))
    if who == "owner":
        return bearer(mint_token(settings, role=Role.CUSTOMER, subject=owner))
    role, subject = STAFF_ROLES[who]
    return bearer(mint_token(settings, role=role, subject=subject))


def _allowed(access: Access, who: str) -> bool:
    if access is Access.PUBLIC:
        return True
    if who in BAD_TOKENS:
        return False
    customer = who in ("owner", "other customer")
    return {
        Access.CUSTOMER: customer,
        Access.OWNER: who == "owner",
        Access.READER: who != "other customer",
        Access.STAFF: not customer,
        Access.SUPERVISING: who in ("supervisor", "admin"),
        Access.ADMIN: who == "admin",
    }[access]


def _refusal(access: Access, who: str) -> tuple[int, set[str]]:
    """The documented answer to a caller who may not use the operation: (status, codes)."""
    if who in BAD_TOKENS:
        return 401, AUTH_CODES
    if who == "other customer" and access in (Access.OWNER, Access.READER):
        return 404, {"appeal_not_found"}  # never 403: another's appeal cannot be probed
    return 403, {"role_required"}


# -- the stack and the scenario ------------------------------------------------------------


@dataclass
class Scenario:
    api: Api
    database: str
    owner: str
    ids: dict[str, str]
    answers: list[dict[str, Any]] = field(default_factory=list)


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["sqlite", "postgresql"])
async def scenario(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    s3_endpoint: str,
    temporal_client: Client,
) -> AsyncIterator[Scenario]:
    """One stack per database, and an appeal in review whose owner, task and documents the
    operations' paths name."""
    tmp = tmp_path_factory.mktemp(f"matrix-{request.param}")
    settings = make_settings(tmp, s3_endpoint_url=s3_endpoint)
    s3: Any = make_s3_client(settings)
    ensure_bucket(s3, settings.s3_bucket)
    schema = None
    if request.param == "sqlite":
        engine: Engine = make_engine(f"sqlite:///{tmp / 'appeals.db'}")
    else:
        engine, schema = _postgres_engine()
    create_all_at_head(engine)
    app = create_app(
        settings, engine=engine, s3_client=s3, gateway=TemporalGateway(settings, temporal_client)
    )
    try:
        async with (
            running_worker(temporal_client, settings, engine, s3),
            app.router.lifespan_context(app),
        ):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
                api = Api(http, settings, engine, app)
                appeal_id, me, task_id, owner = await appeal_in_review(api, seed=1313)
                listed = await http.get(f"/appeals/{appeal_id}/documents", headers=me)
                document_id = listed.json()["items"][0]["id"]
                ids = {
                    "appeal_id": appeal_id,
                    "task_id": task_id,
                    "document_id": document_id,
                    "customer_id": owner,
                    "staff_id": "matrix-staff",
                }
                found = Scenario(api, request.param, owner, ids)
                yield found
                _report(found)
    finally:
        if schema is not None:
            _drop_schema(engine, schema)
        else:
            engine.dispose()


def _request(method: str, path: str, ids: dict[str, str]) -> dict[str, Any]:
    """A well-formed call of the operation: what decides its answer is who makes it."""
    url = path.format(**ids)
    op = f"{method} {path}"
    bodies: dict[str, dict[str, Any]] = {
        "POST /appeals": {"json": {"account_id": "ta-none", "requested_limit_minor": 100_000}},
        "POST /appeals/{appeal_id}/withdraw": {"json": {"reason": "matrix"}},
        "POST /appeals/{appeal_id}/human-review": {"json": {"reason": "matrix"}},
        "POST /appeals/{appeal_id}/documents": {
            "data": {"doc_type": "BANK_STATEMENT"},
            "files": {"file": ("statement.csv", recent_statement_csv(seed=13), "text/csv")},
        },
        "POST /appeals/{appeal_id}/documents/uploads": {
            "json": {
                "doc_type": "BANK_STATEMENT",
                "filename": "statement.csv",
                "content_type": "text/csv",
                "size_bytes": 1000,
            }
        },
        "POST /review-tasks/{task_id}/reassign": {"json": {"to": "r-matrix"}},
        "POST /review-tasks/{task_id}/decision": {
            "json": {"outcome": "DECLINE", "reasons": ["RC_LATE_PAYMENTS"]},
            "headers": {"Idempotency-Key": f"matrix-{uuid.uuid4()}"},
        },
        "PUT /admin/staff/{staff_id}": {"json": {"roles": ["reviewer"], "active": True}},
        "POST /admin/ledger/import": {"files": {"customers.csv": ("customers.csv", b"id\n", "text/csv")}},
    }
    return {"method": method, "url": url, **bodies.get(op, {})}


def _documented(operation: dict[str, Any], status: int) -> bool:
    return str(status) in operation["responses"]


@ON_THE_STACK
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
async def test_each_principal_gets_the_documented_answer(scenario: Scenario, method: str, path: str) -> None:
    access = ACCESS.get((method, path))
    assert access is not None, f"{method} {path} has no row in ACCESS"
    operation = scenario.api.app.openapi()["paths"][path][method.lower()]
    wrong: list[str] = []
    for who in PRINCIPALS:
        call = _request(method, path, scenario.ids)
        extra = call.pop("headers", {})
        headers = {**_headers(scenario.api.settings, who, scenario.owner), **extra}
        response = await scenario.api.http.request(headers=headers, **call)
        status = response.status_code
        body = response.json() if response.headers.get("content-type", "").endswith("json") else None
        code = body.get("code") if isinstance(body, dict) else None
        allowed = _allowed(access, who)
        scenario.answers.append(
            {
                "operation": f"{method} {path}",
                "principal": who,
                "allowed": allowed,
                "status": status,
                "code": code,
            }
        )
        where = f"{method} {path} as {who}: {status} {code or ''} {response.text[:200]}"
        if status >= 500:
            wrong.append(f"server error: {where}")
        elif not _documented(operation, status):
            wrong.append(f"undocumented status: {where}")
        elif allowed:
            refused_here = code in AUTH_CODES or code == "role_required"
            if refused_here or (who == "owner" and code == "appeal_not_found"):
                wrong.append(f"refused an allowed caller: {where}")
        else:
            want_status, want_codes = _refusal(access, who)
            if status != want_status or code not in want_codes:
                wrong.append(f"expected {want_status} {sorted(want_codes)}: {where}")
    assert not wrong, "\n".join(wrong)


# -- the figures -----------------------------------------------------------------------------


def _report(scenario: Scenario) -> None:
    answers = scenario.answers
    operations = sorted({a["operation"] for a in answers})
    by_status = Counter(a["status"] for a in answers)
    refused = [a for a in answers if not a["allowed"]]
    figures = {
        "database": scenario.database,
        "operations": len(operations),
        "principals": len(PRINCIPALS),
        "calls": len(answers),
        "allowed_calls": len(answers) - len(refused),
        "refused_calls": len(refused),
        "refused_by_status": dict(sorted(Counter(a["status"] for a in refused).items())),
        "by_principal": {
            who: dict(sorted(Counter(a["status"] for a in answers if a["principal"] == who).items()))
            for who in PRINCIPALS
        },
        "answers_by_status": dict(sorted(by_status.items())),
        "server_errors": sum(n for s, n in by_status.items() if s >= 500),
        "answers": answers,
    }
    out = ROOT / "test-artifacts" / f"authorization-matrix-{scenario.database}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(figures, indent=1))
    summary = {k: v for k, v in figures.items() if k != "answers"}
    print(f"\nauthorization matrix: {json.dumps(summary)}")
    for op in operations:
        statuses = Counter(a["status"] for a in answers if a["operation"] == op)
        print(f"  {op}: {dict(sorted(statuses.items()))}")
