"""Admin ledger endpoints: CSV upload (all or nothing, errors by file/row/field) and read back."""

from __future__ import annotations

from typing import Any

import pytest

from core.auth import Role
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.ledger.generator import Expected, seed_population
from tests.api.conftest import Api
from tests.api.test_appeals_api import _wait_status
from tests.documents import text_pdf

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"

FILES: dict[str, str] = {
    "customers.csv": "id,name,locale,email,declared_monthly_income_minor,employer\n"
    "c-api-1,周敏,zh-CN,c-api-1@example.test,900000,华晟电子\n",
    "credit_accounts.csv": "id,customer_id,status,original_limit_minor,current_limit_minor,opened_on\n"
    "a-api-1,c-api-1,FROZEN,600000,0,2024-01-15\n",
    "bills.csv": "account_id,due_date,amount_due_minor,paid_minor,paid_at,days_past_due\n"
    "a-api-1,2025-01-15,40000,40000,2025-01-14T03:00:00Z,\n"
    "a-api-1,2025-02-15,40000,40000,2025-03-01T03:00:00Z,\n",
    "limit_events.csv": "account_id,kind,from_limit_minor,to_limit_minor,reason,source,created_at\n"
    "a-api-1,FREEZE,600000,0,late_repayment,risk-engine,2025-02-20T02:00:00Z\n",
    "loan_applications.csv": "customer_id,applied_on,lender,amount_minor,small_loan\n"
    "c-api-1,2025-02-01,借呗,300000,true\n",
    "customer_attributes.csv": "customer_id,name,value,source\nc-api-1,bureau_grade,A,credit-bureau\n",
}


def _multipart(files: dict[str, str]) -> list[tuple[str, tuple[str, bytes, str]]]:
    return [("files", (name, text.encode(), "text/csv")) for name, text in files.items()]


def _problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code and body["detail"]
    return body


async def test_only_admins(api: Api) -> None:
    for role in (Role.CUSTOMER, Role.REVIEWER):
        headers = api.auth(role, "c-api-1" if role is Role.CUSTOMER else "r-1")
        response = await api.http.post("/admin/ledger/import", headers=headers, files=_multipart(FILES))
        _problem(response, 403, "role_required")
        _problem(await api.http.get("/admin/ledger/customers/c-api-1", headers=headers), 403, "role_required")
    _problem(await api.http.get("/admin/ledger/customers/c-api-1"), 401, "missing_token")


async def test_import_then_read_back(api: Api) -> None:
    admin = api.auth(Role.ADMIN, "a-1")
    response = await api.http.post("/admin/ledger/import", headers=admin, files=_multipart(FILES))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["files"] == list(FILES)
    assert {t: c["inserted"] for t, c in body["tables"].items()} == {
        "customers": 1,
        "credit_accounts": 1,
        "bills": 2,
        "limit_events": 1,
        "loan_applications": 1,
        "customer_attributes": 1,
    }
    again = (await api.http.post("/admin/ledger/import", headers=admin, files=_multipart(FILES))).json()
    assert all(c["inserted"] == 0 and c["updated"] == 0 for c in again["tables"].values())

    record = await api.http.get("/admin/ledger/customers/c-api-1", headers=admin)
    assert record.status_code == 200, record.text
    ledger = record.json()
    assert ledger["customer"]["name"] == "周敏" and ledger["customer"]["employer"] == "华晟电子"
    assert [a["status"] for a in ledger["accounts"]] == ["FROZEN"]
    assert [(b["due_date"], b["days_past_due"], b["outstanding_minor"]) for b in ledger["bills"]] == [
        ("2025-01-15", 0, 0),
        ("2025-02-15", 14, 0),
    ]
    assert ledger["limit_events"][0]["kind"] == "FREEZE"
    assert ledger["limit_events"][0]["created_at"].startswith("2025-02-20T02:00:00")
    assert ledger["loan_applications"] == [
        {"applied_on": "2025-02-01", "lender": "借呗", "amount_minor": 300000, "small_loan": True}
    ]
    assert [(a["name"], a["value"], a["source"]) for a in ledger["attributes"]] == [
        ("bureau_grade", "A", "credit-bureau")
    ]


async def test_invalid_rows_are_listed_and_nothing_is_written(api: Api) -> None:
    admin = api.auth(Role.ADMIN, "a-1")
    bad = dict(FILES)
    bad["bills.csv"] = FILES["bills.csv"] + "a-api-1,2025-02-31,40000,0,,\na-api-404,2025-03-15,100,0,,\n"
    response = await api.http.post("/admin/ledger/import", headers=admin, files=_multipart(bad))
    body = _problem(response, 422, "ledger_import_invalid")
    assert body["error_count"] == 2
    assert body["errors"][0] == {
        "file": "bills.csv",
        "row": 4,
        "field": "due_date",
        "message": "not a date (expected YYYY-MM-DD)",
    }
    assert (body["errors"][1]["file"], body["errors"][1]["row"], body["errors"][1]["field"]) == (
        "bills.csv",
        5,
        "account_id",
    )
    assert "bills.csv row 4, field due_date" in body["detail"]
    # The valid customers.csv in the same upload was not imported either.
    _problem(await api.http.get("/admin/ledger/customers/c-api-1", headers=admin), 404, "customer_not_found")


async def test_invalid_attribute_rows_are_listed(api: Api) -> None:
    admin = api.auth(Role.ADMIN, "a-1")
    bad = {
        "customers.csv": FILES["customers.csv"],
        "customer_attributes.csv": FILES["customer_attributes.csv"]
        + "c-api-404,bureau_grade,B,credit-bureau\n"
        + "c-api-1,6m.inquiries,2,credit-bureau\n"
        + "c-api-1,bureau_grade,B,credit-bureau\n",
    }
    response = await api.http.post("/admin/ledger/import", headers=admin, files=_multipart(bad))
    body = _problem(response, 422, "ledger_import_invalid")
    assert [(e["file"], e["row"], e["field"]) for e in body["errors"]] == [
        ("customer_attributes.csv", 3, "customer_id"),
        ("customer_attributes.csv", 4, "name"),
        ("customer_attributes.csv", 5, "name"),
    ]
    assert body["errors"][2]["message"] == (
        "duplicate attribute 'bureau_grade' for customer 'c-api-1' (also on row 2)"
    )
    _problem(await api.http.get("/admin/ledger/customers/c-api-1", headers=admin), 404, "customer_not_found")


async def test_bad_uploads_are_clear_4xx(api: Api) -> None:
    admin = api.auth(Role.ADMIN, "a-1")
    wrong_name = await api.http.post(
        "/admin/ledger/import", headers=admin, files=_multipart({"bill.csv": "x\n"})
    )
    body = _problem(wrong_name, 422, "ledger_import_invalid")
    assert body["errors"][0]["file"] == "bill.csv"
    assert body["errors"][0]["message"].startswith("not a ledger file")
    not_multipart = await api.http.post("/admin/ledger/import", headers=admin, content=b"id,name\n")
    _problem(not_multipart, 415, "multipart_required")
    no_files = await api.http.post("/admin/ledger/import", headers=admin, data={"note": "hello"})
    _problem(no_files, 415, "multipart_required")  # a plain form is not multipart
    only_field = await api.http.post(
        "/admin/ledger/import",
        headers=admin,
        files=[("note", (None, b"x"))],  # a field, not a file
    )
    body = _problem(only_field, 422, "ledger_import_invalid")
    assert body["errors"][0]["message"] == "form field 'note' is not a file"


async def test_generated_customers_get_their_outcome_through_real_appeals(api: Api) -> None:
    """The seeded population shows every recommendation: statements as generated, the other
    checklist items as plain PDFs, and the employment certificate the story includes."""
    today = SYSTEM_CLOCK.today()
    with session_scope(api.engine) as session:
        seeded = seed_population(session, 60, 42, today=today)
    wanted = {
        Expected.AUTO_APPROVE: "CLOSED",
        Expected.AUTO_DECLINE: "AUTO_DECLINED",
        Expected.MANUAL_REVIEW: "PENDING_REVIEW",
    }
    picked = {
        expected: next(c for c in seeded.customers if c.expected is expected and c.employment_proof)
        for expected in wanted
    }
    for expected, c in picked.items():
        me = api.auth(Role.CUSTOMER, c.customer_id)
        created = await api.http.post(
            "/appeals",
            json={"account_id": c.account_id, "requested_limit_minor": c.requested_limit_minor},
            headers=me,
        )
        assert created.status_code == 201, created.text
        appeal_id = created.json()["id"]
        detail = await _wait_status(api, appeal_id, me, "AWAITING_DOCUMENTS")
        uploads = [("BANK_STATEMENT", "statement.csv", c.statement_csv(), "text/csv")]
        uploads += [
            (item["doc_type"], "doc.pdf", text_pdf(item["doc_type"], (c.customer_id,)), "application/pdf")
            for item in detail["checklist"]
            if item["doc_type"] != "BANK_STATEMENT"
        ]
        # Sent first: checks start as soon as the checklist's own items are in.
        uploads.insert(
            0,
            (
                "EMPLOYMENT_PROOF",
                "employment.pdf",
                text_pdf("Employment certificate", (c.customer_id,)),
                "application/pdf",
            ),
        )
        for doc_type, name, body, content_type in uploads:
            response = await api.http.post(
                f"/appeals/{appeal_id}/documents",
                headers=me,
                data={"doc_type": doc_type},
                files={"file": (name, body, content_type)},
            )
            assert response.status_code == 201, response.text
        await _wait_status(api, appeal_id, me, wanted[expected])
        assessment = (await api.http.get(f"/appeals/{appeal_id}/assessment", headers=me)).json()
        assert assessment["recommendation"] == expected.value, (c.customer_id, assessment)
