"""Test data built in code: ledger rows for one customer with a chosen repayment story."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.engine import Engine

from core.db import session_scope
from core.db.ledger_tables import AccountStatus, Bill, CreditAccount, Customer

_ids = itertools.count(1)


@dataclass(frozen=True)
class LedgerCustomer:
    customer_id: str
    account_id: str
    original_limit_minor: int


def _months_back(today: date, months: int) -> date:
    year, month = divmod(today.year * 12 + today.month - 1 - months, 12)
    return date(year, month + 1, min(today.day, 28))


def make_customer(
    engine: Engine,
    *,
    status: AccountStatus = AccountStatus.FROZEN,
    original_limit_minor: int = 800_000,
    current_limit_minor: int = 0,
    days_past_due: tuple[int, ...] = (0,) * 12,
    unpaid_minor: int = 0,
    locale: str = "en",
    declared_monthly_income_minor: int | None = 1_500_000,
    today: date | None = None,
) -> LedgerCustomer:
    """days_past_due: one monthly bill per entry, oldest first.
    unpaid_minor stays owed on the last bill."""
    today = today or datetime.now(UTC).date()
    n = next(_ids)
    customer_id, account_id = f"tc-{n}-{id(engine) % 10_000}", f"ta-{n}-{id(engine) % 10_000}"
    with session_scope(engine) as session:
        session.add(
            Customer(
                id=customer_id,
                name=f"Test Customer {n}",
                locale=locale,
                declared_monthly_income_minor=declared_monthly_income_minor,
                employer="ACME Ltd",
            )
        )
        session.flush()
        session.add(
            CreditAccount(
                id=account_id,
                customer_id=customer_id,
                status=status,
                original_limit_minor=original_limit_minor,
                current_limit_minor=current_limit_minor,
                opened_on=_months_back(today, 36),
            )
        )
        session.flush()
        for index, dpd in enumerate(days_past_due):
            due = _months_back(today, len(days_past_due) - index)
            last = index == len(days_past_due) - 1
            owed = unpaid_minor if last else 0
            session.add(
                Bill(
                    account_id=account_id,
                    due_date=due,
                    amount_due_minor=40_000,
                    paid_minor=40_000 - owed,
                    days_past_due=dpd,
                    paid_at=None if owed else datetime.combine(due + timedelta(days=dpd), time(9), UTC),
                )
            )
    return LedgerCustomer(customer_id, account_id, original_limit_minor)
