"""Test data for the policy engine: small builders and seeded population profiles.

Every profile is built from a `random.Random` the caller seeds, so a (population, seed) pair
always gives the same `AssessmentInput`. Populations:

- STEADY: long history, one short delay a few months ago, good stable payroll.
- RECOVERED: a few real delays 7-14 months ago, clean since.
- CHRONIC_LATE: late most months, recently too; stretched finances.
- MULTI_LENDER: many small-loan applications elsewhere, repayments to several lenders.
- THIN_FILE: new account, no credit report, short statement.
- HIGH_SPENDER: repays fine but spends more than earns and carries card debt.
"""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from core.months import MAX_BILLING_DAY, add_months, billing_dates, calendar_month, full_calendar_months
from core.policy.inputs import (
    Account,
    AccountStatus,
    AssessmentInput,
    Bill,
    Customer,
    DocumentType,
    LoanApplication,
    RedFlag,
    StatementTransaction,
)

AS_OF = dt.date(2025, 6, 15)
YUAN = 100  # minor units per yuan

EMPLOYERS: tuple[tuple[str, str], ...] = (
    # (name on the payroll credit, name the customer declares)
    ("上海星辰科技有限公司", "星辰科技"),
    ("杭州云帆网络科技有限公司", "杭州云帆网络科技有限公司"),
    ("深圳华晟电子股份有限公司", "华晟电子"),
    ("北京明远教育咨询有限公司", "北京明远教育"),
    ("SUZHOU BRIGHT LOGISTICS CO., LTD.", "Suzhou Bright Logistics Co., Ltd"),
)
SHOPS: tuple[tuple[str, str], ...] = (
    ("美团外卖", "美团"),
    ("淘宝购物", "淘宝"),
    ("滴滴出行", "滴滴"),
    ("超市消费", "永辉超市"),
    ("京东商城", "京东"),
    ("餐饮消费", "海底捞"),
    ("水电燃气", "国家电网"),
    ("话费充值", "中国移动"),
)
LENDERS: tuple[str, ...] = (
    "借呗",
    "微粒贷",
    "京东金条",
    "360借条",
    "安逸花",
    "招联好期贷",
    "分期乐",
)
DEBT_LABELS: tuple[str, ...] = ("信用卡还款", "花呗还款", "借呗还款", "白条还款", "贷款还款")


class Population(StrEnum):
    STEADY = "steady"
    RECOVERED = "recovered"
    CHRONIC_LATE = "chronic_late"
    MULTI_LENDER = "multi_lender"
    THIN_FILE = "thin_file"
    HIGH_SPENDER = "high_spender"


# --------------------------------------------------------------------------------------------
# Small builders for table-driven tests


def bill(
    due_date: dt.date,
    dpd: int = 0,
    *,
    amount: int = 100_000,
    paid: int | None = None,
    paid_on: dt.date | None = None,
) -> Bill:
    """A bill paid in full `dpd` days after its due date (on the due date when 0)."""
    paid_amount = amount if paid is None else paid
    if paid_on is None and paid_amount >= amount:
        paid_on = due_date + dt.timedelta(days=dpd)
    return Bill(
        due_date=due_date,
        amount_due_minor=amount,
        paid_minor=paid_amount,
        paid_on=paid_on,
        days_past_due=dpd,
    )


def ago(months: int, as_of: dt.date = AS_OF) -> dt.date:
    """The date `months` before `as_of` (clamped to month end)."""
    return add_months(as_of, -months)


RED_FLAG = RedFlag(code="PDF_EDITED", explanation="statement PDF was modified after issue")


def txn(
    date: dt.date,
    amount: int,
    description: str = "消费",
    counterparty: str | None = None,
    balance: int | None = None,
) -> StatementTransaction:
    return StatementTransaction(
        date=date,
        description=description,
        amount_minor=amount,
        balance_minor=balance,
        counterparty=counterparty,
    )


def from_statement(rows: Iterable[Any]) -> tuple[StatementTransaction, ...]:
    """The scorecard's view of parsed statement rows (`core.documents.statements`)."""
    return tuple(
        txn(r.date, r.amount_minor, r.description, counterparty=r.counterparty, balance=r.balance_minor)
        for r in rows
    )


def full_months_before(as_of: dt.date, months: int) -> list[dt.date]:
    """First days of the `months` complete calendar months before as_of's month, oldest first."""
    return [month.start for month in full_calendar_months(as_of, months)]


def payroll_statement(
    as_of: dt.date = AS_OF,
    *,
    months: int = 3,
    amounts: Sequence[int] | None = None,
    payer: str = "上海星辰科技有限公司",
    description: str = "代发工资",
    pay_day: int = 10,
    spending: int = 0,
    debt: int = 0,
) -> tuple[StatementTransaction, ...]:
    """A minimal statement covering `months` full months: one salary credit, one spending
    debit and one debt-service debit a month, plus a line on the first and the last day of
    the range so it covers every month end to end."""
    firsts = full_months_before(as_of, months)
    salary = list(amounts) if amounts is not None else [800_000] * months
    assert len(salary) == months
    out: list[StatementTransaction] = [txn(firsts[0], 100, "利息", "银行")]
    for first, pay in zip(firsts, salary, strict=True):
        if pay:
            out.append(txn(first.replace(day=pay_day), pay, description, payer))
        if spending:
            out.append(txn(first.replace(day=15), -spending, "超市消费", "永辉超市"))
        if debt:
            out.append(txn(first.replace(day=20), -debt, "信用卡还款", "招商银行信用卡"))
    out.append(txn(as_of - dt.timedelta(days=1), 100, "利息", "银行"))
    return tuple(sorted(out, key=lambda t: t.date))


def base_input(**overrides: Any) -> AssessmentInput:
    """A neutral input: account opened two years ago, nothing else. Override any field."""
    data: dict[str, Any] = {
        "as_of": AS_OF,
        "customer": Customer(
            declared_monthly_income_minor=800_000,
            employer_name="星辰科技",
            customer_since=dt.date(2023, 6, 1),
        ),
        "account": Account(
            original_limit_minor=1_000_000,
            current_limit_minor=0,
            status=AccountStatus.FROZEN,
            opened_on=dt.date(2023, 6, 1),
        ),
        "requested_limit_minor": 1_000_000,
        "accepted_document_types": (
            DocumentType.BANK_STATEMENT,
            DocumentType.INCOME_PROOF,
            DocumentType.CREDIT_REPORT,
        ),
    }
    data.update(overrides)
    return AssessmentInput(**data)


# --------------------------------------------------------------------------------------------
# Population profiles


@dataclass
class _Spec:
    opened_months_ago: int
    original_limit: int
    requested_share: int  # percent of the original limit requested
    late: dict[int, int]  # bill index (0 = latest due) -> days past due
    income: int | None  # monthly payroll; None for no payroll
    income_jitter_pct: int
    skip_pay_month: bool  # one month without salary (irregular work)
    declared_income: int | None
    employer_index: int
    employment_doc: bool
    spend_pct: int  # monthly spending, percent of income
    debts: list[int] = field(default_factory=list)  # monthly repayments to other lenders
    statement_months: int = 4
    small_loans_90d: int = 0
    older_applications: int = 0
    other_products: int | None = 2
    red_flags: tuple[RedFlag, ...] = ()


def _pick_late(rng: random.Random, indices: Sequence[int], dpd_range: tuple[int, int]) -> dict[int, int]:
    return {i: rng.randint(*dpd_range) for i in indices}


def _spec(population: Population, rng: random.Random) -> _Spec:
    r = rng
    if population is Population.STEADY:
        income = r.randint(9_000, 20_000) * YUAN
        return _Spec(
            opened_months_ago=r.randint(24, 60),
            original_limit=r.randrange(5_000, 18_001, 500) * YUAN,
            requested_share=100,
            late=_pick_late(r, [r.randint(4, 9)], (1, 7)),
            income=income,
            income_jitter_pct=3,
            skip_pay_month=False,
            declared_income=income // 100 * 100,
            employer_index=r.randrange(len(EMPLOYERS)),
            employment_doc=True,
            spend_pct=r.randint(30, 45),
            debts=[income * r.randint(0, 6) // 100] if r.random() < 0.5 else [],
            statement_months=r.randint(3, 5),
            older_applications=r.randint(0, 1),
            other_products=r.randint(1, 3),
        )
    if population is Population.RECOVERED:
        income = r.randint(5_000, 11_000) * YUAN
        count = r.randint(2, 3)
        return _Spec(
            opened_months_ago=r.randint(18, 48),
            original_limit=r.randrange(5_000, 15_001, 500) * YUAN,
            requested_share=r.choice((100, 100, 80)),
            late=_pick_late(r, r.sample(range(7, 12), count), (10, 45)),
            income=income,
            income_jitter_pct=8,
            skip_pay_month=False,
            declared_income=income // 100 * 100,
            employer_index=r.randrange(len(EMPLOYERS)),
            employment_doc=r.random() < 0.8,
            spend_pct=r.randint(50, 75),
            debts=[income * r.randint(3, 10) // 100],
            statement_months=r.randint(3, 5),
            small_loans_90d=r.randint(0, 1),
            older_applications=r.randint(0, 2),
            other_products=r.randint(1, 4),
        )
    if population is Population.CHRONIC_LATE:
        income = r.randint(4_000, 8_000) * YUAN
        count = r.randint(5, 9)
        return _Spec(
            opened_months_ago=r.randint(14, 40),
            original_limit=r.randrange(3_000, 10_001, 500) * YUAN,
            requested_share=100,
            late=_pick_late(r, [1, *r.sample(range(2, 12), count - 1)], (5, 75)),
            income=income,
            income_jitter_pct=25,
            skip_pay_month=r.random() < 0.3,
            declared_income=income,
            employer_index=r.randrange(len(EMPLOYERS)),
            employment_doc=r.random() < 0.5,
            spend_pct=r.randint(80, 110),
            debts=[income * r.randint(10, 25) // 100],
            statement_months=r.randint(3, 5),
            small_loans_90d=r.randint(1, 3),
            older_applications=r.randint(1, 4),
            other_products=r.randint(4, 8),
        )
    if population is Population.MULTI_LENDER:
        income = r.randint(5_000, 12_000) * YUAN
        count = r.randint(2, 4)
        lenders = r.randint(3, 5)
        return _Spec(
            opened_months_ago=r.randint(12, 36),
            original_limit=r.randrange(3_000, 12_001, 500) * YUAN,
            requested_share=100,
            late=_pick_late(r, r.sample(range(0, 10), count), (3, 40)),
            income=income,
            income_jitter_pct=10,
            skip_pay_month=False,
            declared_income=income,
            employer_index=r.randrange(len(EMPLOYERS)),
            employment_doc=r.random() < 0.7,
            spend_pct=r.randint(50, 80),
            debts=[income * r.randint(8, 15) // 100 for _ in range(lenders)],
            statement_months=r.randint(3, 5),
            small_loans_90d=r.randint(4, 9),
            older_applications=r.randint(2, 6),
            other_products=r.randint(4, 9),
        )
    if population is Population.THIN_FILE:
        income = r.randint(5_000, 9_000) * YUAN
        opened = r.randint(4, 8)
        return _Spec(
            opened_months_ago=opened,
            original_limit=r.randrange(2_000, 6_001, 500) * YUAN,
            requested_share=100,
            late=_pick_late(r, [r.randint(1, max(1, opened - 2))], (1, 10)),
            income=income,
            income_jitter_pct=5,
            skip_pay_month=False,
            declared_income=None if r.random() < 0.5 else income,
            employer_index=r.randrange(len(EMPLOYERS)),
            employment_doc=False,
            spend_pct=r.randint(45, 70),
            debts=[],
            statement_months=3,
            other_products=None,
        )
    # HIGH_SPENDER
    income = r.randint(8_000, 16_000) * YUAN
    return _Spec(
        opened_months_ago=r.randint(24, 60),
        original_limit=r.randrange(6_000, 18_001, 500) * YUAN,
        requested_share=100,
        late=_pick_late(r, [r.randint(2, 5)], (3, 15)),
        income=income,
        income_jitter_pct=5,
        skip_pay_month=False,
        declared_income=income,
        employer_index=r.randrange(len(EMPLOYERS)),
        employment_doc=True,
        spend_pct=r.randint(100, 140),
        debts=[income * r.randint(12, 20) // 100, income * r.randint(8, 15) // 100],
        statement_months=r.randint(3, 5),
        small_loans_90d=r.randint(0, 2),
        older_applications=r.randint(0, 3),
        other_products=r.randint(4, 6),
    )


def _bills(
    rng: random.Random, as_of: dt.date, opened_on: dt.date, limit: int, late: dict[int, int]
) -> tuple[Bill, ...]:
    """Monthly bills due on the account's billing day (the day it was opened), the latest the
    last one due before as_of, at most the last 30, all repaid."""
    bills: list[Bill] = []
    for index, due in enumerate(reversed(billing_dates(opened_on.day, as_of, 30))):
        if due <= opened_on:
            break
        amount = rng.randint(limit // 20, limit // 3) // 100 * 100 + 100
        dpd = min(late.get(index, 0), (as_of - due).days)
        paid_on = due + dt.timedelta(days=dpd) if dpd else due - dt.timedelta(rng.randint(0, 5))
        bills.append(
            Bill(
                due_date=due,
                amount_due_minor=amount,
                paid_minor=amount,
                paid_on=paid_on,
                days_past_due=dpd,
            )
        )
    return tuple(reversed(bills))


def _statement(rng: random.Random, as_of: dt.date, spec: _Spec) -> tuple[StatementTransaction, ...]:
    start = full_months_before(as_of, spec.statement_months)[0]
    end = as_of - dt.timedelta(days=1)
    payer = EMPLOYERS[spec.employer_index][0]
    pay_label = "SALARY" if payer.isascii() else rng.choice(("代发工资", "工资"))
    raw: list[tuple[dt.date, int, str, str | None]] = [(start, rng.randint(1, 99), "利息", "银行")]
    month = start
    skip = rng.randrange(spec.statement_months) if spec.skip_pay_month else -1
    index = 0
    while month <= end:
        last_day = calendar_month(month).end
        if spec.income is not None and index != skip:
            jitter = spec.income * spec.income_jitter_pct // 100
            pay_day = month.replace(day=rng.randint(8, 12))
            if pay_day <= end:
                amount = spec.income + rng.randint(-jitter, jitter)
                raw.append((pay_day, amount, pay_label, payer))
        income = spec.income or 500_000
        spend_total = income * spec.spend_pct // 100
        pieces = rng.randint(8, 16)
        for _ in range(pieces):
            day = month + dt.timedelta(days=rng.randint(0, (last_day - month).days))
            if day > end:
                continue
            description, shop = rng.choice(SHOPS)
            amount = spend_total // pieces + rng.randint(-2_000, 2_000)
            raw.append((day, -max(amount, 100), description, shop))
        for debt in spec.debts:
            if debt:
                day = month.replace(day=rng.randint(18, 25))
                if day <= end:
                    raw.append((day, -debt, rng.choice(DEBT_LABELS), None))
        if rng.random() < 0.3:  # an occasional transfer from a friend: not payroll
            day = month + dt.timedelta(days=rng.randint(0, 27))
            if day <= end:
                raw.append((day, rng.randint(50, 500) * YUAN, "转账", "张伟"))
        month = add_months(month, 1)
        index += 1
    raw.append((end, rng.randint(1, 99), "利息", "银行"))
    raw.sort(key=lambda r: (r[0], r[1], r[2]))
    balance = rng.randint(5_000, 50_000) * YUAN
    out: list[StatementTransaction] = []
    for date, amount, description, counterparty in raw:
        balance += amount
        out.append(txn(date, amount, description, counterparty, balance))
    return tuple(out)


def _applications(rng: random.Random, as_of: dt.date, spec: _Spec) -> tuple[LoanApplication, ...]:
    apps: list[LoanApplication] = []
    for _ in range(spec.small_loans_90d):
        apps.append(
            LoanApplication(
                applied_on=as_of - dt.timedelta(days=rng.randint(1, 90)),  # core.months.last_days
                lender=rng.choice(LENDERS),
                amount_minor=rng.randint(5, 50) * 100 * YUAN,
                small_loan=True,
            )
        )
    for _ in range(spec.older_applications):
        apps.append(
            LoanApplication(
                applied_on=as_of - dt.timedelta(days=rng.randint(91, 700)),
                lender=rng.choice(LENDERS),
                amount_minor=rng.randint(5, 300) * 100 * YUAN,
                small_loan=rng.random() < 0.5,
            )
        )
    return tuple(sorted(apps, key=lambda a: (a.applied_on, a.lender, a.amount_minor)))


def make_input(population: Population, rng: random.Random, *, as_of: dt.date = AS_OF) -> AssessmentInput:
    spec = _spec(population, rng)
    opened_on = add_months(as_of, -spec.opened_months_ago).replace(day=rng.randint(1, MAX_BILLING_DAY))
    original = spec.original_limit
    requested = max(original * spec.requested_share // 100 // 10_000 * 10_000, 10_000)
    documents = [DocumentType.BANK_STATEMENT, DocumentType.INCOME_PROOF, DocumentType.CREDIT_REPORT]
    if spec.employment_doc:
        documents.append(DocumentType.EMPLOYMENT_PROOF)
    return AssessmentInput(
        as_of=as_of,
        customer=Customer(
            declared_monthly_income_minor=spec.declared_income,
            employer_name=EMPLOYERS[spec.employer_index][1],
            customer_since=opened_on,
        ),
        account=Account(
            original_limit_minor=original,
            current_limit_minor=0 if rng.random() < 0.7 else original // 2 // 10_000 * 10_000,
            status=AccountStatus.FROZEN,
            opened_on=opened_on,
        ),
        requested_limit_minor=requested,
        bills=_bills(rng, as_of, opened_on, original, spec.late),
        loan_applications=_applications(rng, as_of, spec),
        other_credit_products=spec.other_products,
        transactions=_statement(rng, as_of, spec),
        accepted_document_types=tuple(documents),
        red_flags=spec.red_flags,
        employment_document_accepted=spec.employment_doc,
    )


def make_profile(population: Population, seed: int, *, as_of: dt.date = AS_OF) -> AssessmentInput:
    return make_input(population, random.Random(f"{population.value}:{seed}"), as_of=as_of)


# Share of each population in a mixed portfolio of appeals (sums to 100).
DEFAULT_MIX: dict[Population, int] = {
    Population.STEADY: 30,
    Population.RECOVERED: 20,
    Population.CHRONIC_LATE: 15,
    Population.MULTI_LENDER: 10,
    Population.THIN_FILE: 15,
    Population.HIGH_SPENDER: 10,
}


def make_population(
    n: int, seed: int, mix: dict[Population, int] | None = None
) -> list[tuple[Population, AssessmentInput]]:
    weights = mix or DEFAULT_MIX
    rng = random.Random(seed)
    populations = list(weights)
    chosen = rng.choices(populations, weights=[weights[p] for p in populations], k=n)
    return [(p, make_input(p, rng)) for p in chosen]
