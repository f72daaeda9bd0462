"""Documents for demos and walkthroughs: a consistent bank statement covering the months the
checklist asks for, and a plain-text credit report."""

from __future__ import annotations

import csv
import io
import random
from datetime import date, timedelta
from decimal import Decimal

from core.months import full_calendar_months_range


def _money(minor: int) -> str:
    return f"{Decimal(minor) / 100:.2f}"


def statement_csv(
    today: date,
    *,
    months: int = 3,
    employer: str = "Demo Trading Co.",
    salary_minor: int = 1_200_000,
    seed: int = 1,
) -> bytes:
    """Salary on the 10th, everyday spending in between, the running balance always adding up;
    from two days before the last `months` full calendar months up to yesterday."""
    rng = random.Random(seed)
    start = full_calendar_months_range(today, months).start - timedelta(days=2)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["Transaction Date", "Description", "Counterparty", "Amount", "Balance"])
    balance = 350_000
    day = start
    while day < today:
        entries: list[tuple[str, str, int]] = []
        if day.day == 10:
            entries.append(("Salary", employer, salary_minor))
        if rng.random() < 0.4:
            entries.append(
                (
                    "Card payment",
                    rng.choice(["Supermarket", "Metro", "Utilities"]),
                    -rng.randrange(2_000, 40_000),
                )
            )
        for description, counterparty, amount in entries:
            balance += amount
            writer.writerow([day.isoformat(), description, counterparty, _money(amount), _money(balance)])
        day += timedelta(days=1)
    return out.getvalue().encode()


def credit_report_text(customer_name: str, today: date) -> bytes:
    return (
        f"Personal credit report\nName: {customer_name}\nReport date: {today.isoformat()}\n"
        "Credit accounts: 2\nOverdue accounts now: 0\n"
    ).encode()
