"""Demo ledger data for `appeals dev`: a few customers whose limits were frozen or cut."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import Session

from core.auth import Principal, Role
from core.db.ledger_tables import (
    AccountStatus,
    Bill,
    CreditAccount,
    Customer,
    LimitEvent,
    LimitEventKind,
)
from core.months import add_months, billing_dates
from core.staff import sign_in


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
    billing_day: int  # the account's fixed billing day, 1-28


DEMO_CUSTOMERS: tuple[DemoCustomer, ...] = (
    DemoCustomer(
        "c-1001",
        "王芳",
        "zh-CN",
        AccountStatus.FROZEN,
        800_000,
        0,
        # The late bill is the seventh most recent: 6-7 whole months old on any day.
        (0, 0, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0),
        "frozen after one late bill, since repaid: automatic approval",
        billing_day=5,
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
        billing_day=12,
    ),
    DemoCustomer(
        "c-1003",
        "张伟",
        "zh-CN",
        AccountStatus.FROZEN,
        500_000,
        0,
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 30, 0, -1),
        "frozen and still owes an overdue bill: ineligible with the amount owed",
        billing_day=20,
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
        billing_day=28,
    ),
)

BILL_AMOUNT_MINOR = 45_000


@dataclass(frozen=True)
class DemoBill:
    due_date: date
    paid_at: datetime | None  # None: still unpaid
    days_past_due: int


def demo_bills(demo: DemoCustomer, today: date) -> list[DemoBill]:
    """One bill per month on the customer's billing day, the latest the last one due before
    today (`core.months.billing_dates`), oldest first."""
    bills = []
    for due, dpd in zip(billing_dates(demo.billing_day, today, len(demo.history)), demo.history, strict=True):
        if dpd < 0:
            bills.append(DemoBill(due, None, (today - due).days))
        else:
            bills.append(DemoBill(due, datetime.combine(due + timedelta(days=dpd), time(10), UTC), dpd))
    return bills


def seed_demo_ledger(session: Session, today: date) -> list[DemoCustomer]:
    """Idempotent: customers that already exist are left as they are."""
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
                opened_on=add_months(today, -30),
            )
        )
        session.flush()
        for bill in demo_bills(demo, today):
            session.add(
                Bill(
                    account_id=account_id,
                    due_date=bill.due_date,
                    amount_due_minor=BILL_AMOUNT_MINOR,
                    paid_minor=0 if bill.paid_at is None else BILL_AMOUNT_MINOR,
                    paid_at=bill.paid_at,
                    days_past_due=bill.days_past_due,
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


# Members of staff a developer signs in as (the README's tokens and the sign-in page's list).
DEMO_STAFF: tuple[tuple[str, Role], ...] = (
    ("r-1", Role.REVIEWER),
    ("r-2", Role.REVIEWER),
    ("s-1", Role.SENIOR_REVIEWER),
    ("s-2", Role.SENIOR_REVIEWER),
    ("sup-1", Role.SUPERVISOR),
    ("a-1", Role.ADMIN),
)


def seed_demo_staff(session: Session, at: datetime) -> None:
    """The demo staff in the staff directory, as if each had signed in once (their entries
    follow later sign-ins), so that a supervisor can assign work to them from the start."""
    for subject, role in DEMO_STAFF:
        sign_in(session, Principal(subject=subject, role=role), [role], at=at)
