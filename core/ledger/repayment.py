"""The repayment record of an account over a look-back window, from its bills."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlmodel import Session, select

from core.db.ledger_tables import Bill


@dataclass(frozen=True)
class RepaymentRecord:
    window_start: date
    window_end: date
    bills_due: int
    bills_on_time: int
    worst_days_past_due: int

    @property
    def on_time_ratio(self) -> float | None:
        return None if self.bills_due == 0 else self.bills_on_time / self.bills_due


def repayment_record(session: Session, account_id: str, today: date, months: int = 12) -> RepaymentRecord:
    window_start = today - timedelta(days=round(months * 365.25 / 12))
    bills = session.exec(
        select(Bill).where(
            Bill.account_id == account_id, Bill.due_date >= window_start, Bill.due_date < today
        )
    ).all()
    on_time = sum(1 for bill in bills if bill.days_past_due == 0 and bill.outstanding_minor == 0)
    worst = max((bill.days_past_due for bill in bills), default=0)
    return RepaymentRecord(
        window_start=window_start,
        window_end=today,
        bills_due=len(bills),
        bills_on_time=on_time,
        worst_days_past_due=worst,
    )
