"""Test data built in code: ledger rows for one customer with a chosen repayment story."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy.engine import Engine

from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.ledger_tables import AccountStatus, Bill, CreditAccount, Customer
from core.months import add_months, billing_dates

_ids = itertools.count(1)

BILL_AMOUNT_MINOR = 40_000
DEFAULT_BILLING_DAY = 15


@dataclass(frozen=True)
class LedgerCustomer:
    customer_id: str
    account_id: str
    original_limit_minor: int


def monthly_bills(
    account_id: str,
    days_past_due: tuple[int, ...],
    *,
    today: date,
    billing_day: int = DEFAULT_BILLING_DAY,
    unpaid_minor: int = 0,
) -> list[Bill]:
    """One bill per entry of `days_past_due`, oldest first, on the account's fixed billing day:
    the latest is the last billing date before today (`core.months.billing_dates`), so this
    month's bill is there once its day has passed. `unpaid_minor` stays owed on the latest."""
    dues = billing_dates(billing_day, today, len(days_past_due))
    bills = []
    for index, (due, dpd) in enumerate(zip(dues, days_past_due, strict=True)):
        owed = unpaid_minor if index == len(dues) - 1 else 0
        bills.append(
            Bill(
                account_id=account_id,
                due_date=due,
                amount_due_minor=BILL_AMOUNT_MINOR,
                paid_minor=BILL_AMOUNT_MINOR - owed,
                days_past_due=dpd,
                paid_at=None if owed else datetime.combine(due + timedelta(days=dpd), time(9), UTC),
            )
        )
    return bills


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
    billing_day: int = DEFAULT_BILLING_DAY,
    today: date | None = None,
) -> LedgerCustomer:
    """days_past_due: one monthly bill per entry, oldest first (see `monthly_bills`).
    unpaid_minor stays owed on the last bill.

    `today` defaults to the system clock's: the worker and API that judge this ledger in the
    stack tests read that clock. Tests that call core functions themselves pass a fixed day."""
    today = today or SYSTEM_CLOCK.today()
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
                opened_on=add_months(today, -36),
            )
        )
        session.flush()
        session.add_all(
            monthly_bills(
                account_id, days_past_due, today=today, billing_day=billing_day, unpaid_minor=unpaid_minor
            )
        )
    return LedgerCustomer(customer_id, account_id, original_limit_minor)
