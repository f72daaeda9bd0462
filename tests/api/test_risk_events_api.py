"""`POST /admin/ledger/events` on the real app, worker and Temporal dev server (both databases):
who may send, whole-batch validation, idempotency, and the limit action each applied event
starts, end to end to the customer's notice and the account's audit trail."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from core.auth import Role
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.ledger_tables import AccountStatus, Bill, CreditAccount, LimitEvent, LoanApplication
from core.db.lender_tables import AccountNotice, RiskEvent
from core.ledger.account_audit import account_events, verify_account_trail
from core.notifications.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from core.settings import Settings
from core.storage import ensure_bucket, make_s3_client
from tests.api.conftest import Api
from tests.api.pages.helpers import sign_in
from tests.api.pages.test_portal_pages import browser
from tests.conftest import make_settings
from tests.eventually import eventually
from tests.factories import LedgerCustomer, make_customer
from workflows.limit_action import LimitActionWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")
SECRET = "6f1c2a9e0b7d4c3f8a5e1d2c9b7a4f3e6d1c8b5a"


@pytest.fixture
def settings(tmp_path: Path, s3_endpoint: str) -> Iterator[Settings]:
    s = make_settings(tmp_path, s3_endpoint_url=s3_endpoint, risk_event_secret=SECRET)
    ensure_bucket(make_s3_client(s), s.s3_bucket)
    yield s


def _active(api: Api, *, locale: str = "en", unpaid_minor: int = 40_000) -> LedgerCustomer:
    return make_customer(
        api.engine,
        status=AccountStatus.ACTIVE,
        current_limit_minor=800_000,
        unpaid_minor=unpaid_minor,
        locale=locale,
    )


def _latest_bill(api: Api, account_id: str) -> Bill:
    with session_scope(api.engine, read_only=True) as session:
        bill = session.exec(
            select(Bill).where(Bill.account_id == account_id).order_by(col(Bill.due_date).desc())
        ).first()
        assert bill is not None
        return bill


def _overdue(event_id: str, c: LedgerCustomer, bill: Bill, dpd: int, at: Any = None) -> dict[str, Any]:
    return {
        "id": event_id,
        "kind": "bill_overdue",
        "account_id": c.account_id,
        "occurred_at": (at or SYSTEM_CLOCK.now()).isoformat(),
        "bill_due_date": bill.due_date.isoformat(),
        "days_past_due": dpd,
    }


def _account(api: Api, account_id: str) -> CreditAccount:
    with session_scope(api.engine, read_only=True) as session:
        account = session.get(CreditAccount, account_id)
        assert account is not None
        return account


async def _post(api: Api, body: Any, headers: dict[str, str] | None = None) -> Any:
    return await api.http.post(
        "/admin/ledger/events",
        json=body,
        headers=headers if headers is not None else api.auth(Role.ADMIN, "ops-1"),
    )


async def test_an_overdue_event_freezes_the_limit_once_with_a_notice_and_an_audit_event(api: Api) -> None:
    c = _active(api, locale="zh-CN")
    bill = _latest_bill(api, c.account_id)
    body = {"events": [_overdue("evt-freeze-1", c, bill, 40)]}
    answer = await _post(api, body)
    assert answer.status_code == 200, answer.text
    workflow_id = f"limit-action-{c.account_id}-evt-freeze-1"
    assert answer.json()["workflow_ids"] == [workflow_id]
    assert answer.json()["events"][0] | {"workflow_started": True} == {
        "index": 0,
        "id": "evt-freeze-1",
        "account_id": c.account_id,
        "outcome": "applied",
        "workflow_id": workflow_id,
        "workflow_started": True,
    }
    account = await eventually(
        lambda: _account(api, c.account_id),
        lambda a: a.status is AccountStatus.FROZEN,
        what="the account to be frozen",
    )
    assert account.current_limit_minor == 0
    assert _latest_bill(api, c.account_id).days_past_due == 40
    with session_scope(api.engine, read_only=True) as session:
        cuts = session.exec(select(LimitEvent).where(LimitEvent.account_id == c.account_id)).all()
        assert [(e.kind, e.from_limit_minor, e.to_limit_minor, e.source, e.reason) for e in cuts] == [
            ("FREEZE", 800_000, 0, "limit-action", "LA_OVERDUE_30_DAYS: RC_OVERDUE_30_DAYS")
        ]
        trail = account_events(session, c.account_id)
        assert [e.kind for e in trail] == ["limit_frozen"]
        assert trail[0].details["risk_event_id"] == "evt-freeze-1"
        assert verify_account_trail(session, c.account_id) is None
    # The customer sees why, in their language, in the API and the portal.
    notices = (
        await api.http.get("/me/account-notices", headers=api.auth(Role.CUSTOMER, c.customer_id))
    ).json()
    assert [n["event"] for n in notices] == ["limit_frozen"]
    assert "冻结" in notices[0]["subject"] and "逾期" in notices[0]["body"] and "申诉" in notices[0]["body"]

    async with browser(api) as http:
        await sign_in(http, c.customer_id, "customer")
        page = await http.get("/app")
        assert page.status_code == 200 and notices[0]["subject"] in page.text

    # Redelivered: already applied, nothing again.
    again = await _post(api, body)
    assert again.status_code == 200 and again.json()["events"][0]["outcome"] == "already_applied"
    with session_scope(api.engine, read_only=True) as session:
        assert len(session.exec(select(LimitEvent).where(LimitEvent.account_id == c.account_id)).all()) == 1
        assert len(account_events(session, c.account_id)) == 1
        in_app = session.exec(
            select(AccountNotice).where(
                AccountNotice.account_id == c.account_id, AccountNotice.channel == "IN_APP"
            )
        ).all()
        assert len(in_app) == 1


async def test_the_workflow_result_names_what_it_did(api: Api) -> None:
    c = _active(api)
    bill = _latest_bill(api, c.account_id)
    answer = await _post(api, {"events": [_overdue("evt-result-1", c, bill, 45)]})
    assert answer.status_code == 200, answer.text
    client = await api.app.state.gateway.client()
    handle = client.get_workflow_handle_for(LimitActionWorkflow.run, answer.json()["workflow_ids"][0])
    done = await handle.result()
    assert (done.outcome, done.action_id, done.from_limit_minor, done.to_limit_minor) == (
        "frozen",
        "LA_OVERDUE_30_DAYS",
        800_000,
        0,
    )
    assert done.newly_applied and done.notices_sent is True and len(done.notice_ids) == 1  # in-app only


async def test_a_bad_batch_changes_nothing_and_names_each_bad_event(api: Api) -> None:
    c = _active(api)
    bill = _latest_bill(api, c.account_id)
    good = _overdue("evt-bad-0", c, bill, 40)
    body = {
        "events": [
            good,
            {**_overdue("evt-bad-1", c, bill, 5), "bill_due_date": "2001-01-01"},
            {"id": "evt-bad-2", "kind": "loan_application", "account_id": c.account_id},
            {**_overdue("evt-bad-3", c, bill, 5), "account_id": "no-such-account"},
            {"id": "evt-bad-4", "kind": "teleport"},
        ]
    }
    answer = await _post(api, body)
    assert answer.status_code == 422, answer.text
    problem = answer.json()
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "risk_events_invalid"
    # Shape errors are found first (the batch is not read against the ledger until all parse).
    assert [(e["index"], e["id"]) for e in problem["errors"]] == [(2, "evt-bad-2"), (4, "evt-bad-4")]
    assert "lender" in problem["errors"][0]["reason"]
    body["events"] = [good, body["events"][1], body["events"][3]]
    answer = await _post(api, body)
    assert answer.status_code == 422
    assert [(e["index"], e["id"]) for e in answer.json()["errors"]] == [(1, "evt-bad-1"), (2, "evt-bad-3")]
    assert "no bill due on 2001-01-01" in answer.json()["errors"][0]["reason"]
    with session_scope(api.engine, read_only=True) as session:
        assert session.exec(select(RiskEvent).where(RiskEvent.account_id == c.account_id)).all() == []
    assert _latest_bill(api, c.account_id).days_past_due == bill.days_past_due
    assert _account(api, c.account_id).status is AccountStatus.ACTIVE
    # Not JSON, and not a batch.
    raw = await api.http.post(
        "/admin/ledger/events",
        content=b"{nope",
        headers=api.auth(Role.ADMIN, "ops-1") | {"content-type": "application/json"},
    )
    assert raw.status_code == 422 and raw.json()["code"] == "risk_events_invalid"
    assert (await _post(api, {"events": []})).status_code == 422
    assert (await _post(api, [1, 2])).status_code == 422


async def test_a_reused_id_with_another_body_is_refused(api: Api) -> None:
    c = _active(api, unpaid_minor=0)
    event = {
        "id": "evt-loan-1",
        "kind": "loan_application",
        "account_id": c.account_id,
        "occurred_at": SYSTEM_CLOCK.now().isoformat(),
        "lender": "QuickCash",
        "amount_minor": 50_000,
        "small_loan": True,
    }
    assert (await _post(api, {"events": [event]})).status_code == 200
    answer = await _post(api, {"events": [{**event, "amount_minor": 60_000}]})
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["reason"].startswith("event_id_reused")
    with session_scope(api.engine, read_only=True) as session:
        loans = session.exec(
            select(LoanApplication).where(LoanApplication.customer_id == c.customer_id)
        ).all()
        assert [loan.amount_minor for loan in loans] == [50_000]


async def test_events_apply_in_time_order_and_an_older_one_is_stale(api: Api) -> None:
    c = _active(api, unpaid_minor=0)
    bill = _latest_bill(api, c.account_id)
    now = SYSTEM_CLOCK.now()
    # Sent out of order in one batch: applied by occurred_at, so the later (5 days) wins.
    body = {
        "events": [
            _overdue("evt-ord-2", c, bill, 5, at=now),
            _overdue("evt-ord-1", c, bill, 20, at=now - timedelta(hours=2)),
        ]
    }
    answer = await _post(api, body)
    assert [e["outcome"] for e in answer.json()["events"]] == ["applied", "applied"]
    assert _latest_bill(api, c.account_id).days_past_due == 5
    # An event older than the last applied about the same bill: recorded, not applied.
    late = await _post(api, {"events": [_overdue("evt-ord-0", c, bill, 60, at=now - timedelta(hours=1))]})
    assert late.json()["events"][0]["outcome"] == "stale" and late.json()["events"][0]["workflow_id"] is None
    assert _latest_bill(api, c.account_id).days_past_due == 5
    assert _account(api, c.account_id).status is AccountStatus.ACTIVE


def _signed(body: bytes, secret: str = SECRET, at: float | None = None) -> dict[str, str]:
    timestamp = str(int(at if at is not None else time.time()))
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "content-type": "application/json",
    }


async def test_signed_by_the_core_system_or_a_staff_admin(api: Api) -> None:
    c = _active(api, unpaid_minor=0)
    event = {
        "id": "evt-sig-1",
        "kind": "credit_report_update",
        "account_id": c.account_id,
        "occurred_at": SYSTEM_CLOCK.now().isoformat(),
        "attributes": {"other_credit_products": "3"},
    }
    body = json.dumps({"events": [event]}).encode()
    ok = await api.http.post("/admin/ledger/events", content=body, headers=_signed(body))
    assert ok.status_code == 200, ok.text
    with session_scope(api.engine, read_only=True) as session:
        row = session.get(RiskEvent, "evt-sig-1")
        assert row is not None and row.received_from == "signature"
    bad = await api.http.post("/admin/ledger/events", content=body, headers=_signed(body, secret="x" * 40))
    assert bad.status_code == 401 and bad.json()["code"] == "invalid_signature"
    old = await api.http.post(
        "/admin/ledger/events", content=body, headers=_signed(body, at=time.time() - 600)
    )
    assert old.status_code == 401 and old.json()["code"] == "invalid_signature"
    tampered = body.replace(b'"3"', b'"9"')
    changed = await api.http.post("/admin/ledger/events", content=tampered, headers=_signed(body))
    assert changed.status_code == 401
    # Staff: an admin may, anyone else not; no credentials at all is 401.
    assert (await _post(api, {"events": [event]}, api.auth(Role.REVIEWER, "r-1"))).status_code == 403
    assert (await _post(api, {"events": [event]}, api.auth(Role.CUSTOMER, c.customer_id))).status_code == 403
    assert (await _post(api, {"events": [event]}, {})).status_code == 401
    staff = await _post(api, {"events": [event]}, api.auth(Role.ADMIN, "ops-9"))
    assert staff.status_code == 200 and staff.json()["events"][0]["outcome"] == "already_applied"
