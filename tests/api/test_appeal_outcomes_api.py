"""What a customer reads about an outcome, on the real API, workflow and worker: the status
reason in their language (codes alongside), and after a partial approval a next appeal that
goes ahead, as the approval notice says it may."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest

from core.auth import Role
from core.clock import FixedClock
from core.policy.loader import load_default_policy
from tests.api.conftest import Api
from tests.api.review_helpers import appeal_in_review, open_task, upload_missing
from tests.api.test_appeals_api import _appeal, _notices, _wait_status
from tests.eventually import eventually
from tests.factories import make_customer

pytestmark = pytest.mark.asyncio(loop_scope="session")

# One bill 95 days late (since repaid): the severe-delinquency knock-out declines automatically.
SEVERELY_LATE = (0, 0, 95, 0, 0, 0, 0, 0, 0, 0, 0, 0)


def _texts(codes: list[str], locale: str) -> str:
    reasons = load_default_policy().policy.reasons
    if locale == "zh-CN":
        return "".join(reasons[code].zh_cn for code in codes)
    return " ".join(reasons[code].en for code in codes)


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
async def test_a_declined_appeal_gives_its_reasons_in_the_readers_language(api: Api, locale: str) -> None:
    c = make_customer(api.engine, locale=locale, days_past_due=SEVERELY_LATE)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    created = await api.http.post(
        "/appeals", json={"account_id": c.account_id, "requested_limit_minor": 600_000}, headers=me
    )
    assert created.status_code == 201, created.text
    appeal_id = created.json()["id"]
    await _wait_status(api, appeal_id, me, "AWAITING_DOCUMENTS")
    await upload_missing(api, appeal_id, me, seed=621)
    detail = await _wait_status(api, appeal_id, me, "AUTO_DECLINED")

    codes = detail["status_reason_codes"]
    assert "RC_SEVERE_DELINQUENCY" in codes and all(code.startswith("RC_") for code in codes)
    # The customer reads the policy's words in their own locale, not the codes.
    assert detail["status_reason"] == _texts(codes, locale)
    assert "RC_" not in detail["status_reason"]
    if locale == "zh-CN":
        assert "逾期90天及以上" in detail["status_reason"]
    else:
        assert "a delay of 90 days or more" in detail["status_reason"]

    # Staff read English by default, Chinese when their Accept-Language prefers it.
    staff = api.auth(Role.REVIEWER, "r-reasons")
    as_staff = await _appeal(api, appeal_id, staff)
    assert as_staff["status_reason"] == _texts(codes, "en") and as_staff["status_reason_codes"] == codes
    zh_staff = await _appeal(api, appeal_id, {**staff, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"})
    assert zh_staff["status_reason"] == _texts(codes, "zh-CN")
    # A customer's own locale wins over their browser's.
    other = "en" if locale == "zh-CN" else "zh-CN"
    as_browser = await _appeal(api, appeal_id, {**me, "Accept-Language": other})
    assert as_browser["status_reason"] == _texts(codes, locale)


async def _decide_partly(api: Api, appeal_id: str, me: dict[str, str], task_id: str, amount: int) -> None:
    """Approves `amount` (below the request); a second reviewer confirms it if four eyes apply."""
    reviewer = api.auth(Role.REVIEWER, "r-partial")
    assert (await api.http.post(f"/review-tasks/{task_id}/claim", headers=reviewer)).status_code == 200
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    decided = await api.http.post(
        f"/review-tasks/{task_id}/decision",
        headers=reviewer,
        json={"outcome": "APPROVE", "approved_limit_minor": amount},
    )
    assert decided.status_code == 200, decided.text
    if decided.json()["status"] == "PENDING_SECOND_REVIEW":
        second = await open_task(api, appeal_id)
        senior = api.auth(Role.SENIOR_REVIEWER, "s-partial")
        assert (await api.http.post(f"/review-tasks/{second['id']}/claim", headers=senior)).status_code == 200
        await _wait_status(api, appeal_id, me, "IN_SECOND_REVIEW")
        confirmed = await api.http.post(
            f"/review-tasks/{second['id']}/decision",
            headers=senior,
            json={"outcome": "APPROVE", "approved_limit_minor": amount},
        )
        assert confirmed.status_code == 200, confirmed.text


async def test_after_a_partial_approval_the_customer_can_appeal_again(api: Api) -> None:
    # Original limit ¥8,000; the customer asks for ¥6,000 and is given ¥4,000.
    appeal_id, me, task_id, _ = await appeal_in_review(
        api, seed=622, original_limit_minor=800_000, requested_limit_minor=600_000
    )
    await _decide_partly(api, appeal_id, me, task_id, 400_000)
    closed = await _wait_status(api, appeal_id, me, "CLOSED")
    assert closed["decided_limit_minor"] == 400_000

    notices = await _notices(api, me, "limit_restored")
    restored = next(n for n in notices if n["event"] == "limit_restored")
    assert restored["subject"] == "Your appeal was approved in part"
    assert (
        "Your limit is still below the original limit of this account (¥8,000.00), so you may submit a new "
        "appeal for a higher limit at any time; there is no waiting period after an approval, but any "
        "overdue bill must be repaid first."
    ) in restored["body"]

    # As the notice says: a new appeal right away goes ahead (no INELIGIBLE, no cool-down).
    again = await api.http.post(
        "/appeals", json={"account_id": closed["account_id"], "requested_limit_minor": 800_000}, headers=me
    )
    assert again.status_code == 201, again.text
    settled: dict[str, Any] = await eventually(
        lambda: _appeal(api, again.json()["id"], me),
        lambda body: body["status"] in ("AWAITING_DOCUMENTS", "INELIGIBLE"),
        what="the second appeal to be taken up or refused",
    )
    assert settled["status"] == "AWAITING_DOCUMENTS", settled["status_reason"]


async def test_after_a_decline_a_new_appeal_waits_for_the_cooldown(api: Api) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(api, seed=623)
    reviewer = api.auth(Role.REVIEWER, "r-cooldown")
    assert (await api.http.post(f"/review-tasks/{task_id}/claim", headers=reviewer)).status_code == 200
    declined = await api.http.post(
        f"/review-tasks/{task_id}/decision",
        headers=reviewer,
        json={"outcome": "DECLINE", "reasons": ["RC_LATE_PAYMENTS"]},
    )
    assert declined.status_code == 200, declined.text
    closed = await _wait_status(api, appeal_id, me, "CLOSED")
    declined_at = next(e["at"] for e in closed["timeline"] if e.get("to_status") == "DECLINED")
    decided_on = datetime.fromisoformat(declined_at).astimezone(UTC).date()
    cooldown_days = load_default_policy().policy.appeals.decline_cooldown_days
    ends_on = decided_on + timedelta(days=cooldown_days)
    new_appeal = {"account_id": closed["account_id"], "requested_limit_minor": 600_000}

    # The API judges the day on its own clock: the last day of the cool-down, then the first after.
    api.set_business_date(FixedClock(datetime.combine(ends_on, time(23, 59), UTC) - timedelta(days=1)))
    again = await api.http.post("/appeals", json=new_appeal, headers=me)
    assert again.status_code == 409, again.text
    problem = again.json()
    assert again.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "decline_cooldown"
    assert problem["may_appeal_from"] == ends_on.isoformat() and ends_on.isoformat() in problem["detail"]

    api.set_business_date(FixedClock(datetime.combine(ends_on, time(0, 1), UTC)))
    later = await api.http.post("/appeals", json=new_appeal, headers=me)
    assert later.status_code == 201, later.text
