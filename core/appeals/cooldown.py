"""The cool-down after a decline (docs/architecture.md section 4): the customer may appeal the
same account again from the day the decline notice names, the decision's day plus the
policy's `appeals.decline_cooldown_days`. The notice and the submission rule share
`may_appeal_again_on`, so what the customer is told is what the service does."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta

from sqlmodel import Session, col, select

from core.db.case_tables import Appeal, AppealEvent
from core.status import AppealStatus

S = AppealStatus

# The statuses that record an outcome. A human review of an automatic decline ends in a later
# one, so the account's latest outcome is the one that counts.
OUTCOME_STATUSES = (S.AUTO_APPROVED, S.APPROVED, S.PARTIALLY_APPROVED, S.AUTO_DECLINED, S.DECLINED)
DECLINE_STATUSES = (S.AUTO_DECLINED, S.DECLINED)


def may_appeal_again_on(declined_on: date, cooldown_days: int) -> date:
    return declined_on + timedelta(days=cooldown_days)


def cooldown_ends_on(session: Session, account_id: str, cooldown_days: int) -> date | None:
    """The first day a new appeal on the account is accepted after its latest outcome, if
    that outcome was a decline; None when the latest outcome was not a decline."""
    return cooldowns_end_on(session, [account_id], cooldown_days).get(account_id)


def cooldowns_end_on(session: Session, account_ids: Sequence[str], cooldown_days: int) -> dict[str, date]:
    """`cooldown_ends_on` for several accounts in one query (accounts without one are left out)."""
    if not account_ids:
        return {}
    outcomes = session.exec(
        select(Appeal.account_id, AppealEvent.to_status, AppealEvent.at)
        .join(Appeal, col(Appeal.id) == col(AppealEvent.appeal_id))
        .where(col(Appeal.account_id).in_(account_ids), col(AppealEvent.to_status).in_(OUTCOME_STATUSES))
        .order_by(col(AppealEvent.at).desc(), col(AppealEvent.id).desc())
    ).all()
    latest: dict[str, tuple[str | None, datetime]] = {}
    for account_id, status, at in outcomes:
        latest.setdefault(account_id, (status, at))
    return {
        account_id: may_appeal_again_on(at.date(), cooldown_days)
        for account_id, (status, at) in latest.items()
        if status in DECLINE_STATUSES
    }
