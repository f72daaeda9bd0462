"""The HTTP API on the real app, database (SQLite and PostgreSQL), S3 server and dev server."""

from __future__ import annotations

from typing import Any

import pytest

from core.auth import Role
from core.db.ledger_tables import AccountStatus
from tests.api.conftest import Api
from tests.documents import recent_statement_csv, text_pdf
from tests.eventually import eventually
from tests.factories import make_customer

pytestmark = pytest.mark.asyncio(loop_scope="session")
PROBLEM = "application/problem+json"


def _assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    return body


async def _appeal(api: Api, appeal_id: str, headers: dict[str, str]) -> dict[str, Any]:
    response = await api.http.get(f"/appeals/{appeal_id}", headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _wait_status(api: Api, appeal_id: str, headers: dict[str, str], status: str) -> dict[str, Any]:
    """The appeal once it shows `status`. Only wait for a status the appeal stays in until
    the test acts (or a closed one): a passing status may be missed between two reads."""
    return await eventually(
        lambda: _appeal(api, appeal_id, headers),
        lambda body: body["status"] == status,
        what=f"appeal {appeal_id} to be {status}",
    )


async def _notices(api: Api, headers: dict[str, str], *events: str) -> list[dict[str, Any]]:
    """The customer's notices once one of each event is there: the workflow writes a notice
    after the status it announces, so a status seen is no proof that its notice exists."""

    async def fetch() -> list[dict[str, Any]]:
        response = await api.http.get("/me/notifications", headers=headers)
        assert response.status_code == 200, response.text
        notices: list[dict[str, Any]] = response.json()
        return notices

    return await eventually(
        fetch,
        lambda notices: set(events) <= {n["event"] for n in notices},
        what=f"notices {', '.join(events)}",
    )


def _document(appeal: dict[str, Any], document_id: str) -> dict[str, Any]:
    found: dict[str, Any] = next(d for d in appeal["documents"] if d["id"] == document_id)
    return found


async def upload_checklist(api: Api, appeal_id: str, headers: dict[str, str], seed: int = 7) -> None:
    """Uploads what a late payer's checklist asks for: a 3-month statement and a credit report."""
    for doc_type, name, body, content_type in (
        ("BANK_STATEMENT", "statement.csv", recent_statement_csv(seed=seed), "text/csv"),
        ("CREDIT_REPORT", "report.pdf", text_pdf(), "application/pdf"),
    ):
        response = await api.http.post(
            f"/appeals/{appeal_id}/documents",
            headers=headers,
            data={"doc_type": doc_type},
            files={"file": (name, body, content_type)},
        )
        assert response.status_code == 201, response.text


async def test_submit_read_and_list(api: Api) -> None:
    c = make_customer(api.engine)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    response = await api.http.post(
        "/appeals",
        json={"account_id": c.account_id, "requested_limit_minor": 500_000},
        headers={**me, "Idempotency-Key": "once"},
    )
    assert response.status_code == 201, response.text
    appeal = response.json()
    assert response.headers["location"].endswith(f"/appeals/{appeal['id']}")
    assert appeal["workflow_id"] == f"appeal-{appeal['id']}"
    # The same Idempotency-Key gives the same appeal, not a second one (and not a 409).
    again = await api.http.post(
        "/appeals",
        json={"account_id": c.account_id, "requested_limit_minor": 500_000},
        headers={**me, "Idempotency-Key": "once"},
    )
    assert again.status_code == 200 and again.json()["id"] == appeal["id"]
    # A second appeal for the same account is a conflict naming the open one.
    body = _assert_problem(
        await api.http.post(
            "/appeals",
            json={"account_id": c.account_id, "requested_limit_minor": 500_000},
            headers=me,
        ),
        409,
        "open_appeal_exists",
    )
    assert body["open_appeal_id"] == appeal["id"]

    detail = await _wait_status(api, appeal["id"], me, "AWAITING_DOCUMENTS")
    assert [e["to_status"] for e in detail["timeline"]] == ["SUBMITTED", "AWAITING_DOCUMENTS"]
    listing = (await api.http.get("/appeals", headers=me, params={"status": "AWAITING_DOCUMENTS"})).json()
    assert [item["id"] for item in listing["items"]] == [appeal["id"]]
    assert (await api.http.get("/appeals", headers=me, params={"status": "CLOSED"})).json()["items"] == []


async def test_ownership_roles_and_tokens(api: Api) -> None:
    owner, stranger = make_customer(api.engine), make_customer(api.engine)
    response = await api.http.post(
        "/appeals",
        json={"account_id": owner.account_id, "requested_limit_minor": 1000},
        headers=api.auth(Role.CUSTOMER, owner.customer_id),
    )
    appeal_id = response.json()["id"]
    stranger_auth = api.auth(Role.CUSTOMER, stranger.customer_id)
    _assert_problem(
        await api.http.get(f"/appeals/{appeal_id}", headers=stranger_auth), 404, "appeal_not_found"
    )
    _assert_problem(
        await api.http.post(f"/appeals/{appeal_id}/withdraw", headers=stranger_auth),
        404,
        "appeal_not_found",
    )
    _assert_problem(
        await api.http.post(
            "/appeals",
            json={"account_id": owner.account_id, "requested_limit_minor": 1000},
            headers=stranger_auth,
        ),
        404,
        "account_not_found",
    )
    _assert_problem(await api.http.get("/review-tasks", headers=stranger_auth), 403, "role_required")
    _assert_problem(
        await api.http.post(
            "/appeals",
            json={"account_id": "x", "requested_limit_minor": 1},
            headers=api.auth(Role.REVIEWER, "r-1"),
        ),
        403,
        "role_required",
    )
    _assert_problem(await api.http.get(f"/appeals/{appeal_id}"), 401, "missing_token")
    _assert_problem(
        await api.http.get(f"/appeals/{appeal_id}", headers={"Authorization": "Bearer nope"}),
        401,
        "invalid_token",
    )
    # Reviewers read any appeal.
    assert (
        await api.http.get(f"/appeals/{appeal_id}", headers=api.auth(Role.REVIEWER, "r-1"))
    ).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"account_id": "a", "requested_limit_minor": 0},
        {"account_id": "a", "requested_limit_minor": -5},
        {"account_id": "a", "requested_limit_minor": "lots"},
        {"account_id": "", "requested_limit_minor": 100},
        {"account_id": "a", "requested_limit_minor": 100, "unexpected": True},
        {"account_id": "a", "requested_limit_minor": 1.5},
        {"account_id": "a", "requested_limit_minor": True},
        {"account_id": "a", "requested_limit_minor": "100"},
        {"account_id": "a", "requested_limit_minor": 100.0},
    ],
)
async def test_bad_submissions_are_422_problems(api: Api, body: dict[str, Any]) -> None:
    c = make_customer(api.engine)
    response = await api.http.post("/appeals", json=body, headers=api.auth(Role.CUSTOMER, c.customer_id))
    problem = _assert_problem(response, 422, "validation_failed")
    assert problem["errors"]


async def test_malformed_json_and_unknown_routes(api: Api) -> None:
    c = make_customer(api.engine)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    response = await api.http.post(
        "/appeals", content=b"{not json", headers={**me, "Content-Type": "application/json"}
    )
    _assert_problem(response, 422, "validation_failed")
    _assert_problem(await api.http.get("/nowhere", headers=me), 404, "not_found")
    _assert_problem(await api.http.delete("/appeals", headers=me), 405, "method_not_allowed")
    _assert_problem(
        await api.http.get("/appeals", headers=me, params={"cursor": "!!"}), 422, "invalid_cursor"
    )
    _assert_problem(
        await api.http.get("/appeals", headers=me, params={"status": "NOPE"}),
        422,
        "validation_failed",
    )


async def test_requested_limit_above_original_is_refused(api: Api) -> None:
    c = make_customer(api.engine, original_limit_minor=100_000)
    response = await api.http.post(
        "/appeals",
        json={"account_id": c.account_id, "requested_limit_minor": 100_001},
        headers=api.auth(Role.CUSTOMER, c.customer_id),
    )
    _assert_problem(response, 422, "requested_limit_above_original")


@pytest.mark.parametrize(
    ("locale", "reason"),
    [
        ("en", "An overdue balance of ¥234.56 is still unpaid; repay it before appealing."),
        ("zh-CN", "您仍有逾期欠款 ¥234.56 未还清，请还清后再申诉。"),
    ],
)
async def test_ineligible_appeal_reports_the_amount_owed(api: Api, locale: str, reason: str) -> None:
    c = make_customer(api.engine, status=AccountStatus.FROZEN, unpaid_minor=23_456, locale=locale)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    appeal = (
        await api.http.post(
            "/appeals", json={"account_id": c.account_id, "requested_limit_minor": 1000}, headers=me
        )
    ).json()
    detail = await _wait_status(api, appeal["id"], me, "INELIGIBLE")
    assert detail["amount_owed_minor"] == 23_456
    assert detail["status_reason"] == reason
    assert detail["status_reason_codes"] == ["overdue_balance_outstanding"]
    notices = await _notices(api, me, "ineligible")
    assert [n["event"] for n in notices] == ["ineligible"]


async def test_upload_rules_and_withdraw(api: Api) -> None:
    c = make_customer(api.engine)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    appeal = (
        await api.http.post(
            "/appeals", json={"account_id": c.account_id, "requested_limit_minor": 1000}, headers=me
        )
    ).json()
    await _wait_status(api, appeal["id"], me, "AWAITING_DOCUMENTS")
    url = f"/appeals/{appeal['id']}/documents"
    _assert_problem(
        await api.http.post(
            url, headers=me, files={"file": ("a.exe", b"MZ\x90\x00", "application/x-msdownload")}
        ),
        415,
        "unsupported_document_type",
    )
    _assert_problem(
        await api.http.post(
            url,
            headers=me,
            data={"doc_type": "PASSPORT"},
            files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")},
        ),
        422,
        "unknown_document_type",
    )
    _assert_problem(await api.http.post(url, headers=me), 422, "validation_failed")
    # An executable declared as a PDF is stored, then rejected by verification with a reason.
    response = await api.http.post(
        url,
        headers=me,
        files={"file": ("statement.pdf", b"\x7fELF\x02\x01\x01" + b"\0" * 64, "application/pdf")},
    )
    assert response.status_code == 201, response.text
    document_id = response.json()["id"]
    # Wait for the verdict, not for "no longer UPLOADED": VERIFYING comes in between.
    detail = await eventually(
        lambda: _appeal(api, appeal["id"], me),
        lambda body: _document(body, document_id)["state"] in ("ACCEPTED", "REJECTED"),
        what=f"a verdict (ACCEPTED or REJECTED) on document {document_id}",
    )
    document = _document(detail, document_id)
    assert document["state"] == "REJECTED" and document["rejection_reason"]
    assert detail["status"] == "AWAITING_DOCUMENTS"

    withdrawn = await api.http.post(
        f"/appeals/{appeal['id']}/withdraw", headers=me, json={"reason": "no longer needed"}
    )
    assert withdrawn.status_code == 202
    await _wait_status(api, appeal["id"], me, "WITHDRAWN")
    _assert_problem(
        await api.http.post(f"/appeals/{appeal['id']}/withdraw", headers=me),
        409,
        "not_withdrawable",
    )
    _assert_problem(
        await api.http.post(url, headers=me, files={"file": ("a.pdf", b"%PDF-1.4", "application/pdf")}),
        409,
        "not_collecting_documents",
    )


async def test_oversize_upload_is_413_and_stores_nothing(api: Api) -> None:
    c = make_customer(api.engine)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    appeal = (
        await api.http.post(
            "/appeals", json={"account_id": c.account_id, "requested_limit_minor": 1000}, headers=me
        )
    ).json()
    await _wait_status(api, appeal["id"], me, "AWAITING_DOCUMENTS")
    big = b"%PDF-1.4\n" + b"0" * (api.settings.document_max_bytes + 1)
    response = await api.http.post(
        f"/appeals/{appeal['id']}/documents",
        headers=me,
        files={"file": ("big.pdf", big, "application/pdf")},
    )
    _assert_problem(response, 413, "document_too_large")
    detail = (await api.http.get(f"/appeals/{appeal['id']}", headers=me)).json()
    assert detail["documents"] == []


async def test_decision_endpoint(api: Api) -> None:
    c = make_customer(
        api.engine,
        days_past_due=(0, 5, 0, 45, 0, 20, 0, 0, 0, 0, 0, 0),
        original_limit_minor=950_000,
    )
    me, reviewer = api.auth(Role.CUSTOMER, c.customer_id), api.auth(Role.REVIEWER, "r-7")
    appeal = (
        await api.http.post(
            "/appeals",
            json={"account_id": c.account_id, "requested_limit_minor": 900_000},
            headers=me,
        )
    ).json()
    await _wait_status(api, appeal["id"], me, "AWAITING_DOCUMENTS")
    await upload_checklist(api, appeal["id"], me)
    await _wait_status(api, appeal["id"], me, "PENDING_REVIEW")
    tasks = (await api.http.get("/review-tasks", headers=reviewer)).json()["items"]
    task = next(t for t in tasks if t["appeal_id"] == appeal["id"])
    url = f"/review-tasks/{task['id']}/decision"
    _assert_problem(
        await api.http.post(
            url, headers=reviewer, json={"outcome": "APPROVE", "approved_limit_minor": 900_000}
        ),
        403,
        "not_claim_holder",
    )
    claimed = await api.http.post(f"/review-tasks/{task['id']}/claim", headers=reviewer)
    assert claimed.status_code == 200, claimed.text
    await _wait_status(api, appeal["id"], me, "IN_REVIEW")
    _assert_problem(
        await api.http.post(url, headers=reviewer, json={"outcome": "DECLINE"}),
        422,
        "validation_failed",
    )
    _assert_problem(
        await api.http.post(url, headers=me, json={"outcome": "DECLINE", "reasons": ["x"]}),
        403,
        "role_required",
    )
    # Above what the customer asked for (900,000), though within the original limit (950,000).
    above = await api.http.post(
        url, headers=reviewer, json={"outcome": "APPROVE", "approved_limit_minor": 900_001}
    )
    assert (
        "above the limit the customer asked for" in _assert_problem(above, 422, "decision_invalid")["detail"]
    )
    _assert_problem(
        await api.http.post(
            url, headers=reviewer, json={"outcome": "APPROVE", "approved_limit_minor": 950_001}
        ),
        422,
        "decision_invalid",
    )
    _assert_problem(
        await api.http.post(
            url, headers=reviewer, json={"outcome": "APPROVE", "approved_limit_minor": "900000"}
        ),
        422,
        "validation_failed",
    )
    _assert_problem(
        await api.http.post(
            "/review-tasks/nope/decision",
            headers=reviewer,
            json={"outcome": "DECLINE", "reasons": ["x"]},
        ),
        404,
        "task_not_found",
    )
    ok = await api.http.post(
        url,
        headers={**reviewer, "Idempotency-Key": "d-1"},
        json={"outcome": "APPROVE", "approved_limit_minor": 900_000},
    )
    assert ok.status_code == 200 and ok.json()["status"] == "APPROVED"
    repeat = await api.http.post(
        url,
        headers={**reviewer, "Idempotency-Key": "d-1"},
        json={"outcome": "APPROVE", "approved_limit_minor": 900_000},
    )
    assert repeat.status_code == 200 and repeat.json() == ok.json()
    _assert_problem(
        await api.http.post(
            url,
            headers={**reviewer, "Idempotency-Key": "d-2"},
            json={"outcome": "APPROVE", "approved_limit_minor": 900_000},
        ),
        409,
        "decision_rejected",
    )
    detail = await _wait_status(api, appeal["id"], me, "CLOSED")
    # The customer reads the role that decided, never the reviewer's id; staff read the id.
    assert detail["decided_limit_minor"] == 900_000 and detail["decision"]["decided_by"] == "reviewer"
    staff_view = (await api.http.get(f"/appeals/{appeal['id']}", headers=reviewer)).json()
    assert staff_view["decision"]["decided_by"] == "r-7"


async def test_health(api: Api) -> None:
    response = await api.http.get("/health")
    assert response.status_code == 200 and response.json()["checks"] == {
        "database": "ok",
        "object_store": "ok",
        "temporal": "ok",
    }
