"""An Idempotency-Key names one request (core/idempotency.py): the same request again gets the
first answer, another request under the same key is 422 `idempotency_key_reused` (issue 13,
item 4), for appeal submissions, document uploads and decisions, on both databases."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.appeals.service import NewAppeal, create_appeal
from core.auth import Role
from core.db import session_scope
from core.db.case_tables import Document
from core.errors import InvalidInput
from core.reviews.service import (
    check_decision_key,
    decision_fingerprint,
    give_back_decision_key,
    take_decision_key,
)
from tests.api.conftest import Api
from tests.api.review_helpers import appeal_in_review
from tests.api.test_appeals_api import _wait_status
from tests.factories import make_customer

ASYNC = pytest.mark.asyncio(loop_scope="session")
PROBLEM = "application/problem+json"
CSV = b"date,description,amount,balance\n2026-09-01,Salary,8000.00,8000.00\n"


def _reused(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "idempotency_key_reused"


@ASYNC
async def test_a_submission_key_reused_for_another_request_is_refused(api: Api) -> None:
    c = make_customer(api.engine, original_limit_minor=800_000)
    me = {**api.auth(Role.CUSTOMER, c.customer_id), "Idempotency-Key": "submit-1"}
    body = {"account_id": c.account_id, "requested_limit_minor": 600_000, "statement": "Repaid in full."}
    first = await api.http.post("/appeals", json=body, headers=me)
    assert first.status_code == 201, first.text
    # The same request (key order and spacing do not matter) is answered with the first appeal.
    again = await api.http.post(
        "/appeals",
        content=b'{"statement":"Repaid in full.","requested_limit_minor":600000,  "account_id":"%s"}'
        % c.account_id.encode(),
        headers={**me, "content-type": "application/json"},
    )
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    _reused(await api.http.post("/appeals", json={**body, "requested_limit_minor": 700_000}, headers=me))
    _reused(await api.http.post("/appeals", json={**body, "statement": "Other."}, headers=me))
    # A key is the customer's own: someone else's request with it is theirs.
    other = make_customer(api.engine, original_limit_minor=800_000)
    theirs = await api.http.post(
        "/appeals",
        json={**body, "account_id": other.account_id},
        headers={**api.auth(Role.CUSTOMER, other.customer_id), "Idempotency-Key": "submit-1"},
    )
    assert theirs.status_code == 201, theirs.text


def test_the_portal_and_the_api_fingerprint_a_submission_alike(engine: Engine) -> None:
    """The fingerprint is the submission's, whatever door it came through."""
    c = make_customer(engine, original_limit_minor=800_000)
    new = NewAppeal(c.customer_id, c.account_id, 600_000, "why", idempotency_key="form-1")
    with session_scope(engine) as session:
        appeal, created = create_appeal(session, new)
        assert created and appeal.idempotency_fingerprint == new.fingerprint
    with session_scope(engine) as session:
        assert create_appeal(session, new)[1] is False
        with pytest.raises(InvalidInput) as refused:
            create_appeal(
                session, NewAppeal(c.customer_id, c.account_id, 500_000, "why", idempotency_key="form-1")
            )
        assert refused.value.code == "idempotency_key_reused"


async def _collecting_appeal(api: Api) -> tuple[str, dict[str, str]]:
    c = make_customer(api.engine)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    created = await api.http.post(
        "/appeals", json={"account_id": c.account_id, "requested_limit_minor": 1000}, headers=me
    )
    assert created.status_code == 201, created.text
    await _wait_status(api, created.json()["id"], me, "AWAITING_DOCUMENTS")
    return created.json()["id"], me


@ASYNC
async def test_an_upload_key_reused_for_another_file_is_refused(api: Api) -> None:
    """Uploads are fingerprinted on what is known of the streamed body: the document type and
    the file's SHA-256 and size. A retry reads the body again, storing nothing."""
    appeal_id, me = await _collecting_appeal(api)

    async def upload(content: bytes, doc_type: str = "INCOME_PROOF", name: str = "s.csv") -> httpx.Response:
        return await api.http.post(
            f"/appeals/{appeal_id}/documents",
            headers={**me, "Idempotency-Key": "upload-1"},
            data={"doc_type": doc_type},
            files={"file": (name, content, "text/csv")},
        )

    first = await upload(CSV)
    assert first.status_code == 201, first.text
    again = await upload(CSV, name="renamed.csv")  # the same file under another name: a retry
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    _reused(await upload(CSV + b"2026-09-02,x,1.00,8001.00\n"))
    _reused(await upload(CSV, doc_type="BANK_STATEMENT"))
    with session_scope(api.engine, read_only=True) as session:
        documents = list(session.exec(select(Document).where(Document.appeal_id == appeal_id)).all())
    assert [d.id for d in documents] == [first.json()["id"]]
    assert documents[0].idempotency_fingerprint is not None


def test_a_decision_key_is_taken_before_the_update_is_sent(engine: Engine) -> None:
    """The API takes a decision's key with its fingerprint before it sends the workflow the
    Update named by the key, so a different request is refused even while the first is in
    flight; a refused decision gives the key back."""
    c = make_customer(engine)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, 1000))
        appeal_id = appeal.id
    approve: dict[str, Any] = {"outcome": "APPROVE", "approved_limit_minor": 900}
    mine = decision_fingerprint("reviewer:r-1", "t-1", approve)
    take_decision_key(engine, appeal_id, "d-1", mine)
    take_decision_key(engine, appeal_id, "d-1", mine)  # the same request again: fine
    for other in (
        decision_fingerprint("reviewer:r-1", "t-1", {**approve, "approved_limit_minor": 901}),
        decision_fingerprint("reviewer:r-2", "t-1", approve),  # another reviewer
        decision_fingerprint("reviewer:r-1", "t-2", approve),  # another task
    ):
        with pytest.raises(InvalidInput) as refused:
            take_decision_key(engine, appeal_id, "d-1", other)
        assert refused.value.code == "idempotency_key_reused"
        with session_scope(engine, read_only=True) as session, pytest.raises(InvalidInput):
            check_decision_key(session, appeal_id, "d-1", other)
    # Keys are per appeal.
    other_customer = make_customer(engine)
    with session_scope(engine) as session:
        second, _ = create_appeal(
            session, NewAppeal(other_customer.customer_id, other_customer.account_id, 1000)
        )
        second_id = second.id
    take_decision_key(engine, second_id, "d-1", decision_fingerprint("reviewer:r-2", "t-9", approve))
    # Refused by the workflow: the key is free for a corrected request.
    give_back_decision_key(engine, appeal_id, "d-1", mine)
    corrected = decision_fingerprint("reviewer:r-1", "t-1", {**approve, "approved_limit_minor": 800})
    take_decision_key(engine, appeal_id, "d-1", corrected)
    with session_scope(engine, read_only=True) as session:
        check_decision_key(session, appeal_id, "d-1", corrected)


@ASYNC
async def test_a_decision_key_reused_for_another_decision_is_refused(api: Api) -> None:
    """Through the workflow: the same decision again is answered as the first was; the key with
    another amount, or by another reviewer, is 422 and changes nothing."""
    appeal_id, me, task_id, _ = await appeal_in_review(api, seed=907)
    reviewer, other = api.auth(Role.REVIEWER, "r-keys"), api.auth(Role.REVIEWER, "r-other")
    claimed = await api.http.post(f"/review-tasks/{task_id}/claim", headers=reviewer)
    assert claimed.status_code == 200, claimed.text
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    url = f"/review-tasks/{task_id}/decision"
    approve = {"outcome": "APPROVE", "approved_limit_minor": 500_000}
    # Refused by the workflow (above the request): the key is free again for a corrected body.
    above = await api.http.post(
        url, json={**approve, "approved_limit_minor": 700_000}, headers={**reviewer, "Idempotency-Key": "k-1"}
    )
    assert above.status_code == 422 and above.json()["code"] == "decision_invalid", above.text
    first = await api.http.post(url, json=approve, headers={**reviewer, "Idempotency-Key": "k-1"})
    assert first.status_code == 200, first.text
    again = await api.http.post(url, json=approve, headers={**reviewer, "Idempotency-Key": "k-1"})
    assert again.status_code == 200 and again.json() == first.json()
    _reused(
        await api.http.post(
            url,
            json={**approve, "approved_limit_minor": 400_000},
            headers={**reviewer, "Idempotency-Key": "k-1"},
        )
    )
    _reused(await api.http.post(url, json=approve, headers={**other, "Idempotency-Key": "k-1"}))
    detail = await _wait_status(api, appeal_id, me, "CLOSED")
    assert detail["decided_limit_minor"] == 500_000
