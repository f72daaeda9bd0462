"""`GET /review-tasks?assignee=me` finds the tasks I hold: without `status`, a listing for an
assignee means their CLAIMED work; the plain queue still means OPEN tasks."""

from __future__ import annotations

from typing import Any

import pytest

from core.auth import Role
from tests.api.conftest import Api
from tests.api.review_helpers import appeal_in_review
from tests.api.test_appeals_api import _wait_status


async def _ids(api: Api, headers: dict[str, str], **params: Any) -> list[str]:
    response = await api.http.get("/review-tasks", headers=headers, params={"limit": 100, **params})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == len(body["items"])
    return [task["id"] for task in body["items"]]


@pytest.mark.asyncio(loop_scope="session")
async def test_my_tasks_are_the_ones_i_hold(api: Api) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(api, seed=907)
    holder, other = api.auth(Role.REVIEWER, "r-mine"), api.auth(Role.REVIEWER, "r-other")
    supervisor = api.auth(Role.SUPERVISOR, "sup-1")

    # Before the claim: in the queue, nobody's task.
    assert task_id in await _ids(api, holder)
    assert await _ids(api, holder, assignee="me") == []

    claimed = await api.http.post(f"/review-tasks/{task_id}/claim", headers=holder)
    assert claimed.status_code == 200, claimed.text

    # "My tasks" with no status: the claimed task, and only for its holder.
    assert await _ids(api, holder, assignee="me") == [task_id]
    listed = (await api.http.get("/review-tasks", headers=holder, params={"assignee": "me"})).json()
    assert listed["items"][0]["status"] == "CLAIMED" and listed["items"][0]["assignee"] == "r-mine"
    assert await _ids(api, other, assignee="me") == []
    assert await _ids(api, supervisor, assignee="r-mine") == [task_id]
    # The queue (no assignee) still means OPEN tasks: a claimed one has left it.
    assert task_id not in await _ids(api, holder)
    # An explicit status still wins over either default.
    assert await _ids(api, holder, assignee="me", status="OPEN") == []
    assert task_id in await _ids(api, supervisor, status="CLAIMED")

    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    decided = await api.http.post(
        f"/review-tasks/{task_id}/decision",
        headers=holder,
        json={"outcome": "DECLINE", "reasons": ["RC_LATE_PAYMENTS"]},
    )
    assert decided.status_code == 200, decided.text

    # Decided: no longer work in hand, but found among the tasks I completed.
    assert await _ids(api, holder, assignee="me") == []
    assert await _ids(api, holder, assignee="me", status="COMPLETED") == [task_id]


def test_the_default_is_documented(api_openapi: dict[str, Any]) -> None:
    operation = api_openapi["paths"]["/review-tasks"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    assert "default" not in params["status"]["schema"]
    for text in (params["status"]["description"], params["assignee"]["description"]):
        assert "CLAIMED" in text
    assert "OPEN" in params["status"]["description"]
    assert "assignee=me" in operation["description"]


@pytest.fixture
def api_openapi() -> dict[str, Any]:
    from api.app import create_app
    from core.settings import Settings

    return create_app(Settings()).openapi()
