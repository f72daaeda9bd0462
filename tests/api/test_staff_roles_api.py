"""Issue 13 on the real stack (dev server, worker, SQLite and PostgreSQL): staff roles come from
the staff directory, never from a request body; the four-eyes decision checks the decider's
role at the time of deciding, in the API and in the workflow's validator; customers see roles,
not staff; `allowed_actions` says what the use cases then do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from core.auth import Role
from tests.api.conftest import Api
from tests.api.review_helpers import appeal_in_review, open_task
from tests.api.test_appeals_api import _assert_problem, _wait_status
from workflows.messages import ReviewDecision, ReviewOutcome

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def _put_staff(api: Api, staff_id: str, *roles: str, active: bool = True) -> dict[str, Any]:
    admin = api.auth(Role.ADMIN, "a-1")
    response = await api.http.put(
        f"/admin/staff/{staff_id}", headers=admin, json={"roles": list(roles), "active": active}
    )
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


async def _second_review(api: Api, seed: int) -> tuple[str, dict[str, str], str]:
    """A four-eyes appeal whose first review s-1 approved: (appeal, customer auth, second task)."""
    appeal_id, me, task_id, _ = await appeal_in_review(
        api, seed=seed, original_limit_minor=3_000_000, requested_limit_minor=2_500_000
    )
    first = api.auth(Role.SENIOR_REVIEWER, "s-1")
    assert (await api.http.post(f"/review-tasks/{task_id}/claim", headers=first)).status_code == 200
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    decided = await api.http.post(
        f"/review-tasks/{task_id}/decision",
        headers=first,
        json={"outcome": "APPROVE", "approved_limit_minor": 2_500_000},
    )
    assert decided.status_code == 200 and decided.json()["status"] == "PENDING_SECOND_REVIEW", decided.text
    await _wait_status(api, appeal_id, me, "PENDING_SECOND_REVIEW")
    second = await open_task(api, appeal_id)
    assert second["stage"] == 2 and second["required_role"] == "senior_reviewer"
    return appeal_id, me, second["id"]


async def test_four_eyes_cannot_be_bypassed_by_reassigning_to_a_plain_reviewer(api: Api) -> None:
    appeal_id, me, task_id = await _second_review(api, seed=1301)
    sup = api.auth(Role.SUPERVISOR, "sup-1")
    await _put_staff(api, "r-2", "reviewer")

    # The probe's request: the body's role is refused, not believed (nor silently dropped).
    probe = await api.http.post(
        f"/review-tasks/{task_id}/reassign", headers=sup, json={"to": "r-2", "role": "senior_reviewer"}
    )
    problem = _assert_problem(probe, 422, "validation_failed")
    assert problem["errors"][0]["location"] == ["body", "role"]
    # The directory says r-2 is a reviewer: a second review is not theirs to take.
    refused = _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/reassign", headers=sup, json={"to": "r-2"}),
        409,
        "task_not_assignable",
    )
    assert (
        "needs the senior_reviewer role" in refused["detail"] and "gives them reviewer" in refused["detail"]
    )
    _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/reassign", headers=sup, json={"to": "r-9"}),
        422,
        "unknown_staff_member",
    )
    await _put_staff(api, "s-8", "senior_reviewer", active=False)
    _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/reassign", headers=sup, json={"to": "s-8"}),
        409,
        "staff_member_inactive",
    )

    # The decision end: r-2 holds the claim as a senior reviewer, and is then demoted.
    await _put_staff(api, "r-2", "senior_reviewer")
    moved = await api.http.post(f"/review-tasks/{task_id}/reassign", headers=sup, json={"to": "r-2"})
    assert moved.status_code == 200 and moved.json()["assignee"] == "r-2", moved.text
    await _wait_status(api, appeal_id, me, "IN_SECOND_REVIEW")
    await _put_staff(api, "r-2", "reviewer")
    approve = {"outcome": "APPROVE", "approved_limit_minor": 2_500_000}
    as_senior, as_reviewer = api.auth(Role.SENIOR_REVIEWER, "r-2"), api.auth(Role.REVIEWER, "r-2")
    _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/decision", headers=as_senior, json=approve),
        403,
        "staff_role_not_held",
    )
    view = (await api.http.get(f"/review-tasks/{task_id}", headers=as_reviewer)).json()["allowed_actions"]
    assert view["approve"] == {"allowed": False, "reason": "the task needs the senior_reviewer role"}
    not_senior = _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/decision", headers=as_reviewer, json=approve),
        403,
        "role_not_sufficient",
    )
    assert "You act as reviewer" in not_senior["detail"]
    # The workflow's validator refuses it too, for a sender that skipped the API's check.
    bypass = ReviewDecision(
        task_id=task_id,
        reviewer="r-2",
        outcome=ReviewOutcome.APPROVE,
        approved_limit_minor=2_500_000,
        role="reviewer",
    )
    with pytest.raises(Exception) as validator:
        await api.app.state.gateway.decide(appeal_id, bypass, update_id="bypass-1")
    assert getattr(validator.value, "code", None) == "not_claim_holder"
    assert "needs the senior_reviewer role" in str(validator.value)
    assert (await _wait_status(api, appeal_id, me, "IN_SECOND_REVIEW"))["decided_limit_minor"] is None

    # A senior reviewer the directory knows is handed the task and decides: four eyes held.
    await _put_staff(api, "s-2", "senior_reviewer")
    handed = await api.http.post(f"/review-tasks/{task_id}/reassign", headers=sup, json={"to": "s-2"})
    assert handed.status_code == 200, handed.text
    final = await api.http.post(
        f"/review-tasks/{task_id}/decision", headers=api.auth(Role.SENIOR_REVIEWER, "s-2"), json=approve
    )
    assert final.status_code == 200 and final.json()["status"] == "APPROVED", final.text
    closed = await _wait_status(api, appeal_id, me, "CLOSED")

    # Issue 13, item 9: the customer's timeline names roles, not the staff who acted.
    shown = json.dumps({"timeline": closed["timeline"], "decision": closed["decision"]})
    for person in ("s-1", "s-2", "r-2", "sup-1"):
        assert f'"{person}"' not in shown and f":{person}" not in shown, person
    actors = {event["actor"] for event in closed["timeline"]}
    assert {"reviewer", "supervisor"} <= actors and not any(":" in a for a in actors - {"workflow", "system"})
    assert closed["decision"]["decided_by"] == "reviewer"
    reassigned = next(e for e in closed["timeline"] if e["kind"] == "task_reassigned")
    assert reassigned["actor"] == "supervisor" and reassigned["details"]["after"]["assignee"] == "staff"
    # Staff still see who did what.
    staff_view = (await api.http.get(f"/appeals/{appeal_id}", headers=sup)).json()
    assert "supervisor:sup-1" in {event["actor"] for event in staff_view["timeline"]}
    assert staff_view["decision"]["decided_by"] == "s-2"


async def test_allowed_actions_say_what_each_role_can_then_do(api: Api) -> None:
    """For a task claimed by r-1: each member of staff's `allowed_actions` verdict on release,
    then the release itself; the verdict is the outcome (an admin, like a supervisor, may
    release anyone's claim)."""
    appeal_id, me, task_id, _ = await appeal_in_review(api, seed=1302)
    holder = api.auth(Role.REVIEWER, "r-1")
    people = {
        "another reviewer": api.auth(Role.REVIEWER, "r-2"),
        "a senior reviewer": api.auth(Role.SENIOR_REVIEWER, "s-1"),
        "an admin": api.auth(Role.ADMIN, "a-1"),
        "a supervisor": api.auth(Role.SUPERVISOR, "sup-1"),
        "the holder": holder,
    }
    seen: dict[str, tuple[bool, int]] = {}
    for who, headers in people.items():
        claimed = await api.http.post(f"/review-tasks/{task_id}/claim", headers=holder)
        assert claimed.status_code == 200, claimed.text
        await _wait_status(api, appeal_id, me, "IN_REVIEW")
        verdict = (await api.http.get(f"/review-tasks/{task_id}", headers=headers)).json()["allowed_actions"]
        released = await api.http.post(f"/review-tasks/{task_id}/release", headers=headers)
        seen[who] = (verdict["release"]["allowed"], released.status_code)
        if released.status_code != 200:
            _assert_problem(released, 409, "not_claim_holder")
            await api.http.post(f"/review-tasks/{task_id}/release", headers=holder)
        await _wait_status(api, appeal_id, me, "PENDING_REVIEW")
    assert seen == {
        "another reviewer": (False, 409),
        "a senior reviewer": (False, 409),
        "an admin": (True, 200),
        "a supervisor": (True, 200),
        "the holder": (True, 200),
    }
    # An admin takes no reviews, and is told so before trying.
    admin = people["an admin"]
    verdict = (await api.http.get(f"/review-tasks/{task_id}", headers=admin)).json()["allowed_actions"]
    assert verdict["claim"] == {"allowed": False, "reason": "the task needs the reviewer role"}
    _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/claim", headers=admin), 403, "task_not_claimable"
    )
    # Someone the directory made inactive is told so, and refused.
    await _put_staff(api, "r-3", "reviewer", active=False)
    inactive = api.auth(Role.REVIEWER, "r-3")
    verdict = (await api.http.get(f"/review-tasks/{task_id}", headers=inactive)).json()["allowed_actions"]
    assert verdict["claim"]["allowed"] is False and "inactive" in verdict["claim"]["reason"]
    _assert_problem(
        await api.http.post(f"/review-tasks/{task_id}/claim", headers=inactive), 403, "staff_inactive"
    )


async def test_admins_keep_the_staff_directory(api: Api) -> None:
    admin, sup = api.auth(Role.ADMIN, "a-1"), api.auth(Role.SUPERVISOR, "sup-1")
    created = await api.http.put("/admin/staff/s-7", headers=admin, json={"roles": ["senior_reviewer"]})
    assert created.status_code == 201, created.text
    assert created.json() | {"updated_at": None} == {
        "id": "s-7",
        "roles": ["senior_reviewer"],
        "active": True,
        "managed_by": "admin",
        "updated_by": "admin:a-1",
        "updated_at": None,
    }
    # Roles are kept most privileged first; replacing returns 200.
    replaced = await api.http.put(
        "/admin/staff/s-7", headers=admin, json={"roles": ["reviewer", "supervisor"], "active": False}
    )
    assert replaced.status_code == 200 and replaced.json()["roles"] == ["supervisor", "reviewer"]
    assert replaced.json()["active"] is False
    assert (await api.http.get("/admin/staff/s-7", headers=admin)).json()["active"] is False
    listed = (await api.http.get("/admin/staff", headers=admin)).json()["items"]
    assert [m["id"] for m in listed] == ["s-7"]
    _assert_problem(await api.http.get("/admin/staff/nobody", headers=admin), 404, "staff_member_not_found")
    bad_bodies: list[dict[str, Any]] = [
        {"roles": []},
        {"roles": ["customer"]},
        {"roles": ["reviewer"], "role": "x"},
    ]
    for body in bad_bodies:
        _assert_problem(
            await api.http.put("/admin/staff/s-7", headers=admin, json=body), 422, "validation_failed"
        )
    _assert_problem(
        await api.http.put("/admin/staff/s%207", headers=admin, json={"roles": ["reviewer"]}),
        422,
        "validation_failed",
    )
    # Only admins; and an admin the directory made inactive no longer keeps it.
    _assert_problem(await api.http.get("/admin/staff", headers=sup), 403, "role_required")
    _assert_problem(
        await api.http.put("/admin/staff/s-7", headers=sup, json={"roles": ["reviewer"]}),
        403,
        "role_required",
    )
    await _put_staff(api, "a-2", "admin", active=False)
    _assert_problem(
        await api.http.put(
            "/admin/staff/s-7", headers=api.auth(Role.ADMIN, "a-2"), json={"roles": ["reviewer"]}
        ),
        403,
        "staff_inactive",
    )
