"""Bank statements for generated customers: the CSV export a customer's bank would give them,
consistent with the customer's story (payroll from the declared employer around the declared
income, spending and debt repayments in proportion).

Each statement covers the last three full calendar months before `today` and the current month
up to yesterday; the period is printed above the table, the first and last lines sit on its two
ends, and the running balance always adds up. `core.demo_documents` stays the walkthrough's
single statement; this module is for populations.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from core.months import add_months, calendar_month, full_calendar_months_range, months_between

STATEMENT_MONTHS: Final = 3
YUAN: Final = 100

SHOPS_ZH: Final = (
    ("美团外卖", "美团"),
    ("淘宝购物", "淘宝"),
    ("滴滴出行", "滴滴"),
    ("超市消费", "永辉超市"),
    ("京东商城", "京东"),
    ("餐饮消费", "海底捞"),
    ("水电燃气", "国家电网"),
    ("话费充值", "中国移动"),
)
SHOPS_EN: Final = (
    ("Food delivery", "Meituan"),
    ("Online shopping", "Taobao"),
    ("Taxi", "DiDi"),
    ("Supermarket", "Yonghui Superstores"),
    ("Online shopping", "JD.com"),
    ("Restaurant", "Haidilao"),
    ("Utilities", "State Grid"),
    ("Mobile top-up", "China Mobile"),
    ("Coffee", "Luckin Coffee"),
)
# Debt service: the labels carry the words the policy recognises as repayments of other credit.
DEBTS_ZH: Final = ("信用卡还款", "花呗还款", "借呗还款", "白条还款", "贷款还款")
DEBTS_EN: Final = ("Credit card repayment", "Huabei repayment", "Loan repayment", "Baitiao repayment")
FRIENDS_ZH: Final = ("张伟", "李娜", "王磊", "刘洋")
FRIENDS_EN: Final = ("Zhang Wei", "Li Na", "Wang Lei", "Liu Yang")


@dataclass(frozen=True, slots=True)
class StatementProfile:
    """Everything a statement needs; the lines themselves come from `rng_key` (deterministic)."""

    rng_key: str
    today: date
    locale: str
    holder: str
    account_number: str
    payroll_payer: str | None  # None: no salary at all
    monthly_income_minor: int  # payroll, or the money the customer lives on without one
    income_jitter_pct: int
    skip_pay_month: bool
    spend_pct: int  # everyday spending, percent of income
    debts_minor: tuple[int, ...]  # monthly repayments to other lenders


@dataclass(frozen=True, slots=True)
class StatementLine:
    day: date
    description: str
    counterparty: str
    amount_minor: int
    balance_minor: int


def _money(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 100)
    return f"{sign}{whole}.{frac:02d}"


def statement_period(today: date) -> tuple[date, date]:
    """First day of the earliest full month required, and yesterday."""
    return full_calendar_months_range(today, STATEMENT_MONTHS).start, today - timedelta(days=1)


def statement_lines(profile: StatementProfile) -> list[StatementLine]:
    rng = random.Random(profile.rng_key)
    zh = profile.locale == "zh-CN"
    start, end = statement_period(profile.today)
    shops = SHOPS_ZH if zh else SHOPS_EN
    debts = DEBTS_ZH if zh else DEBTS_EN
    friends = FRIENDS_ZH if zh else FRIENDS_EN
    interest = ("利息", "银行") if zh else ("Interest", "Bank")
    payer = profile.payroll_payer
    if payer is None:
        pay_label = ""
    elif zh and not payer.isascii():
        pay_label = rng.choice(("代发工资", "工资"))
    else:
        pay_label = rng.choice(("SALARY", "Payroll"))

    raw: list[tuple[date, int, str, str]] = [(start, rng.randint(1, 99), *interest)]
    months = months_between(start, end.replace(day=1)) + 1  # calendar months start..end
    skip = rng.randrange(STATEMENT_MONTHS) if profile.skip_pay_month else -1
    income = profile.monthly_income_minor
    for index in range(months):
        first = add_months(start, index)
        last = min(calendar_month(first).end, end)
        if payer is not None and index != skip:
            jitter = income * profile.income_jitter_pct // 100
            pay_day = first.replace(day=rng.randint(8, 12))
            if pay_day <= end:
                raw.append((pay_day, income + rng.randint(-jitter, jitter), pay_label, payer))
        spend_total = income * profile.spend_pct // 100
        pieces = rng.randint(8, 16)
        for _ in range(pieces):
            day = first + timedelta(days=rng.randint(0, 30))
            if day > last:
                continue
            description, shop = rng.choice(shops)
            amount = spend_total // pieces + rng.randint(-2_000, 2_000)
            raw.append((day, -max(amount, 100), description, shop))
        for debt in profile.debts_minor:
            day = first.replace(day=rng.randint(18, 25))
            if debt and day <= end:
                raw.append((day, -debt, rng.choice(debts), "" if zh else "Card services"))
        if rng.random() < 0.3:  # an occasional transfer from a friend: money in, but not payroll
            day = first + timedelta(days=rng.randint(0, 27))
            if day <= end:
                raw.append(
                    (day, rng.randint(50, 500) * YUAN, "转账" if zh else "Transfer", rng.choice(friends))
                )
    raw.append((end, rng.randint(1, 99), *interest))
    raw.sort(key=lambda r: (r[0], -r[1], r[2]))

    # Savings cover a deficit: the balance never goes below a small cushion.
    lowest, running = 0, 0
    for _, amount, _, _ in raw:
        running += amount
        lowest = min(lowest, running)
    balance = rng.randint(5_000, 50_000) * YUAN
    if balance + lowest < 0:
        balance += -(balance + lowest) + rng.randint(500, 3_000) * YUAN
    lines: list[StatementLine] = []
    for day, amount, description, counterparty in raw:
        balance += amount
        lines.append(StatementLine(day, description, counterparty, amount, balance))
    return lines


def statement_csv(profile: StatementProfile) -> bytes:
    """The statement as a bank's CSV export: a short preamble with the period, then the table."""
    start, end = statement_period(profile.today)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if profile.locale == "zh-CN":
        writer.writerow([f"户名：{profile.holder}"])
        writer.writerow([f"账号：{profile.account_number}"])
        writer.writerow(["币种：人民币"])
        writer.writerow([f"起止日期：{start.isoformat()} 至 {end.isoformat()}"])
        writer.writerow(["交易日期", "摘要", "对方户名", "交易金额", "余额"])
    else:
        writer.writerow([f"Account holder: {profile.holder}"])
        writer.writerow([f"Account number: {profile.account_number}"])
        writer.writerow(["Currency: CNY"])
        writer.writerow([f"Statement period: {start.isoformat()} to {end.isoformat()}"])
        writer.writerow(["Transaction Date", "Description", "Counterparty", "Amount", "Balance"])
    for line in statement_lines(profile):
        writer.writerow(
            [
                line.day.isoformat(),
                line.description,
                line.counterparty,
                _money(line.amount_minor),
                _money(line.balance_minor),
            ]
        )
    data = out.getvalue().encode("utf-8")
    # Chinese banks' exports carry a BOM so that Excel opens them as UTF-8.
    return b"\xef\xbb\xbf" + data if profile.locale == "zh-CN" else data
