"""The repayment record of an account over a look-back window, from its bills.

The window is `core.months.last_months`, the same one the scorecard's characteristics use: an
account billed monthly on a fixed day has exactly `months` bills in it on any day of the year."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from sqlalchemy import ColumnElement
from sqlmodel import Session, col, select

from core.db.ledger_tables import Bill
from core.months import last_months


class BillFigures(Protocol):
    """What the record reads of a bill: a Bill, or the few columns of one."""

    @property
    def due_date(self) -> date: ...
    @property
    def days_past_due(self) -> int: ...
    @property
    def outstanding_minor(self) -> int: ...


@dataclass(frozen=True)
class _DueBill:
    due_date: date
    days_past_due: int
    outstanding_minor: int


@dataclass(frozen=True)
class RepaymentRecord:
    window_start: date
    window_end: date  # exclusive: today
    bills_due: int
    bills_on_time: int
    worst_days_past_due: int

    @property
    def on_time_ratio(self) -> float | None:
        return None if self.bills_due == 0 else self.bills_on_time / self.bills_due


def summarise_bills(bills: Iterable[BillFigures], today: date, months: int = 12) -> RepaymentRecord:
    """The record of the bills due in the last `months` months (others are ignored)."""
    window = last_months(today, months)
    due = [bill for bill in bills if bill.due_date in window]
    return RepaymentRecord(
        window_start=window.start,
        window_end=today,
        bills_due=len(due),
        bills_on_time=sum(1 for bill in due if bill.days_past_due == 0 and bill.outstanding_minor == 0),
        worst_days_past_due=max((bill.days_past_due for bill in due), default=0),
    )


def _in_last_months(account_id: str, today: date, months: int) -> list[ColumnElement[bool]]:
    """The conditions of the account's bills due in the last `months` months."""
    window = last_months(today, months)
    due = col(Bill.due_date)
    return [col(Bill.account_id) == account_id, due >= window.start, due <= window.end]


def bills_in_last_months(session: Session, account_id: str, today: date, months: int = 12) -> list[Bill]:
    """The account's bills due in the last `months` months, oldest first (one query)."""
    return list(
        session.exec(
            select(Bill)
            .where(*_in_last_months(account_id, today, months))
            .order_by(col(Bill.due_date), col(Bill.id))
        ).all()
    )


def repayment_record(session: Session, account_id: str, today: date, months: int = 12) -> RepaymentRecord:
    """summarise_bills over the window's bills, read as the three figures it needs rather than
    as entities (an appeal's first step reads them on its hot path)."""
    rows = session.exec(
        select(col(Bill.due_date), col(Bill.days_past_due), col(Bill.amount_due_minor), col(Bill.paid_minor))
        .where(*_in_last_months(account_id, today, months))
        .order_by(col(Bill.due_date), col(Bill.id))
    ).all()
    bills = [_DueBill(due, late, Bill.outstanding(amount_due, paid)) for due, late, amount_due, paid in rows]
    return summarise_bills(bills, today, months)
