"""Limit actions on the ledger: the right event freezes or reduces once, with its notice in the
customer's language and an account audit event; nothing fires, nothing happens."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.db import session_scope
from core.db.ledger_tables import AccountStatus, Bill, CreditAccount, LimitEvent
from core.db.lender_tables import AccountNotice
from core.ledger.account_audit import account_events, verify_account_trail
from core.lender.limit_actions import act_on_event
from core.lender.risk_events import parse_batch, record_batch
from core.policy.loader import load_default_policy
from tests.factories import LedgerCustomer, make_customer

TODAY = date(2026, 11, 30)
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def _customer(engine: Engine, locale: str = "en", unpaid_minor: int = 40_000) -> LedgerCustomer:
    return make_customer(
        engine,
        status=AccountStatus.ACTIVE,
        current_limit_minor=800_000,
        unpaid_minor=unpaid_minor,
        locale=locale,
        today=TODAY,
    )


def _record(engine: Engine, *events: dict[str, Any]) -> list[str]:
    with session_scope(engine) as session:
        result = record_batch(
            session, parse_batch({"events": list(events)}), received_from="staff:t", now=NOW
        )
    return [o.outcome for o in result.outcomes]


def _act(engine: Engine, event_id: str) -> Any:
    with session_scope(engine) as session:
        return act_on_event(
            session, event_id=event_id, policy=load_default_policy().policy, today=TODAY, now=NOW
        )


def _latest_due(engine: Engine, account_id: str) -> date:
    with session_scope(engine, read_only=True) as session:
        bill = session.exec(
            select(Bill).where(Bill.account_id == account_id).order_by(col(Bill.due_date).desc())
        ).first()
        assert bill is not None
        return bill.due_date


def _loan(c: LedgerCustomer, n: int) -> dict[str, Any]:
    return {
        "id": f"loan-{c.account_id}-{n}",
        "kind": "loan_application",
        "account_id": c.account_id,
        "occurred_at": (NOW - timedelta(days=n)).isoformat(),
        "lender": f"Lender {n}",
        "amount_minor": 50_000,
        "small_loan": True,
    }


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
def test_an_overdue_bill_freezes_once_with_notice_and_audit(engine: Engine, locale: str) -> None:
    c = _customer(engine, locale)
    event: dict[str, Any] = {
        "id": f"od-{c.account_id}",
        "kind": "bill_overdue",
        "account_id": c.account_id,
        "occurred_at": NOW.isoformat(),
        "bill_due_date": _latest_due(engine, c.account_id).isoformat(),
        "days_past_due": 33,
    }
    assert _record(engine, event) == ["applied"]
    done = _act(engine, event["id"])
    assert (done.outcome, done.action_id, done.from_limit_minor, done.to_limit_minor) == (
        "frozen",
        "LA_OVERDUE_30_DAYS",
        800_000,
        0,
    )
    again = _act(engine, event["id"])
    assert (
        again.outcome == "frozen" and not again.newly_applied and again.limit_event_id == done.limit_event_id
    )
    reason = load_default_policy().policy.reasons["RC_OVERDUE_30_DAYS"]
    with session_scope(engine, read_only=True) as session:
        account = session.get(CreditAccount, c.account_id)
        assert (
            account is not None
            and account.status is AccountStatus.FROZEN
            and account.current_limit_minor == 0
        )
        assert len(session.exec(select(LimitEvent).where(LimitEvent.account_id == c.account_id)).all()) == 1
        trail = account_events(session, c.account_id)
        assert [e.kind for e in trail] == ["limit_frozen"] and verify_account_trail(
            session, c.account_id
        ) is None
        notice = session.exec(select(AccountNotice).where(AccountNotice.account_id == c.account_id)).one()
    text = reason.zh_cn if locale == "zh-CN" else reason.en
    assert notice.locale == locale and text.rstrip("。.") in notice.body
    assert "¥8,000.00" in notice.body and "¥0.00" in notice.body and "¥400.00" in notice.body


def test_a_burst_of_small_loans_reduces_to_half_on_the_third(engine: Engine) -> None:
    c = _customer(engine, unpaid_minor=0)
    outcomes = []
    for n in (1, 2, 3):
        assert _record(engine, _loan(c, n)) == ["applied"]
        outcomes.append(_act(engine, f"loan-{c.account_id}-{n}").outcome)
    assert outcomes == ["nothing", "nothing", "reduced"]
    with session_scope(engine, read_only=True) as session:
        account = session.get(CreditAccount, c.account_id)
        assert account is not None and account.status is AccountStatus.REDUCED
        assert account.current_limit_minor == 400_000
        notice = session.exec(select(AccountNotice).where(AccountNotice.account_id == c.account_id)).one()
        assert notice.event == "limit_reduced" and "¥4,000.00" in notice.body
    # A fourth: the rule fires again but would not lower the limit: nothing.
    _record(engine, _loan(c, 4))
    assert _act(engine, f"loan-{c.account_id}-4").outcome == "nothing"


def test_a_stale_event_acts_on_nothing(engine: Engine) -> None:
    c = _customer(engine)
    due = _latest_due(engine, c.account_id).isoformat()
    base = {"kind": "bill_overdue", "account_id": c.account_id, "bill_due_date": due}
    _record(engine, {**base, "id": f"new-{c.account_id}", "occurred_at": NOW.isoformat(), "days_past_due": 3})
    old: dict[str, Any] = {
        **base,
        "id": f"old-{c.account_id}",
        "occurred_at": (NOW - timedelta(days=1)).isoformat(),
        "days_past_due": 60,
    }
    assert _record(engine, old) == ["stale"]
    assert _act(engine, old["id"]).outcome == "stale"
    with session_scope(engine, read_only=True) as session:
        account = session.get(CreditAccount, c.account_id)
        assert account is not None and account.status is AccountStatus.ACTIVE
