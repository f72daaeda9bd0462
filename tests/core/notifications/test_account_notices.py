"""Notices about an account: one row per channel the customer can receive, rendered in their
language, planned once per key, delivered at most once by the outbox's code."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core.db import session_scope
from core.db.ledger_tables import AccountStatus, Customer
from core.db.lender_tables import AccountNotice
from core.notifications.account_notices import (
    list_account_notices,
    notices_for_account,
    plan_account_notices,
    render_account_notice,
    send_account_notices,
)
from core.notifications.channels.base import OutboundMessage, PermanentSendError, RetryableSendError
from core.notifications.channels.email import email_message_id
from core.notifications.outbox import EMAIL, IN_APP, SMS, undelivered
from tests.factories import LedgerCustomer, make_customer

AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
REASON = {
    "code": "RC_OVERDUE_30_DAYS",
    "en": "A bill on your account is more than 30 days overdue.",
    "zh-CN": "您的账户有账单逾期超过30天。",
}


def _context(**overrides: Any) -> dict[str, Any]:
    return {
        "from_limit_minor": 800_000,
        "to_limit_minor": 0,
        "reason": REASON,
        "decided_on": AT.date(),
        "appeal_from": AT.date(),
        "amount_owed_minor": 40_000,
        **overrides,
    }


class Recording:
    def __init__(self, fail: list[Exception] | None = None) -> None:
        self.sent: list[OutboundMessage] = []
        self.fail = list(fail or [])

    def send(self, message: OutboundMessage) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append(message)


def _customer(engine: Engine, *, locale: str, email: str | None, phone: str | None) -> LedgerCustomer:
    c = make_customer(engine, locale=locale, status=AccountStatus.ACTIVE, current_limit_minor=800_000)
    with session_scope(engine) as session:
        customer = session.get(Customer, c.customer_id)
        assert customer is not None
        customer.email, customer.phone = email, phone
        session.add(customer)
    return c


def _plan(
    engine: Engine, c: LedgerCustomer, kind: str = "limit_frozen", key: str = "k1", **ctx: Any
) -> list[int]:
    with session_scope(engine) as session:
        return plan_account_notices(
            session,
            account_id=c.account_id,
            kind=kind,
            key=f"limit-action:{c.account_id}:{key}",
            context=_context(**ctx),
            at=AT,
        )


def _rows(engine: Engine, c: LedgerCustomer) -> dict[str, AccountNotice]:
    with session_scope(engine, read_only=True) as session:
        return {row.channel: row for row in notices_for_account(session, c.account_id)}


def test_one_row_per_reachable_channel_planned_once(engine: Engine) -> None:
    c = _customer(engine, locale="en", email="li.wei@example.com", phone="+8613800138000")
    first = _plan(engine, c)
    assert _plan(engine, c) == first and len(first) == 3
    rows = _rows(engine, c)
    assert set(rows) == {IN_APP, EMAIL, SMS}
    assert rows[IN_APP].status == "SENT" and rows[IN_APP].sent_at == AT
    assert rows[EMAIL].status == rows[SMS].status == "PENDING"
    assert rows[EMAIL].recipient == "li.wei@example.com" and rows[SMS].recipient == "+8613800138000"
    assert rows[EMAIL].message_id == email_message_id(rows[EMAIL].idempotency_key)
    assert {row.subject for row in rows.values()} == {"Your credit limit has been frozen"}
    # Another key is another notice.
    assert set(_plan(engine, c, key="k2")).isdisjoint(first)


def test_only_in_app_without_email_or_phone(engine: Engine) -> None:
    c = _customer(engine, locale="en", email=None, phone=None)
    assert len(_plan(engine, c)) == 1
    assert set(_rows(engine, c)) == {IN_APP}


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("kind", ["limit_frozen", "limit_reduced"])
def test_rendered_in_the_customers_language_with_reason_and_how_to_appeal(
    sqlite_engine: Engine, locale: str, kind: str
) -> None:
    c = _customer(sqlite_engine, locale=locale, email="a@example.com", phone="+8613800138000")
    _plan(sqlite_engine, c, kind=kind, to_limit_minor=0 if kind == "limit_frozen" else 400_000)
    rows = _rows(sqlite_engine, c)
    to = "¥0.00" if kind == "limit_frozen" else "¥4,000.00"
    for channel in (IN_APP, EMAIL):
        body = rows[channel].body
        assert REASON[locale] in body, (channel, body)
        assert "¥8,000.00" in body and to in body
        assert "¥400.00" in body  # repay the overdue balance first
        assert "http://127.0.0.1:8000/app" in body
        assert rows[channel].locale == locale
    if locale == "zh-CN":
        assert (
            "申诉" in rows[IN_APP].body
            and ("冻结" if kind == "limit_frozen" else "下调") in rows[IN_APP].subject
        )
        assert rows[SMS].body.startswith("【额度通知】")
    else:
        assert "appeal" in rows[IN_APP].body
        assert ("frozen" if kind == "limit_frozen" else "reduced") in rows[IN_APP].subject
    html = rows[EMAIL].body_html or ""
    assert REASON[locale] in html and "<html" in html


def test_no_overdue_balance_names_the_day_from_which_to_appeal() -> None:
    common = {"customer_name": "Li", "account_id": "a-1", "currency": "CNY", "portal_url": "https://x/app"}
    en = render_account_notice(
        "limit_reduced", "en", common | _context(amount_owed_minor=0, appeal_from=date(2026, 12, 1))
    )
    zh = render_account_notice(
        "limit_reduced", "zh-CN", common | _context(amount_owed_minor=0, appeal_from=date(2026, 12, 1))
    )
    assert "You may appeal this decision from 1 December 2026" in en.in_app
    assert "自2026年12月1日起，您可以对本决定提出申诉" in zh.in_app


def test_delivered_at_most_once_and_retried_per_channel(engine: Engine) -> None:
    c = _customer(engine, locale="en", email="a@example.com", phone="+8613800138000")
    ids = _plan(engine, c)
    email, sms = Recording(fail=[RetryableSendError("smtp down")]), Recording()
    with pytest.raises(RetryableSendError, match="smtp down"):
        send_account_notices(engine, ids, {EMAIL: email, SMS: sms}, raise_errors=True)
    rows = _rows(engine, c)
    assert rows[SMS].status == "SENT" and rows[EMAIL].status == "FAILED" and rows[EMAIL].attempts == 1
    with session_scope(engine, read_only=True) as session:
        assert undelivered(session, now=AT.replace(year=2099), table=AccountNotice) == [rows[EMAIL].id]
    send_account_notices(engine, ids, {EMAIL: email, SMS: sms}, raise_errors=True)
    send_account_notices(engine, ids, {EMAIL: email, SMS: sms}, raise_errors=True)
    assert len(email.sent) == 1 and len(sms.sent) == 1
    assert email.sent[0].message_id == rows[EMAIL].message_id
    rows = _rows(engine, c)
    assert rows[EMAIL].status == "SENT" and rows[EMAIL].attempts == 2


def test_a_permanent_failure_is_raised_and_not_retried(engine: Engine) -> None:
    c = _customer(engine, locale="en", email="a@example.com", phone=None)
    ids = _plan(engine, c)
    email = Recording(fail=[PermanentSendError("550 no such user")])
    with pytest.raises(PermanentSendError):
        send_account_notices(engine, ids, {EMAIL: email}, raise_errors=True)
    send_account_notices(engine, ids, {EMAIL: email})  # not raised, not tried again
    assert email.sent == [] and _rows(engine, c)[EMAIL].attempts == 1


def test_the_customer_lists_their_in_app_account_notices(engine: Engine) -> None:
    c = _customer(engine, locale="en", email="a@example.com", phone="+8613800138000")
    _plan(engine, c, key="k1")
    _plan(engine, c, kind="limit_reduced", key="k2")
    with session_scope(engine, read_only=True) as session:
        listed = list_account_notices(session, c.customer_id)
        assert [(n.channel, n.event) for n in listed] == [(IN_APP, "limit_reduced"), (IN_APP, "limit_frozen")]
        assert list_account_notices(session, "someone-else") == []
