"""The walkthrough's steps, shared by the tests that run them against a whole stack: the local
one that `appeals dev` starts (test_walkthrough.py) and the compose topology run as processes
(test_compose_topology.py)."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlmodel import select
from temporalio.client import Client

from core.auth import Role, mint_token
from core.clock import SYSTEM_CLOCK
from core.db import make_engine, session_scope
from core.db.ledger_tables import CreditAccount, LimitEvent
from core.demo_documents import credit_report_text, statement_csv
from core.settings import Settings
from tests.eventually import eventually, eventually_sync


def wait_for_status(client: httpx.Client, url: str, headers: dict[str, str], status: str) -> dict[str, Any]:
    """The appeal at `url` once it shows `status` (one it stays in until the test acts)."""

    def fetch() -> dict[str, Any]:
        response = client.get(url, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    return eventually_sync(fetch, lambda body: body["status"] == status, what=f"{url} to be {status}")


def appeal_end_to_end(api_url: str, settings: Settings) -> str:
    """Li Wei (c-1002, a demo customer) appeals, uploads a short statement (refused with a
    reason), then the right documents; a reviewer approves part of the request; the limit is
    applied to the ledger once and Temporal visibility finds the closed appeal. `settings`: the
    stack's (its JWT secret, database and Temporal address). The appeal's id."""
    today = SYSTEM_CLOCK.today()
    customer = {"Authorization": f"Bearer {mint_token(settings, role=Role.CUSTOMER, subject='c-1002')}"}
    reviewer = {"Authorization": f"Bearer {mint_token(settings, role=Role.REVIEWER, subject='r-1')}"}
    with httpx.Client(base_url=api_url, timeout=30) as http:
        assert http.get("/health").json()["status"] == "ok"
        created = http.post(
            "/appeals",
            headers=customer,
            json={
                "account_id": "acct-1002",
                "requested_limit_minor": 900_000,
                "statement": "I repaid everything in March.",
            },
        )
        assert created.status_code == 201, created.text
        appeal_id = created.json()["id"]
        wait_for_status(http, f"/appeals/{appeal_id}", customer, "AWAITING_DOCUMENTS")

        # The checklist: a bank statement always; a credit report after a bill 45 days late.
        checklist = http.get(f"/appeals/{appeal_id}", headers=customer).json()["checklist"]
        assert [(i["doc_type"], i["state"]) for i in checklist] == [
            ("BANK_STATEMENT", "MISSING"),
            ("CREDIT_REPORT", "MISSING"),
        ]
        # A statement covering one month instead of three is refused with a reason.
        bad = http.post(
            f"/appeals/{appeal_id}/documents",
            headers=customer,
            data={"doc_type": "BANK_STATEMENT"},
            files={"file": ("statement.csv", statement_csv(today, months=1), "text/csv")},
        )
        assert bad.status_code == 201, bad.text
        for doc_type, name, body, content_type in (
            ("BANK_STATEMENT", "statement.csv", statement_csv(today), "text/csv"),
            ("CREDIT_REPORT", "credit-report.txt", credit_report_text("Li Wei", today), "text/plain"),
        ):
            upload = http.post(
                f"/appeals/{appeal_id}/documents",
                headers=customer,
                data={"doc_type": doc_type},
                files={"file": (name, body, content_type)},
            )
            assert upload.status_code == 201, upload.text
        detail = wait_for_status(http, f"/appeals/{appeal_id}", customer, "PENDING_REVIEW")
        states = sorted((d["doc_type"], d["state"], d["rejection_code"]) for d in detail["documents"])
        assert states == [
            ("BANK_STATEMENT", "ACCEPTED", None),
            ("BANK_STATEMENT", "REJECTED", "STATEMENT_PERIOD_SHORT"),
            ("CREDIT_REPORT", "ACCEPTED", None),
        ], states
        rejected = next(d for d in detail["documents"] if d["state"] == "REJECTED")
        assert rejected["rejection_reason"] and rejected["rejection_reason_zh"]
        assert {i["state"] for i in detail["checklist"]} == {"ACCEPTED"}

        task = next(
            t
            for t in http.get("/review-tasks", headers=reviewer).json()["items"]
            if t["appeal_id"] == appeal_id
        )
        claimed = http.post(f"/review-tasks/{task['id']}/claim", headers=reviewer)
        assert claimed.status_code == 200, claimed.text
        wait_for_status(http, f"/appeals/{appeal_id}", customer, "IN_REVIEW")
        decision = http.post(
            f"/review-tasks/{task['id']}/decision",
            headers={**reviewer, "Idempotency-Key": "e2e-1"},
            json={"outcome": "APPROVE", "approved_limit_minor": 700_000, "note": "partial"},
        )
        assert decision.status_code == 200, decision.text
        assert decision.json()["status"] == "PARTIALLY_APPROVED"

        detail = wait_for_status(http, f"/appeals/{appeal_id}", customer, "CLOSED")
        assert detail["decided_limit_minor"] == 700_000
        assert [e["to_status"] for e in detail["timeline"] if e["to_status"]] == [
            "SUBMITTED",
            "AWAITING_DOCUMENTS",
            "CHECKING",
            "PENDING_REVIEW",
            "IN_REVIEW",
            "PARTIALLY_APPROVED",
            "LIMIT_APPLIED",
            "CLOSED",
        ]
        notices = http.get("/me/notifications", headers=customer).json()
        assert {n["event"] for n in notices} == {"appeal_received", "document_rejected", "limit_restored"}

    # The ledger changed exactly once.
    engine = make_engine(settings.effective_database_url)
    with session_scope(engine, read_only=True) as session:
        events = session.exec(select(LimitEvent).where(LimitEvent.appeal_id == appeal_id)).all()
        account = session.get(CreditAccount, "acct-1002")
    engine.dispose()
    assert len(events) == 1 and events[0].to_limit_minor == 700_000
    # Below its original ¥10,000 the account stays REDUCED: Li Wei may appeal again.
    assert account is not None and account.current_limit_minor == 700_000 and account.status == "REDUCED"

    # Operators find the appeal by its status in Temporal visibility.
    async def _visible() -> list[str]:
        client = await Client.connect(settings.temporal_address)
        query = (
            f"WorkflowId = 'appeal-{appeal_id}' AND AppealStatus = 'CLOSED' AND AppealCustomerId = 'c-1002'"
        )

        async def found() -> list[str]:
            return [wf.id async for wf in client.list_workflows(query)]

        # Visibility is updated after the workflow closes, not with it.
        return await eventually(found, what=f"visibility to list the closed appeal-{appeal_id}")

    assert asyncio.run(_visible()) == [f"appeal-{appeal_id}"]
    return appeal_id
