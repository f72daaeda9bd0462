"""Demo ledger data for `appeals dev`: a few customers whose limits were frozen or cut."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session

from core.db.ledger_tables import (
    AccountStatus,
    Bill,
    CreditAccount,
    Customer,
    LimitEvent,
    LimitEventKind,
)


@dataclass(frozen=True)
class DemoCustomer:
    customer_id: str
    name: str
    locale: str
    account_status: AccountStatus
    original_limit_minor: int
    current_limit_minor: int
    # days past due per monthly bill, oldest first (12 bills); -1 = still unpaid
    history: tuple[int, ...]
    story: str


DEMO_CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer(
        "c-1001",
        "王芳",
        "zh-CN",
        AccountStatus.FROZEN,
        800_000,
        0,
        (0, 0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0),
        "frozen after one late bill, since repaid: automatic approval",
    ),
    DemoCustomer(
        "c-1002",
        "Li Wei",
        "en",
        AccountStatus.REDUCED,
        1_000_000,
        300_000,
        (0, 5, 0, 45, 0, 20, 0, 0, 0, 0, 0, 0),
        "reduced after repeated lateness, since repaid: manual review",
    ),
    DemoCustomer(
        "c-1003",
        "张伟",
        "zh-CN",
        AccountStatus.FROZEN,
        500_000,
        0,
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 30, -1),
        "frozen and still owes an overdue bill: ineligible with the amount owed",
    ),
    DemoCustomer(
        "c-1004",
        "Emma Chen",
        "en",
        AccountStatus.ACTIVE,
        600_000,
        600_000,
        (0,) * 12,
        "account in good standing: nothing to appeal",
    ),
)

BILL_AMOUNT_MINOR = 45_000


def _month_back(today: date, months: int) -> date:
    year, month = today.year, today.month - months
    while month <= 0:
        month += 12
        year -= 1
    return date(year, month, min(today.day, 28))


def seed_demo_ledger(session: Session, today: date | None = None) -> list[DemoCustomer]:
    """Idempotent: customers that already exist are left as they are."""
    today = today or datetime.now(UTC).date()
    created = []
    for demo in DEMO_CUSTOMERS:
        if session.get(Customer, demo.customer_id) is not None:
            continue
        account_id = f"acct-{demo.customer_id.removeprefix('c-')}"
        session.add(
            Customer(
                id=demo.customer_id,
                name=demo.name,
                locale=demo.locale,
                email=f"{demo.customer_id}@example.test",
                declared_monthly_income_minor=1_200_000,
                employer="Demo Trading Co.",
            )
        )
        session.flush()  # no ORM relationships: flush parents before children (foreign keys)
        session.add(
            CreditAccount(
                id=account_id,
                customer_id=demo.customer_id,
                status=demo.account_status,
                original_limit_minor=demo.original_limit_minor,
                current_limit_minor=demo.current_limit_minor,
                opened_on=_month_back(today, 30),
            )
        )
        session.flush()
        for index, dpd in enumerate(demo.history):
            due = _month_back(today, len(demo.history) - index)
            unpaid = dpd < 0
            days_late = (today - due).days if unpaid else dpd
            paid_at = None if unpaid else datetime.combine(due + timedelta(days=dpd), time(10), UTC)
            session.add(
                Bill(
                    account_id=account_id,
                    due_date=due,
                    amount_due_minor=BILL_AMOUNT_MINOR,
                    paid_minor=0 if unpaid else BILL_AMOUNT_MINOR,
                    paid_at=paid_at,
                    days_past_due=days_late,
                )
            )
        if demo.account_status is not AccountStatus.ACTIVE:
            kind = (
                LimitEventKind.FREEZE
                if demo.account_status is AccountStatus.FROZEN
                else LimitEventKind.REDUCE
            )
            session.add(
                LimitEvent(
                    account_id=account_id,
                    kind=kind,
                    from_limit_minor=demo.original_limit_minor,
                    to_limit_minor=demo.current_limit_minor,
                    reason="late_repayment",
                    source="risk-engine",
                )
            )
        created.append(demo)
    return created
