"""The cool-down after a decline, on SQLite and PostgreSQL: a new appeal on the account is
refused until the day the decline notice names, and only a decline starts it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine

from core.appeals.cooldown import cooldown_ends_on, may_appeal_again_on
from core.appeals.service import NewAppeal, Transition, apply_transition, create_appeal
from core.db import session_scope
from core.errors import Conflict
from core.notifications.rendering import complete_context
from core.policy.loader import load_default_policy
from core.status import AppealStatus
from tests.factories import make_customer

S = AppealStatus
TODAY = date(2027, 1, 31)
COOLDOWN_DAYS = load_default_policy().policy.appeals.decline_cooldown_days


def _appeal_through(engine: Engine, account: tuple[str, str], path: list[AppealStatus], at: datetime) -> str:
    """Submits an appeal and moves it along `path`, each step a minute after the last."""
    customer_id, account_id = account
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(customer_id, account_id, 500_000), today=at.date())
        for step, status in enumerate(path):
            apply_transition(session, Transition(appeal.id, status, at + timedelta(minutes=step)))
        return appeal.id


def _submit(engine: Engine, account: tuple[str, str], today: date) -> str:
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(account[0], account[1], 500_000), today=today)
        return appeal.id


AUTO_DECLINE = [S.AWAITING_DOCUMENTS, S.CHECKING, S.AUTO_DECLINED, S.CLOSED]
REVIEWER_DECLINE = [S.AWAITING_DOCUMENTS, S.CHECKING, S.PENDING_REVIEW, S.IN_REVIEW, S.DECLINED, S.CLOSED]
HUMAN_REVIEW_APPROVES = [
    *AUTO_DECLINE[:3],
    S.PENDING_REVIEW,
    S.IN_REVIEW,
    S.PARTIALLY_APPROVED,
    S.LIMIT_APPLIED,
    S.CLOSED,
]


@pytest.mark.parametrize("path", [AUTO_DECLINE, REVIEWER_DECLINE], ids=["automatic", "reviewer"])
def test_a_decline_holds_new_appeals_until_the_notice_date(engine: Engine, path: list[AppealStatus]) -> None:
    c = make_customer(engine, today=TODAY)
    account = (c.customer_id, c.account_id)
    declined_at = datetime(2027, 1, 31, 23, 50, tzinfo=UTC)
    _appeal_through(engine, account, path, declined_at)
    ends_on = may_appeal_again_on(date(2027, 1, 31), COOLDOWN_DAYS)
    assert ends_on == date(2027, 3, 2)

    with pytest.raises(Conflict) as info:
        _submit(engine, account, ends_on - timedelta(days=1))
    assert info.value.code == "decline_cooldown"
    assert info.value.extra["may_appeal_from"] == ends_on.isoformat()
    # The decline notice names the same day.
    notice = complete_context("declined", {"decided_on": "2027-01-31", "cooldown_days": COOLDOWN_DAYS})
    assert notice["reapply_on"] == ends_on

    assert _submit(engine, account, ends_on)


def test_an_approval_after_human_review_ends_the_cooldown(engine: Engine) -> None:
    c = make_customer(engine, today=TODAY, current_limit_minor=0)
    account = (c.customer_id, c.account_id)
    _appeal_through(engine, account, HUMAN_REVIEW_APPROVES, datetime(2027, 1, 20, 9, tzinfo=UTC))
    with session_scope(engine, read_only=True) as session:
        assert cooldown_ends_on(session, c.account_id, COOLDOWN_DAYS) is None
    assert _submit(engine, account, TODAY)


def test_withdrawn_and_expired_appeals_start_no_cooldown(engine: Engine) -> None:
    c = make_customer(engine, today=TODAY)
    account = (c.customer_id, c.account_id)
    _appeal_through(engine, account, [S.WITHDRAWN], datetime(2027, 1, 30, 9, tzinfo=UTC))
    _appeal_through(engine, account, [S.AWAITING_DOCUMENTS, S.EXPIRED], datetime(2027, 1, 30, 10, tzinfo=UTC))
    assert _submit(engine, account, TODAY)


def test_the_cooldown_is_per_account(engine: Engine) -> None:
    declined = make_customer(engine, today=TODAY)
    other = make_customer(engine, today=TODAY)
    _appeal_through(
        engine, (declined.customer_id, declined.account_id), AUTO_DECLINE, datetime(2027, 1, 30, tzinfo=UTC)
    )
    assert _submit(engine, (other.customer_id, other.account_id), TODAY)
