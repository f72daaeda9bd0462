"""The activities judge an appeal on their clock's day (an injected Clock), not the machine's."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from activities.appeal import AppealActivities
from activities.types import AppealRef
from core.appeals.service import NewAppeal, create_appeal
from core.clock import FixedClock
from core.db import session_scope
from tests.conftest import make_settings
from tests.factories import make_customer

TODAY = date(2028, 2, 29)


def test_eligibility_is_judged_on_the_clocks_day(sqlite_engine: Engine, tmp_path: Path) -> None:
    # The latest bill (due 15 February) is still unpaid.
    customer = make_customer(sqlite_engine, unpaid_minor=12_345, billing_day=15, today=TODAY)
    with session_scope(sqlite_engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(customer.customer_id, customer.account_id, 500_000))
    clock = FixedClock(date(2028, 2, 15))  # the due date itself: not overdue yet
    activities = AppealActivities(
        engine=sqlite_engine, s3_client=None, settings=make_settings(tmp_path), clock=clock
    )
    assert activities.check_eligibility(AppealRef(appeal_id=appeal.id)).eligible
    clock.advance(timedelta(days=1))
    result = activities.check_eligibility(AppealRef(appeal_id=appeal.id))
    assert not result.eligible and result.amount_owed_minor == 12_345
