"""Automated outcomes through real appeals: the scorecard's decision, its reasons in both
languages, and the customer's right to a human review of an automatic decline."""

from __future__ import annotations

import pytest

from core.auth import Role
from tests.api.conftest import Api
from tests.api.review_helpers import open_task
from tests.api.test_appeals_api import _assert_problem, _notices, _wait_status, upload_checklist
from tests.documents import recent_statement_csv
from tests.factories import make_customer

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHRONIC = (95, 60, 40, 35, 30, 0, 45, 20, 0, 31, 15, 10)  # long, repeated lateness, all repaid
STEADY = (0,) * 12


async def _submit(api: Api, days_past_due: tuple[int, ...], seed: int) -> tuple[str, dict[str, str]]:
    c = make_customer(api.engine, days_past_due=days_past_due, original_limit_minor=800_000)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    appeal = (
        await api.http.post(
            "/appeals", json={"account_id": c.account_id, "requested_limit_minor": 600_000}, headers=me
        )
    ).json()
    await _wait_status(api, appeal["id"], me, "AWAITING_DOCUMENTS")
    detail = (await api.http.get(f"/appeals/{appeal['id']}", headers=me)).json()
    if [i["doc_type"] for i in detail["checklist"]] == ["BANK_STATEMENT"]:
        response = await api.http.post(
            f"/appeals/{appeal['id']}/documents",
            headers=me,
            data={"doc_type": "BANK_STATEMENT"},
            files={"file": ("statement.csv", recent_statement_csv(seed=seed), "text/csv")},
        )
        assert response.status_code == 201, response.text
    else:
        await upload_checklist(api, appeal["id"], me, seed=seed)
    return appeal["id"], me


async def test_steady_payer_is_approved_automatically(api: Api) -> None:
    appeal_id, me = await _submit(api, STEADY, seed=501)
    detail = await _wait_status(api, appeal_id, me, "CLOSED")
    assert detail["decided_limit_minor"] == 600_000
    assert "AUTO_APPROVED" in [e["to_status"] for e in detail["timeline"]]
    assessment = (await api.http.get(f"/appeals/{appeal_id}/assessment", headers=me)).json()
    assert assessment["recommendation"] == "AUTO_APPROVE" and "result" not in assessment


async def test_chronic_late_payer_is_declined_with_reasons_and_may_ask_for_a_person(api: Api) -> None:
    appeal_id, me = await _submit(api, CHRONIC, seed=502)
    await _wait_status(api, appeal_id, me, "AUTO_DECLINED")
    mine = (await api.http.get(f"/appeals/{appeal_id}/assessment", headers=me)).json()
    assert mine["recommendation"] == "AUTO_DECLINE" and mine["suggested_limit_minor"] == 0
    assert 1 <= len(mine["reasons"]) <= 4
    assert all(r["en"] and r["zh-CN"] for r in mine["reasons"])
    assert "result" not in mine  # customers see the outcome and reasons, not the snapshot
    reviewer = api.auth(Role.REVIEWER, "r-1")
    full = (await api.http.get(f"/appeals/{appeal_id}/assessment", headers=reviewer)).json()
    assert full["result"]["input"]["requested_limit_minor"] == 600_000
    assert full["result"]["score"] == full["score"]

    # AUTO_DECLINED is projected before the decline notice is written: wait for the notice.
    notices = await _notices(api, me, "declined")
    decline = next(n for n in notices if n["event"] == "declined")
    # The in-app notice lists the reasons in one sentence: each without its own full stop.
    assert mine["reasons"][0]["en"].rstrip(".") in decline["body"] and "review" in decline["body"]

    # A reviewer cannot trigger the customer's right; a stranger gets 404.
    _assert_problem(
        await api.http.post(f"/appeals/{appeal_id}/human-review", headers=reviewer), 403, "role_required"
    )
    stranger = api.auth(Role.CUSTOMER, "someone-else")
    _assert_problem(
        await api.http.post(f"/appeals/{appeal_id}/human-review", headers=stranger), 404, "appeal_not_found"
    )

    accepted = await api.http.post(
        f"/appeals/{appeal_id}/human-review", headers=me, json={"reason": "I was ill"}
    )
    assert accepted.status_code == 202, accepted.text
    await _wait_status(api, appeal_id, me, "PENDING_REVIEW")
    task = await open_task(api, appeal_id)
    assert task["stage"] == 1
    # Once is enough: a second request is a conflict.
    _assert_problem(
        await api.http.post(f"/appeals/{appeal_id}/human-review", headers=me),
        409,
        "human_review_not_available",
    )


async def test_human_review_only_after_an_automatic_decline(api: Api) -> None:
    c = make_customer(api.engine)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    appeal = (
        await api.http.post(
            "/appeals", json={"account_id": c.account_id, "requested_limit_minor": 1000}, headers=me
        )
    ).json()
    await _wait_status(api, appeal["id"], me, "AWAITING_DOCUMENTS")
    _assert_problem(
        await api.http.post(f"/appeals/{appeal['id']}/human-review", headers=me),
        409,
        "human_review_not_available",
    )
    _assert_problem(
        await api.http.get(f"/appeals/{appeal['id']}/assessment", headers=me), 404, "assessment_not_found"
    )
