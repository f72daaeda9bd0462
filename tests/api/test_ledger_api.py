"""Admin ledger endpoints: CSV upload (all or nothing, errors by file/row/field) and read back."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlmodel import col, select

from core.auth import Role
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.ledger_tables import AccountStatus, Bill
from core.db.review_tables import ReviewAction, ReviewOutcome
from core.ledger.eligibility import REVIEW_SOURCE
from core.ledger.generator import Expected, seed_population
from core.lender.review import INVITED_KIND, RESTORED_KIND
from tests.api.conftest import Api
from tests.api.test_appeals_api import _wait_status
from tests.core.lender.test_review import run_review
from tests.documents import text_pdf
from tests.eventually import eventually
from tests.factories import make_customer

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"
REVIEW_DAY = date(2026, 6, 15)

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


async def test_a_customer_shows_what_the_lender_did_to_each_account_and_why(api: Api) -> None:
    """The admin's view of a customer has, per account, the risk events and what their limit
    action did, the portfolio review's decisions with their reasons and amounts, and the
    account's audit trail, as the database holds them (docs/lender-loop.md)."""
    admin = api.auth(Role.ADMIN, "a-1")
    # A risk event freezes an account (the limit-action workflow on the real worker).
    frozen = make_customer(
        api.engine, status=AccountStatus.ACTIVE, current_limit_minor=800_000, unpaid_minor=40_000
    )
    with session_scope(api.engine, read_only=True) as session:
        [bill] = session.exec(
            select(Bill)
            .where(Bill.account_id == frozen.account_id)
            .order_by(col(Bill.due_date).desc())
            .limit(1)
        ).all()
    event = {
        "id": f"evt-view-{frozen.account_id}",
        "kind": "bill_overdue",
        "account_id": frozen.account_id,
        "occurred_at": SYSTEM_CLOCK.now().isoformat(),
        "bill_due_date": bill.due_date.isoformat(),
        "days_past_due": 40,
    }
    posted = await api.http.post("/admin/ledger/events", headers=admin, json={"events": [event]})
    assert posted.status_code == 200, posted.text

    seen = await eventually(
        lambda: customer_of(api, frozen.customer_id),
        lambda body: body["risk_events"] and body["risk_events"][0]["action_result"] is not None,
        what="the risk event's limit action to be on the customer's record",
    )
    [risk] = seen["risk_events"]
    assert (risk["id"], risk["kind"], risk["outcome"]) == (event["id"], "bill_overdue", "applied")
    assert risk["action_workflow_id"] == f"limit-action-{frozen.account_id}-{event['id']}"
    result = risk["action_result"]
    assert (result["outcome"], result["action_id"], result["from_limit_minor"], result["to_limit_minor"]) == (
        "frozen",
        "LA_OVERDUE_30_DAYS",
        800_000,
        0,
    )
    [cut] = seen["limit_events"]
    assert result["limit_event_id"] == cut["id"] and (cut["kind"], cut["source"]) == (
        "FREEZE",
        "limit-action",
    )
    [audit] = seen["account_events"]
    assert (audit["account_id"], audit["seq"], audit["kind"], audit["actor"]) == (
        frozen.account_id,
        1,
        "limit_frozen",
        "system:limit-action",
    )
    assert audit["details"]["risk_event_id"] == event["id"] and audit["at"]
    assert seen["review_actions"] == []

    # The nightly review of a seeded book: a restored account and an invited one, each with
    # the review's reasons, score and amounts, and its audit events.
    with session_scope(api.engine) as session:
        seed_population(session, 24, 21, today=REVIEW_DAY)
    run_review(api.engine, REVIEW_DAY, "portfolio-review-view")
    with session_scope(api.engine, read_only=True) as session:
        rows = {
            outcome: session.exec(select(ReviewAction).where(ReviewAction.outcome == outcome)).first()
            for outcome in ReviewOutcome
        }
    for outcome, row in rows.items():
        assert row is not None, f"no {outcome} decision in the seeded book"
        body = await customer_of(api, row.customer_id)
        [action] = [a for a in body["review_actions"] if a["account_id"] == row.account_id]
        assert action == {
            "run_date": REVIEW_DAY.isoformat(),
            "account_id": row.account_id,
            "outcome": outcome.value,
            "reason": row.reason,
            "reason_codes": row.reason_codes,
            "score": row.score,
            "original_limit_minor": row.original_limit_minor,
            "limit_before_minor": row.limit_before_minor,
            "limit_after_minor": row.limit_after_minor,
            "limit_event_id": row.limit_event_id,
            "workflow_id": "portfolio-review-view",
            "created_at": action["created_at"],
        }
        trail = [e["kind"] for e in body["account_events"] if e["account_id"] == row.account_id]
        assert {e["actor"] for e in body["account_events"] if e["kind"] in (RESTORED_KIND, INVITED_KIND)} <= {
            "system:portfolio-review"
        }
        if outcome is ReviewOutcome.RESTORE:
            assert row.score is not None and row.limit_after_minor is not None
            assert row.limit_after_minor > row.limit_before_minor and trail[-1] == RESTORED_KIND
            [restore] = [e for e in body["limit_events"] if e["id"] == row.limit_event_id]
            assert restore["source"] == REVIEW_SOURCE and restore["to_limit_minor"] == row.limit_after_minor
        elif outcome is ReviewOutcome.INVITE:
            assert row.score is not None and trail[-1] == INVITED_KIND
            assert "invitation_token" not in action  # the customer's link, not for the record
        else:
            assert row.reason and RESTORED_KIND not in trail and INVITED_KIND not in trail


async def customer_of(api: Api, customer_id: str) -> dict[str, Any]:
    response = await api.http.get(
        f"/admin/ledger/customers/{customer_id}", headers=api.auth(Role.ADMIN, "a-1")
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body
