"""The review queue through the API on the dev server: claims, the case file, four eyes,
separation of duties, the request-information loop, ETags and idempotency."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from core.auth import Role
from core.db import session_scope
from core.db.case_tables import Decision
from tests.api.conftest import Api
from tests.api.review_helpers import appeal_in_review, open_task, upload_missing
from tests.api.test_appeals_api import _assert_problem, _wait_status
from tests.staff_directory import add_staff

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_claim_release_and_the_case_file(api: Api) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(api, seed=601)
    r1, r2 = api.auth(Role.REVIEWER, "r-1"), api.auth(Role.REVIEWER, "r-2")

    detail = await api.http.get(f"/review-tasks/{task_id}", headers=r1)
    assert detail.status_code == 200, detail.text
    body = detail.json()
    assert body["allowed_actions"]["claim"]["allowed"] is True
    assert body["allowed_actions"]["approve"] == {
        "allowed": False,
        "reason": "the task is OPEN; claim it first",
    }
    assert body["assessment"]["recommendation"] == "MANUAL_REVIEW"
    assert [d["download_url"] for d in body["documents"]] and all(
        d["download_url"] for d in body["documents"]
    )
    etag = detail.headers["etag"]

    claimed = await api.http.post(f"/review-tasks/{task_id}/claim", headers={**r1, "If-Match": etag})
    assert claimed.status_code == 200 and claimed.json()["assignee"] == "r-1"
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    # The old ETag is stale now; r-2 cannot take a claimed task.
    _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/claim", headers={**r2, "If-Match": etag}),
        412,
        "stale_version",
    )
    _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/claim", headers=r2), 409, "task_not_claimable"
    )
    _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/release", headers=r2), 409, "not_claim_holder"
    )
    view = (await api.http.get(f"/review-tasks/{task_id}", headers=r2)).json()["allowed_actions"]
    assert view["approve"] == {"allowed": False, "reason": "you do not hold the claim on this task"}

    mine = (
        await api.http.get("/review-tasks", headers=r1, params={"status": "CLAIMED", "assignee": "me"})
    ).json()
    assert [t["id"] for t in mine["items"]] == [task_id] and mine["total"] == 1

    released = await api.http.post(f"/review-tasks/{task_id}/release", headers=r1)
    assert released.status_code == 200 and released.json()["status"] == "OPEN"
    await _wait_status(api, appeal_id, me, "PENDING_REVIEW")

    # A supervisor hands it to r-2, who decides.
    _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/reassign", headers=r1, json={"to": "r-2"}),
        403,
        "role_required",
    )
    sup = api.auth(Role.SUPERVISOR, "sup-1")
    add_staff(api.engine, "r-2", Role.REVIEWER)  # the staff directory says who r-2 is
    moved = await api.http.post(f"/review-tasks/{task_id}/reassign", headers=sup, json={"to": "r-2"})
    assert moved.status_code == 200 and moved.json()["assignee"] == "r-2"
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    decided = await api.http.post(
        f"/review-tasks/{task_id}/decision",
        headers=r2,
        json={"outcome": "DECLINE", "reasons": ["RC_LATE_PAYMENTS"]},
    )
    assert decided.status_code == 200 and decided.json()["status"] == "DECLINED"
    closed = await _wait_status(api, appeal_id, me, "CLOSED")
    kinds = [e["kind"] for e in closed["timeline"]]
    for kind in ("task_created", "task_claimed", "task_released", "task_reassigned"):
        assert kind in kinds
    notices = (await api.http.get("/me/notifications", headers=me)).json()
    decline = next(n for n in notices if n["event"] == "declined")
    assert "late" in decline["body"].lower() and "RC_LATE_PAYMENTS" not in decline["body"]


async def test_claim_next_and_separation_of_duties(api: Api) -> None:
    appeal_id, _me, task_id, customer_id = await appeal_in_review(api, seed=602)
    # A member of staff who is the customer never gets their own appeal.
    own = api.auth(Role.REVIEWER, customer_id)
    _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/claim", headers=own), 403, "task_not_claimable"
    )
    while (response := await api.http.post("/review-tasks/claim-next", headers=own)).status_code == 200:
        assert response.json()["appeal_id"] != appeal_id
        await api.http.post(f"/review-tasks/{response.json()['id']}/release", headers=own)
        break
    other = api.auth(Role.REVIEWER, "r-next")
    taken = []
    while (response := await api.http.post("/review-tasks/claim-next", headers=other)).status_code == 200:
        taken.append(response.json()["id"])
    assert response.status_code == 204 and task_id in taken


async def test_four_eyes_needs_a_second_senior_reviewer(api: Api) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(
        api, seed=603, original_limit_minor=3_000_000, requested_limit_minor=2_500_000
    )
    first = api.auth(Role.SENIOR_REVIEWER, "s-1")
    assert (await api.http.post(f"/review-tasks/{task_id}/claim", headers=first)).status_code == 200
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    decided = await api.http.post(
        f"/review-tasks/{task_id}/decision",
        headers={**first, "Idempotency-Key": "fe-1"},
        json={"outcome": "APPROVE", "approved_limit_minor": 2_500_000},
    )
    assert decided.status_code == 200 and decided.json()["status"] == "PENDING_SECOND_REVIEW", decided.text
    await _wait_status(api, appeal_id, me, "PENDING_SECOND_REVIEW")
    second = await open_task(api, appeal_id)
    assert second["stage"] == 2 and second["required_role"] == "senior_reviewer"
    # Not the same person twice, and not a plain reviewer.
    _assert_problem(
        await api.http.post(f"/review-tasks/{second['id']}/claim", headers=first), 403, "task_not_claimable"
    )
    _assert_problem(
        await api.http.post(f"/review-tasks/{second['id']}/claim", headers=api.auth(Role.REVIEWER, "r-1")),
        403,
        "task_not_claimable",
    )
    s2 = api.auth(Role.SENIOR_REVIEWER, "s-2")
    assert (await api.http.post(f"/review-tasks/{second['id']}/claim", headers=s2)).status_code == 200
    await _wait_status(api, appeal_id, me, "IN_SECOND_REVIEW")
    final = await api.http.post(
        f"/review-tasks/{second['id']}/decision",
        headers=s2,
        json={"outcome": "APPROVE", "approved_limit_minor": 2_000_000},
    )
    assert final.status_code == 200 and final.json()["status"] == "PARTIALLY_APPROVED", final.text
    detail = await _wait_status(api, appeal_id, me, "CLOSED")
    assert detail["decided_limit_minor"] == 2_000_000
    with session_scope(api.engine, read_only=True) as session:
        decisions = session.exec(
            select(Decision).where(Decision.appeal_id == appeal_id).order_by(col(Decision.id))
        ).all()
    assert [(d.stage, d.decided_by, d.approved_limit_minor) for d in decisions] == [
        (1, "s-1", 2_500_000),
        (2, "s-2", 2_000_000),
    ]


async def test_request_information_loop_returns_to_the_same_reviewer(api: Api) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(api, seed=604)
    r1 = api.auth(Role.REVIEWER, "r-loop")
    assert (await api.http.post(f"/review-tasks/{task_id}/claim", headers=r1)).status_code == 200
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    asked = await api.http.post(
        f"/review-tasks/{task_id}/decision",
        headers=r1,
        json={
            "outcome": "REQUEST_INFO",
            "requested_documents": ["EMPLOYMENT_PROOF"],
            "note": "Please add a letter.",
        },
    )
    assert asked.status_code == 200 and asked.json()["status"] == "INFO_REQUESTED", asked.text
    detail = await _wait_status(api, appeal_id, me, "AWAITING_DOCUMENTS")
    item = next(i for i in detail["checklist"] if i["doc_type"] == "EMPLOYMENT_PROOF")
    assert item["state"] == "MISSING" and "requested_by_reviewer" in item["reasons"]
    notices = (await api.http.get("/me/notifications", headers=me)).json()
    assert any(n["event"] == "information_requested" and "letter" in n["body"] for n in notices)

    await upload_missing(api, appeal_id, me, seed=605)
    # Checks rerun, and the task comes back to r-loop, already claimed.
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    again = await open_task(api, appeal_id, status="CLAIMED")
    assert again["assignee"] == "r-loop" and again["round"] == 2 and again["id"] != task_id
    decided = await api.http.post(
        f"/review-tasks/{again['id']}/decision",
        headers=r1,
        json={"outcome": "APPROVE", "approved_limit_minor": 600_000},
    )
    assert decided.status_code == 200
    await _wait_status(api, appeal_id, me, "CLOSED")
    assessment = (await api.http.get(f"/appeals/{appeal_id}/assessment", headers=r1)).json()
    assert assessment["run"] == 2


async def test_decline_needs_policy_reason_codes(api: Api) -> None:
    _appeal, _me, task_id, _ = await appeal_in_review(api, seed=606)
    r1 = api.auth(Role.REVIEWER, "r-codes")
    await api.http.post(f"/review-tasks/{task_id}/claim", headers=r1)
    _assert_problem(
        await api.http.post(
            f"/review-tasks/{task_id}/decision",
            headers=r1,
            json={"outcome": "DECLINE", "reasons": ["because"]},
        ),
        422,
        "unknown_reason_code",
    )
