"""Driving appeals to review through the API, for the queue tests."""

from __future__ import annotations

from typing import Any

from core.auth import Role
from tests.api.conftest import Api
from tests.api.test_appeals_api import _wait_status
from tests.documents import recent_statement_csv, text_pdf
from tests.eventually import eventually
from tests.factories import make_customer

LATE_PAYER = (0, 5, 0, 45, 0, 20, 0, 0, 0, 0, 0, 0)


async def upload_missing(api: Api, appeal_id: str, headers: dict[str, str], seed: int) -> None:
    """Uploads one good file for every checklist item that is not accepted yet."""
    detail = (await api.http.get(f"/appeals/{appeal_id}", headers=headers)).json()
    for item in detail["checklist"]:
        if item["state"] == "ACCEPTED":
            continue
        if item["doc_type"] == "BANK_STATEMENT":
            name, body, content_type = "statement.csv", recent_statement_csv(seed=seed), "text/csv"
        else:
            name, body, content_type = (
                "doc.pdf",
                text_pdf(item["doc_type"], (f"seed {seed}",)),
                "application/pdf",
            )
        response = await api.http.post(
            f"/appeals/{appeal_id}/documents",
            headers=headers,
            data={"doc_type": item["doc_type"]},
            files={"file": (name, body, content_type)},
        )
        assert response.status_code == 201, response.text


async def appeal_in_review(
    api: Api, *, seed: int, original_limit_minor: int = 800_000, requested_limit_minor: int = 600_000
) -> tuple[str, dict[str, str], str, str]:
    """A late payer's appeal waiting in the review queue: (appeal id, customer auth, task id, customer id)."""
    c = make_customer(api.engine, days_past_due=LATE_PAYER, original_limit_minor=original_limit_minor)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    created = await api.http.post(
        "/appeals",
        json={"account_id": c.account_id, "requested_limit_minor": requested_limit_minor},
        headers=me,
    )
    appeal_id = created.json()["id"]
    await _wait_status(api, appeal_id, me, "AWAITING_DOCUMENTS")
    await upload_missing(api, appeal_id, me, seed)
    await _wait_status(api, appeal_id, me, "PENDING_REVIEW")
    task = await open_task(api, appeal_id)
    return appeal_id, me, task["id"], c.customer_id


async def open_task(api: Api, appeal_id: str, status: str = "OPEN") -> dict[str, Any]:
    """The appeal's task in that state; the status can be projected a moment before the task
    row of the next stage is written, so this waits for it."""
    staff = api.auth(Role.SUPERVISOR, "sup-1")

    async def tasks() -> list[dict[str, Any]]:
        response = await api.http.get("/review-tasks", headers=staff, params={"status": status, "limit": 100})
        assert response.status_code == 200, response.text
        return [t for t in response.json()["items"] if t["appeal_id"] == appeal_id]

    found = await eventually(tasks, what=f"a {status} review task for appeal {appeal_id}")
    return found[0]
