"""A deterministic generator of realistic ledger populations, for demos, load tests and benches.

`generate_population(n, seed, today=...)` gives the same customers, accounts, bills, limit
events, loan applications and bank statements for the same arguments. Customer ids are
`g-{seed}-{n:05d}` (accounts `ga-{seed}-{n:05d}`), numbered from 1. Each customer belongs to one
population, whose shape mirrors the profiles the scoring policy was tuned on
(tests/core/policy/factories.py), so that appeals get the intended outcome:

- steady: long history, one short delay 4-9 months ago, good stable payroll -> AUTO_APPROVE
  (one in ten has an ACTIVE account: nothing to appeal)
- recovered: two or three real delays 7-11 months ago, clean since -> MANUAL_REVIEW
- chronic_late: late most months, recently too, stretched -> AUTO_DECLINE; three in ten still
  owe an overdue bill -> INELIGIBLE (the amount owed is shown)
- multi_lender: many small-loan applications at other lenders in the last 90 days, repayments
  to several lenders -> AUTO_DECLINE
- thin_file: an account a few months old, few bills -> MANUAL_REVIEW
- high_spender: repays fine but spends more than earns, carries card debt -> MANUAL_REVIEW

The expected outcome assumes the customer supplies the documents the checklist asks for (and,
where the story says so, proof of employment). Restricted accounts are FROZEN (limit 0) or
REDUCED (half the original), each with the FREEZE or REDUCE limit event that caused it. Locales
are a mix of zh-CN and en; a customer's statement is in their language.

Every customer also carries a hidden outcome, `bad`: would they default (90+ days past due)
within 12 months after `today` if the limit were restored. It is drawn as a Bernoulli whose
probability is a logistic function of the customer's latent risk: the drivers their story gives
them (how many delays, how long the worst, how recent the latest, a bill still owed, small loans
in the last 90 days and repayments to several lenders, debt service and spending against income,
how irregular the pay, how young the account, how low the income), a per-population intercept,
and noise (`_default_probability`). So it goes with what the policy sees but is not a function of
it. Calibrated bad rates (the mean probability, measured on 20,000 customers per population):

- steady ~3 %, recovered ~10 %, thin_file ~12.5 %, high_spender ~15 %, multi_lender ~30 %,
  chronic_late ~35 %.

The label is drawn from its own random stream (`outcome:{seed}:{number}`), so adding it changed no
other generated field; it is never written to the ledger (the service must not see it), only to
`GeneratedCustomer.bad` and the manifest's `bad` column, for backtests (core/policy/sample.py).

`seed_population(session, ...)` writes the generated rows with bulk inserts and skips customers
already in the ledger, so seeding again is harmless.
"""

from __future__ import annotations

import csv
import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Table, insert, select
from sqlmodel import Session

from core.db.ledger_tables import (
    AccountStatus,
    Bill,
    CreditAccount,
    Customer,
    LimitEvent,
    LimitEventKind,
    LoanApplication,
)
from core.ledger.exporter import format_cell
from core.ledger.statements import YUAN, StatementProfile, statement_csv
from core.months import MAX_BILLING_DAY, add_months, billing_dates


class Population(StrEnum):
    STEADY = "steady"
    RECOVERED = "recovered"
    CHRONIC_LATE = "chronic_late"
    MULTI_LENDER = "multi_lender"
    THIN_FILE = "thin_file"
    HIGH_SPENDER = "high_spender"


class Expected(StrEnum):
    """What an appeal by this customer should come to."""

    AUTO_APPROVE = "AUTO_APPROVE"
    MANUAL_REVIEW = "MANUAL_REVIEW"
    AUTO_DECLINE = "AUTO_DECLINE"
    INELIGIBLE = "INELIGIBLE"  # an overdue bill is still unpaid
    NOTHING_TO_APPEAL = "NOTHING_TO_APPEAL"  # the account is ACTIVE


# Share of each population (sums to 100): the mix the policy's outcome shares were measured on.
DEFAULT_MIX: Final[dict[Population, int]] = {
    Population.STEADY: 30,
    Population.RECOVERED: 20,
    Population.CHRONIC_LATE: 15,
    Population.MULTI_LENDER: 10,
    Population.THIN_FILE: 15,
    Population.HIGH_SPENDER: 10,
}

ZH_SHARE: Final = 0.7
# (name on the payroll credit, name the customer declares)
EMPLOYERS_ZH: Final = (
    ("上海星辰科技有限公司", "星辰科技"),
    ("杭州云帆网络科技有限公司", "杭州云帆网络科技有限公司"),
    ("深圳华晟电子股份有限公司", "华晟电子"),
    ("北京明远教育咨询有限公司", "北京明远教育"),
    ("SUZHOU BRIGHT LOGISTICS CO., LTD.", "Suzhou Bright Logistics Co., Ltd"),
)
EMPLOYERS_EN: Final = (
    ("SUZHOU BRIGHT LOGISTICS CO., LTD.", "Suzhou Bright Logistics Co., Ltd"),
    ("SHANGHAI HARBOUR TRADING CO., LTD.", "Shanghai Harbour Trading"),
    ("NINGBO BLUEWAVE SOFTWARE LTD", "Bluewave Software"),
    ("GUANGZHOU PEARL HOTELS GROUP LIMITED", "Pearl Hotels Group"),
)
LENDERS: Final = ("借呗", "微粒贷", "京东金条", "360借条", "安逸花", "招联好期贷", "分期乐")
SURNAMES_ZH: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗"
GIVEN_ZH: Final = (
    "伟", "芳", "娜", "敏", "静", "磊", "洋", "勇", "艳", "杰",
    "娟", "涛", "明", "超", "秀英", "建华", "晓东", "雪", "婷", "浩然",
)  # fmt: skip
SURNAMES_EN: Final = (
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Lin", "Guo",
)  # fmt: skip
GIVEN_EN: Final = (
    "Emma", "Lucas", "Mia", "Oliver", "Sophia", "Leo", "Grace", "Daniel", "Chloe", "Ethan",
    "Wei", "Fang", "Jun", "Lei", "Yan", "Hao",
)  # fmt: skip


@dataclass(frozen=True)
class _Spec:
    opened_months_ago: int
    original_limit: int
    requested_share: int  # percent of the original limit the customer asks back
    late: dict[int, int]  # bill index (0 = latest due) -> days past due
    income: int
    income_jitter_pct: int
    skip_pay_month: bool
    declared_income: int | None
    employment_proof: bool  # can show an employment certificate
    spend_pct: int
    debts: tuple[int, ...] = ()
    small_loans_90d: int = 0
    older_applications: int = 0
    still_owing: bool = False
    active: bool = False


def _pick_late(rng: random.Random, indices: Sequence[int], dpd: tuple[int, int]) -> dict[int, int]:
    return {i: rng.randint(*dpd) for i in indices}


def _spec(population: Population, r: random.Random) -> _Spec:
    """The population's shape, as in tests/core/policy/factories.py."""
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
            employment_proof=True,
            spend_pct=r.randint(30, 45),
            debts=(income * r.randint(0, 6) // 100,) if r.random() < 0.5 else (),
            older_applications=r.randint(0, 1),
            active=r.random() < 0.1,
        )
    if population is Population.RECOVERED:
        income = r.randint(5_000, 11_000) * YUAN
        return _Spec(
            opened_months_ago=r.randint(18, 48),
            original_limit=r.randrange(5_000, 15_001, 500) * YUAN,
            requested_share=r.choice((100, 100, 80)),
            late=_pick_late(r, r.sample(range(7, 12), r.randint(2, 3)), (10, 45)),
            income=income,
            income_jitter_pct=8,
            skip_pay_month=False,
            declared_income=income // 100 * 100,
            employment_proof=r.random() < 0.8,
            spend_pct=r.randint(50, 75),
            debts=(income * r.randint(3, 10) // 100,),
            small_loans_90d=r.randint(0, 1),
            older_applications=r.randint(0, 2),
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
            employment_proof=r.random() < 0.5,
            spend_pct=r.randint(80, 110),
            debts=(income * r.randint(10, 25) // 100,),
            small_loans_90d=r.randint(1, 3),
            older_applications=r.randint(1, 4),
            still_owing=r.random() < 0.3,
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
            employment_proof=r.random() < 0.7,
            spend_pct=r.randint(50, 80),
            debts=tuple(income * r.randint(8, 15) // 100 for _ in range(lenders)),
            small_loans_90d=r.randint(4, 9),
            older_applications=r.randint(2, 6),
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
            employment_proof=False,
            spend_pct=r.randint(45, 70),
        )
    income = r.randint(8_000, 16_000) * YUAN  # HIGH_SPENDER
    return _Spec(
        opened_months_ago=r.randint(24, 60),
        original_limit=r.randrange(6_000, 18_001, 500) * YUAN,
        requested_share=100,
        late=_pick_late(r, [r.randint(2, 5)], (3, 15)),
        income=income,
        income_jitter_pct=5,
        skip_pay_month=False,
        declared_income=income,
        employment_proof=True,
        spend_pct=r.randint(100, 140),
        debts=(income * r.randint(12, 20) // 100, income * r.randint(8, 15) // 100),
        small_loans_90d=r.randint(0, 2),
        older_applications=r.randint(0, 3),
    )


# The hidden outcome: logit P(bad) = intercept + latent drivers + noise (see the module docstring).
# The intercepts calibrate each population's bad rate to the docstring's figure.
BAD_INTERCEPT: Final[dict[Population, float]] = {
    Population.STEADY: -4.37,
    Population.RECOVERED: -5.05,
    Population.CHRONIC_LATE: -9.21,
    Population.MULTI_LENDER: -7.76,
    Population.THIN_FILE: -4.21,
    Population.HIGH_SPENDER: -5.49,
}
BAD_NOISE_SD: Final = 0.8  # the part of the risk no data shows (a job loss, an illness...)
REFERENCE_INCOME: Final = 8_000 * YUAN


def _latent_risk(spec: _Spec) -> float:
    """The story's risk drivers on the logit scale, before the intercept and noise."""
    worst = max(spec.late.values(), default=0)
    latest = min(spec.late, default=24)  # bill index of the latest delay (0 = latest bill)
    risk = 0.35 * len(spec.late)  # delinquency depth: how many delays...
    risk += 0.025 * min(worst, 90)  # ...and how long the worst
    risk += 1.6 * math.exp(-latest / 3)  # recency
    risk += 1.0 * spec.still_owing
    risk += 0.22 * spec.small_loans_90d  # loan stacking
    risk += 0.25 * max(len(spec.debts) - 1, 0)
    risk += 2.5 * sum(spec.debts) / spec.income  # affordability: debt service...
    risk += 2.0 * max(spec.spend_pct - 60, 0) / 100  # ...and spending beyond 60 % of pay
    risk += 0.04 * spec.income_jitter_pct + 0.6 * spec.skip_pay_month  # income stability
    risk += 0.6 * max(12 - spec.opened_months_ago, 0) / 8  # a thin file
    risk -= 0.4 * math.log(spec.income / REFERENCE_INCOME)  # income level
    return risk


def _default_probability(population: Population, spec: _Spec, rng: random.Random) -> float:
    logit = BAD_INTERCEPT[population] + _latent_risk(spec) + rng.gauss(0.0, BAD_NOISE_SD)
    return 1.0 / (1.0 + math.exp(-logit))


def _draw_bad(seed: int, number: int, population: Population, spec: _Spec) -> bool:
    # A stream of its own: drawing the outcome consumes nothing from the customer's generator.
    rng = random.Random(f"outcome:{seed}:{number}")
    return rng.random() < _default_probability(population, spec, rng)


_STORIES: Final[dict[Population, str]] = {
    Population.STEADY: "steady payer: one short delay months ago, good stable payroll",
    Population.RECOVERED: "recovered late payer: real delays 7-11 months ago, clean since",
    Population.CHRONIC_LATE: "chronic late payer: late most months, recently too",
    Population.MULTI_LENDER: "multi-lender: many small-loan applications elsewhere in the last 90 days",
    Population.THIN_FILE: "thin file: a new account with few bills",
    Population.HIGH_SPENDER: "high spender: repays, but spends more than earns and carries card debt",
}
_EXPECTED: Final[dict[Population, Expected]] = {
    Population.STEADY: Expected.AUTO_APPROVE,
    Population.RECOVERED: Expected.MANUAL_REVIEW,
    Population.CHRONIC_LATE: Expected.AUTO_DECLINE,
    Population.MULTI_LENDER: Expected.AUTO_DECLINE,
    Population.THIN_FILE: Expected.MANUAL_REVIEW,
    Population.HIGH_SPENDER: Expected.MANUAL_REVIEW,
}


# --------------------------------------------------------------------------------------------
# One generated customer


@dataclass(frozen=True)
class GeneratedCustomer:
    number: int
    population: Population
    expected: Expected
    story: str
    requested_limit_minor: int  # what the customer would ask back in an appeal
    employment_proof: bool  # the story includes an employment certificate
    customer: dict[str, Any]  # column -> value, as the tables take them
    account: dict[str, Any]
    bills: tuple[dict[str, Any], ...]
    limit_events: tuple[dict[str, Any], ...]
    loan_applications: tuple[dict[str, Any], ...]
    statement: StatementProfile = field(repr=False)
    bad: bool = field(repr=False)  # the hidden outcome; never written to the ledger

    @property
    def customer_id(self) -> str:
        return str(self.customer["id"])

    @property
    def account_id(self) -> str:
        return str(self.account["id"])

    @property
    def locale(self) -> str:
        return str(self.customer["locale"])

    def statement_csv(self) -> bytes:
        return statement_csv(self.statement)

    def manifest_row(self) -> dict[str, Any]:
        return {
            "customer_id": self.customer_id,
            "account_id": self.account_id,
            "population": self.population.value,
            "locale": self.locale,
            "account_status": self.account["status"].value,
            "expected": self.expected.value,
            "requested_limit_minor": self.requested_limit_minor,
            "employment_proof": self.employment_proof,
            "story": self.story,
            "bad": self.bad,
        }


def customer_id(seed: int, number: int) -> str:
    return f"g-{seed}-{number:05d}"


def account_id(seed: int, number: int) -> str:
    return f"ga-{seed}-{number:05d}"


def _at(day: date, rng: random.Random, earliest_hour: int = 1, latest_hour: int = 14) -> datetime:
    """A time on `day` in UTC (09:00-22:00 in China)."""
    return datetime.combine(day, time(rng.randint(earliest_hour, latest_hour), rng.randint(0, 59)), UTC)


def _allocate(n: int, seed: int, mix: Mapping[Population, int]) -> list[Population]:
    """Exactly the mix's shares (largest remainder), in a seeded random order."""
    total = sum(mix.values())
    quotas = {p: n * w // total for p, w in mix.items()}
    remainders = sorted(mix, key=lambda p: (-(n * mix[p] % total), list(mix).index(p)))
    for p in remainders[: n - sum(quotas.values())]:
        quotas[p] += 1
    order = [p for p in mix for _ in range(quotas[p])]
    random.Random(f"population-order:{seed}").shuffle(order)
    return order


def generate_population(
    n: int, seed: int, *, today: date, mix: Mapping[Population, int] | None = None
) -> list[GeneratedCustomer]:
    """`n` customers; the same arguments always give the same customers."""
    weights = dict(mix or DEFAULT_MIX)
    if n < 0 or not weights or any(w < 0 for w in weights.values()) or sum(weights.values()) == 0:
        raise ValueError("n must be >= 0 and the mix's weights non-negative, not all zero")
    return [
        generate_customer(seed, number, population, today=today)
        for number, population in enumerate(_allocate(n, seed, weights), start=1)
    ]


def generate_customer(seed: int, number: int, population: Population, *, today: date) -> GeneratedCustomer:
    # One generator per customer: a customer does not change when others are added or removed.
    rng = random.Random(f"customer:{seed}:{number}")
    spec = _spec(population, rng)
    cid, aid = customer_id(seed, number), account_id(seed, number)
    zh = rng.random() < ZH_SHARE
    locale = "zh-CN" if zh else "en"
    if zh:
        name = rng.choice(SURNAMES_ZH) + rng.choice(GIVEN_ZH)
        payroll_payer, employer = rng.choice(EMPLOYERS_ZH)
    else:
        name = f"{rng.choice(GIVEN_EN)} {rng.choice(SURNAMES_EN)}"
        payroll_payer, employer = rng.choice(EMPLOYERS_EN)

    opened_on = add_months(today, -spec.opened_months_ago).replace(day=rng.randint(1, MAX_BILLING_DAY))
    original = spec.original_limit
    requested = max(original * spec.requested_share // 100 // 10_000 * 10_000, 10_000)
    if spec.active:
        status, current = AccountStatus.ACTIVE, original
    elif rng.random() < 0.7:
        status, current = AccountStatus.FROZEN, 0
    else:
        status, current = AccountStatus.REDUCED, max(original // 2 // 10_000 * 10_000, 10_000)

    bills, unpaid_due = _bills(rng, today, opened_on, spec, aid)
    loans = _applications(rng, today, spec, cid)
    events = (
        ()
        if spec.active
        else (_limit_event(rng, today, spec, population, aid, original, current, bills, loans),)
    )

    if spec.active:
        expected = Expected.NOTHING_TO_APPEAL
    elif unpaid_due is not None:
        expected = Expected.INELIGIBLE
    else:
        expected = _EXPECTED[population]
    story = _STORIES[population]
    if spec.active:
        story += "; account ACTIVE, nothing to appeal"
    elif unpaid_due is not None:
        story += f"; the bill due {unpaid_due.isoformat()} is still unpaid"

    statement = StatementProfile(
        rng_key=f"statement:{seed}:{number}",
        today=today,
        locale=locale,
        holder=name,
        account_number=f"6222 **** **** {rng.randint(0, 9999):04d}",
        payroll_payer=payroll_payer,
        monthly_income_minor=spec.income,
        income_jitter_pct=spec.income_jitter_pct,
        skip_pay_month=spec.skip_pay_month,
        spend_pct=spec.spend_pct,
        debts_minor=spec.debts,
    )
    customer = {
        "id": cid,
        "name": name,
        "locale": locale,
        "email": f"{cid}@example.test",
        "phone": f"+86 1{rng.choice('3456789')}{rng.randint(0, 999_999_999):09d}",
        "declared_monthly_income_minor": spec.declared_income,
        "employer": employer,
        "created_at": _at(opened_on, rng),
    }
    account = {
        "id": aid,
        "customer_id": cid,
        "status": status,
        "currency": "CNY",
        "original_limit_minor": original,
        "current_limit_minor": current,
        "opened_on": opened_on,
    }
    return GeneratedCustomer(
        number=number,
        population=population,
        expected=expected,
        story=story,
        requested_limit_minor=requested,
        employment_proof=spec.employment_proof,
        customer=customer,
        account=account,
        bills=bills,
        limit_events=events,
        loan_applications=loans,
        statement=statement,
        bad=_draw_bad(seed, number, population, spec),
    )


def _bills(
    rng: random.Random, today: date, opened_on: date, spec: _Spec, aid: str
) -> tuple[tuple[dict[str, Any], ...], date | None]:
    """Monthly bills on the account's billing day (the day it was opened, 1-28), 12-24 months of
    them (fewer for a young account), the latest the last one due before today
    (`core.months.billing_dates`); all repaid, late as the story says, except the one a debtor
    still owes."""
    keep = rng.randint(12, 24)
    rows: list[dict[str, Any]] = []
    unpaid_due: date | None = None
    for index, due in enumerate(reversed(billing_dates(opened_on.day, today, keep))):
        if due <= opened_on:
            break
        amount = rng.randint(spec.original_limit // 20, spec.original_limit // 3) // 100 * 100 + 100
        if spec.still_owing and index == 1:
            paid = rng.choice((0, amount // 2 // 100 * 100))
            paid_at = _at(due + timedelta(days=rng.randint(1, 10)), rng) if paid else None
            rows.append(_bill(aid, due, amount, paid, paid_at, (today - due).days))
            unpaid_due = due
            continue
        dpd = min(spec.late.get(index, 0), (today - due).days)
        paid_on = due + timedelta(days=dpd) if dpd else due - timedelta(days=rng.randint(0, 5))
        paid_at = _at(paid_on, rng)
        if paid_on >= today:
            paid_at = datetime.combine(paid_on, time(0, 5), UTC)
        rows.append(_bill(aid, due, amount, amount, paid_at, dpd))
    rows.reverse()
    return tuple(rows), unpaid_due


def _bill(aid: str, due: date, amount: int, paid: int, paid_at: datetime | None, dpd: int) -> dict[str, Any]:
    return {
        "account_id": aid,
        "due_date": due,
        "amount_due_minor": amount,
        "paid_minor": paid,
        "paid_at": paid_at,
        "days_past_due": dpd,
    }


def _applications(rng: random.Random, today: date, spec: _Spec, cid: str) -> tuple[dict[str, Any], ...]:
    apps: dict[tuple[Any, ...], dict[str, Any]] = {}

    def add(applied_on: date, amount: int, small: bool) -> None:
        row = {
            "customer_id": cid,
            "applied_on": applied_on,
            "lender": rng.choice(LENDERS),
            "amount_minor": amount,
            "small_loan": small,
        }
        apps.setdefault((row["applied_on"], row["lender"], row["amount_minor"], small), row)

    for _ in range(spec.small_loans_90d):
        add(today - timedelta(days=rng.randint(1, 89)), rng.randint(5, 50) * 100 * YUAN, True)
    for _ in range(spec.older_applications):
        add(
            today - timedelta(days=rng.randint(91, 700)), rng.randint(5, 300) * 100 * YUAN, rng.random() < 0.5
        )
    return tuple(sorted(apps.values(), key=lambda a: (a["applied_on"], a["lender"], a["amount_minor"])))


def _limit_event(
    rng: random.Random,
    today: date,
    spec: _Spec,
    population: Population,
    aid: str,
    original: int,
    current: int,
    bills: Sequence[Mapping[str, Any]],
    loans: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The FREEZE or REDUCE that the appeal is about, dated by what triggered it."""
    late = [b for b in bills if b["days_past_due"] > 0]
    source = "risk-engine"
    if spec.still_owing:
        trigger = next(b for b in bills if b["paid_minor"] < b["amount_due_minor"])
        when = trigger["due_date"] + timedelta(days=rng.randint(3, 7))
        reason, source = "overdue_balance", "collections"
    elif population is Population.MULTI_LENDER:
        small = [a["applied_on"] for a in loans if a["small_loan"]]
        when = max(small) + timedelta(days=rng.randint(1, 3))
        reason = "multi_lending"
    else:
        last = late[-1]
        when = last["due_date"] + timedelta(days=max(1, min(last["days_past_due"], rng.randint(3, 7))))
        reason = {
            Population.CHRONIC_LATE: "repeated_late_repayment",
            Population.HIGH_SPENDER: "high_credit_utilisation",
        }.get(population, "late_repayment")
    when = min(when, today - timedelta(days=1))
    return {
        "account_id": aid,
        "kind": LimitEventKind.FREEZE if current == 0 else LimitEventKind.REDUCE,
        "from_limit_minor": original,
        "to_limit_minor": current,
        "reason": reason,
        "source": source,
        "created_at": _at(when, rng, 0, 3),
        "appeal_id": None,
    }


# --------------------------------------------------------------------------------------------
# Writing a population


@dataclass(frozen=True)
class SeedOutcome:
    customers: list[GeneratedCustomer]  # everyone generated, including those already there
    inserted: int
    skipped: int  # already in the ledger: left as they are
    rows: dict[str, int]  # rows inserted per table


_CHUNK: Final = 5_000


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def insert_population(session: Session, customers: Sequence[GeneratedCustomer]) -> SeedOutcome:
    """Bulk-insert the customers not yet in the ledger (with all their rows), in the caller's
    transaction; customers already there are skipped whole."""
    connection = session.connection()
    customer_table = _table(Customer)
    ids = [c.customer_id for c in customers]
    existing: set[str] = set()
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        existing.update(
            connection.execute(select(customer_table.c.id).where(customer_table.c.id.in_(chunk))).scalars()
        )
    new = [c for c in customers if c.customer_id not in existing]
    tables: list[tuple[str, Table, list[dict[str, Any]]]] = [
        ("customers", customer_table, [c.customer for c in new]),
        ("credit_accounts", _table(CreditAccount), [c.account for c in new]),
        ("bills", _table(Bill), [b for c in new for b in c.bills]),
        ("limit_events", _table(LimitEvent), [e for c in new for e in c.limit_events]),
        ("loan_applications", _table(LoanApplication), [a for c in new for a in c.loan_applications]),
    ]
    rows: dict[str, int] = {}
    for name, table, values in tables:
        for start in range(0, len(values), _CHUNK):
            connection.execute(insert(table), values[start : start + _CHUNK])
        rows[name] = len(values)
    return SeedOutcome(list(customers), len(new), len(customers) - len(new), rows)


def seed_population(
    session: Session,
    n: int,
    seed: int,
    *,
    today: date,
    mix: Mapping[Population, int] | None = None,
) -> SeedOutcome:
    return insert_population(session, generate_population(n, seed, today=today, mix=mix))


MANIFEST_COLUMNS: Final = (
    "customer_id",
    "account_id",
    "population",
    "locale",
    "account_status",
    "expected",
    "requested_limit_minor",
    "employment_proof",
    "story",
    "bad",
)


def population_counts(customers: Sequence[GeneratedCustomer]) -> dict[Population, int]:
    counts = dict.fromkeys(Population, 0)
    for c in customers:
        counts[c.population] += 1
    return counts


def write_statements(customers: Sequence[GeneratedCustomer], folder: Path) -> int:
    """`{customer_id}-statement.csv` for every customer, and `manifest.csv` listing who is who."""
    folder.mkdir(parents=True, exist_ok=True)
    for c in customers:
        (folder / f"{c.customer_id}-statement.csv").write_bytes(c.statement_csv())
    write_manifest(customers, folder / "manifest.csv")
    return len(customers)


def write_manifest(customers: Sequence[GeneratedCustomer], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
        writer.writeheader()
        for c in customers:
            writer.writerow({k: format_cell(v) for k, v in c.manifest_row().items()})
