from __future__ import annotations

import threading
from datetime import date

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.db import session_scope
from core.db.ledger_tables import AccountStatus, CreditAccount, LimitEvent, LimitEventKind
from core.ledger.eligibility import check_eligibility
from core.ledger.limits import apply_restore
from core.ledger.repayment import repayment_record
from tests.factories import make_customer

TODAY = date(2026, 11, 30)
# Month ends, leap days, year ends: the record must not depend on the day of the month.
DAYS = (TODAY, date(2027, 1, 31), date(2028, 2, 29), date(2027, 2, 28), date(2026, 12, 31), date(2027, 3, 1))


def test_frozen_and_repaid_is_eligible(engine: Engine) -> None:
    c = make_customer(engine, status=AccountStatus.FROZEN, today=TODAY)
    with session_scope(engine, read_only=True) as session:
        result = check_eligibility(session, c.account_id, TODAY)
    assert result.eligible and result.amount_owed_minor == 0


def test_outstanding_overdue_balance_is_ineligible_with_amount(engine: Engine) -> None:
    c = make_customer(
        engine, status=AccountStatus.REDUCED, current_limit_minor=100_000, unpaid_minor=12_345, today=TODAY
    )
    with session_scope(engine, read_only=True) as session:
        result = check_eligibility(session, c.account_id, TODAY)
    assert not result.eligible
    assert result.reason_code == "overdue_balance_outstanding"
    assert result.amount_owed_minor == 12_345


def test_active_account_has_nothing_to_appeal(engine: Engine) -> None:
    c = make_customer(engine, status=AccountStatus.ACTIVE, current_limit_minor=800_000, today=TODAY)
    with session_scope(engine, read_only=True) as session:
        result = check_eligibility(session, c.account_id, TODAY)
    assert not result.eligible and result.reason_code == "account_not_restricted"


@pytest.mark.parametrize("today", DAYS, ids=str)
@pytest.mark.parametrize("billing_day", [1, 28])
def test_repayment_record_over_twelve_months(engine: Engine, today: date, billing_day: int) -> None:
    c = make_customer(
        engine, days_past_due=(0, 0, 3, 0, 0, 0, 45, 0, 0, 0, 0, 0), billing_day=billing_day, today=today
    )
    with session_scope(engine, read_only=True) as session:
        record = repayment_record(session, c.account_id, today)
    assert record.bills_due == 12 and record.bills_on_time == 10 and record.worst_days_past_due == 45


def test_limit_applied_exactly_once_even_concurrently(engine: Engine) -> None:
    c = make_customer(engine, current_limit_minor=0, original_limit_minor=800_000, today=TODAY)
    barrier = threading.Barrier(6)
    outcomes: list[bool] = []

    def apply() -> None:
        barrier.wait()
        with session_scope(engine) as session:
            outcomes.append(
                apply_restore(
                    session, appeal_id="ap-1", account_id=c.account_id, new_limit_minor=600_000
                ).newly_applied
            )

    threads = [threading.Thread(target=apply) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [False] * 5 + [True]
    with session_scope(engine, read_only=True) as session:
        events = session.exec(select(LimitEvent).where(LimitEvent.appeal_id == "ap-1")).all()
        account = session.get(CreditAccount, c.account_id)
    assert len(events) == 1 and events[0].kind == LimitEventKind.RESTORE
    assert events[0].from_limit_minor == 0 and events[0].to_limit_minor == 600_000
    assert (
        account is not None
        and account.current_limit_minor == 600_000
        and account.status == AccountStatus.REDUCED  # below the original 800,000
    )
