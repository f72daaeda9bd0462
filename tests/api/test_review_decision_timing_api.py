"""A reviewer who decides the moment the claim is answered is served, at each review stage."""

from __future__ import annotations

import pytest

from core.auth import Role
from tests.api.conftest import Api
from tests.api.review_helpers import appeal_in_review, open_task
from tests.api.test_appeals_api import _wait_status

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def test_decisions_sent_right_after_each_claim(api: Api) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(
        api, seed=651, original_limit_minor=3_000_000, requested_limit_minor=2_500_000
    )
    first = api.auth(Role.SENIOR_REVIEWER, "s-quick-1")
    assert (await api.http.post(f"/review-tasks/{task_id}/claim", headers=first)).status_code == 200
    decided = await api.http.post(
        f"/review-tasks/{task_id}/decision",
        headers={**first, "Idempotency-Key": "quick-1"},
        json={"outcome": "APPROVE", "approved_limit_minor": 2_500_000},
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "PENDING_SECOND_REVIEW"

    second = await open_task(api, appeal_id)
    s2 = api.auth(Role.SENIOR_REVIEWER, "s-quick-2")
    assert (await api.http.post(f"/review-tasks/{second['id']}/claim", headers=s2)).status_code == 200
    final = await api.http.post(
        f"/review-tasks/{second['id']}/decision",
        headers={**s2, "Idempotency-Key": "quick-2"},
        json={"outcome": "APPROVE", "approved_limit_minor": 2_000_000},
    )
    assert final.status_code == 200, final.text
    assert final.json()["status"] == "PARTIALLY_APPROVED"
    detail = await _wait_status(api, appeal_id, me, "CLOSED")
    assert detail["decided_limit_minor"] == 2_000_000
    statuses = [e["to_status"] for e in detail["timeline"] if e.get("to_status")]
    # Each claim is on record before the decision taken under it.
    assert statuses.index("IN_REVIEW") < statuses.index("PENDING_SECOND_REVIEW")
    assert statuses.index("IN_SECOND_REVIEW") < statuses.index("PARTIALLY_APPROVED")
