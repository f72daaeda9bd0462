"""The activities judge an appeal on their clock's day (an injected Clock), not the machine's."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from sqlalchemy.engine import Engine

from activities.appeal import AppealActivities
from activities.types import OpenInput
from core.appeals.service import NewAppeal, create_appeal
from core.clock import FixedClock
from core.db import session_scope
from core.status import AppealStatus
from tests.conftest import make_settings
from tests.factories import make_customer

TODAY = date(2028, 2, 29)


def _open(activities: AppealActivities, engine: Engine) -> tuple[AppealStatus, int]:
    # The latest bill (due 15 February) is still unpaid.
    customer = make_customer(engine, unpaid_minor=12_345, billing_day=15, today=TODAY)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(
            session, NewAppeal(customer.customer_id, customer.account_id, 500_000), today=TODAY
        )
    opened = activities.open_appeal(
        OpenInput(
            appeal_id=appeal.id, at=datetime(2028, 2, 29, 12, tzinfo=UTC), notice_seq=1, deadline_days=7
        )
    )
    with session_scope(engine, read_only=True) as session:
        owed = session.get(type(appeal), appeal.id).amount_owed_minor  # type: ignore[union-attr]
    return opened.status, owed or 0


def test_eligibility_is_judged_on_the_clocks_day(sqlite_engine: Engine, tmp_path: Path) -> None:
    clock = FixedClock(date(2028, 2, 15))  # the due date itself: not overdue yet
    activities = AppealActivities(
        engine=sqlite_engine, s3_client=None, settings=make_settings(tmp_path), clock=clock
    )
    assert _open(activities, sqlite_engine) == (AppealStatus.AWAITING_DOCUMENTS, 0)
    clock.advance(timedelta(days=1))
    assert _open(activities, sqlite_engine) == (AppealStatus.INELIGIBLE, 12_345)
