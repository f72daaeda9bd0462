"""Every scorecard characteristic, computed from real inputs, at the edges of its bins."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

import pytest

from core.policy import (
    AccountStatus,
    AssessmentInput,
    DocumentType,
    LoadedPolicy,
    LoanApplication,
    RedFlag,
    assess,
    compute_characteristics,
    document_requirements,
)
from core.policy.characteristics import (
    CharacteristicValue,
    covered_months,
    detect_payroll,
    names_match,
)
from core.policy.requirements import RequirementReason
from tests.core.policy.factories import AS_OF, ago, base_input, bill, payroll_statement, txn

DAY = dt.timedelta(days=1)
NO_INCOME_PROOF = (DocumentType.BANK_STATEMENT, DocumentType.CREDIT_REPORT)


def account(opened_on: dt.date) -> dict[str, object]:
    base = base_input().account
    return {"account": base.model_copy(update={"opened_on": opened_on})}


def app(days_ago: int, small: bool = True) -> LoanApplication:
    return LoanApplication(
        applied_on=AS_OF - dt.timedelta(days=days_ago),
        lender="微粒贷",
        amount_minor=300_000,
        small_loan=small,
    )


@dataclass(frozen=True)
class Case:
    characteristic: str
    inp: AssessmentInput
    value: CharacteristicValue
    points: int


CASES: list[Case] = []


def case(characteristic: str, value: CharacteristicValue, points: int, **fields: object) -> None:
    CASES.append(Case(characteristic, base_input(**fields), value, points))


# --- credit record ----------------------------------------------------------------------------
for dpd, pts in [(0, 60), (1, 45), (7, 45), (8, 30), (30, 30), (31, 10), (60, 10), (61, 0)]:
    case("worst_dpd_12m", dpd, pts, bills=(bill(ago(2), dpd),))
# the window (core.months.last_months): before as_of, at most 12 months old
case("worst_dpd_12m", 0, 60, bills=(bill(ago(12) - DAY, 40),))
case("worst_dpd_12m", 40, 10, bills=(bill(ago(12), 40),))
# still unpaid: the days since the due date count, not the ledger's stale figure
case("worst_dpd_12m", 20, 30, bills=(bill(AS_OF - 20 * DAY, 5, paid=0),))

for n, pts in [(0, 40), (1, 30), (2, 15), (3, 15), (4, 0)]:
    bills = tuple(bill(ago(k), 3 if k <= n else 0) for k in range(1, 7))
    case("late_bills_12m", n, pts, bills=bills)
case("late_bills_12m", 0, 40, bills=(bill(ago(12) - DAY, 3),))
case("late_bills_12m", 1, 30, bills=(bill(ago(12), 3),))

case("months_since_last_late", None, 40, bills=(bill(ago(1)),))  # never late: best
for due, months, pts in [
    (ago(3) + DAY, 2, 0),
    (ago(3), 3, 10),
    (ago(6) + DAY, 5, 10),
    (ago(6), 6, 25),
    (ago(12) + DAY, 11, 25),
    (ago(12), 12, 35),
    (ago(30), 30, 35),
]:
    case("months_since_last_late", months, pts, bills=(bill(due, 5),))

case("on_time_ratio_12m", None, 10, bills=())
for late, ratio, pts in [
    (0, "1.0", 30),
    (1, "0.95", 30),
    (2, "0.90", 20),
    (3, "0.85", 20),
    (4, "0.80", 10),
    (6, "0.70", 10),
    (7, "0.65", 0),
]:
    twenty = tuple(bill(AS_OF - 15 * (k + 1) * DAY, 2 if k < late else 0) for k in range(20))
    case("on_time_ratio_12m", Decimal(ratio), pts, bills=twenty)

for opened, months, pts in [
    (AS_OF, 0, 0),
    (ago(6) + DAY, 5, 0),
    (ago(6), 6, 10),
    (ago(12) + DAY, 11, 10),
    (ago(12), 12, 20),
    (ago(24) + DAY, 23, 20),
    (ago(24), 24, 30),
]:
    case("account_age_months", months, pts, **account(opened))

for n, pts in [(0, 0), (1, 0), (2, 5), (3, 5), (4, 10), (5, 10), (6, 15)]:
    case("active_months_6m", n, pts, bills=tuple(bill(ago(k)) for k in range(1, n + 1)))
# six monthly periods before as_of (core.months.monthly_periods); as_of itself is in none
case("active_months_6m", 0, 0, bills=(bill(ago(6) - DAY),))
case("active_months_6m", 1, 0, bills=(bill(ago(6)),))
case("active_months_6m", 0, 0, bills=(bill(AS_OF),))
case("active_months_6m", 1, 0, bills=(bill(AS_OF - DAY), bill(ago(1))))  # both in the latest period
case("active_months_6m", 0, 0, bills=(bill(ago(1), amount=0),))  # nothing due: not activity
case(
    "active_months_6m",
    2,
    5,
    transactions=(txn(ago(1), -5_000), txn(ago(2), -5_000), txn(ago(2) + DAY, 900)),
)

for products, pts in [(None, 5), (0, 5), (1, 15), (3, 15), (4, 5), (6, 5), (7, 0)]:
    case("other_credit_products", products, pts, other_credit_products=products)

# --- consumption behaviour ----------------------------------------------------------------------
for n, pts in [(0, 40), (1, 25), (2, 10), (3, 10), (4, 0)]:
    case("small_loan_apps_90d", n, pts, loan_applications=tuple(app(k) for k in range(1, n + 1)))
case("small_loan_apps_90d", 0, 40, loan_applications=(app(91),))  # [as_of - 90d, as_of - 1d]
case("small_loan_apps_90d", 1, 25, loan_applications=(app(90),))
case("small_loan_apps_90d", 0, 40, loan_applications=(app(0),))
case("small_loan_apps_90d", 0, 40, loan_applications=(app(3, small=False),))

for n, pts in [(0, 30), (1, 20), (2, 20), (3, 5), (5, 5), (6, 0)]:
    bills = tuple(bill(ago(1 + 3 * k), 4 if k < n else 0) for k in range(7))
    case("overdue_records_24m", n, pts, bills=bills)
case("overdue_records_24m", 0, 30, bills=(bill(ago(24) - DAY, 4),))
case("overdue_records_24m", 1, 20, bills=(bill(ago(24), 4),))

case("spending_to_income", None, 0)  # no statement: nothing to compare
for spending, ratio, pts in [
    (399_200, "0.499", 30),
    (400_000, "0.5", 20),
    (639_920, "0.7999", 20),
    (640_000, "0.8", 5),
    (799_920, "0.9999", 5),
    (800_000, "1.0", 0),
    (1_200_000, "1.5", 0),
]:
    case(
        "spending_to_income",
        Decimal(ratio),
        pts,
        transactions=payroll_statement(amounts=[800_000] * 3, spending=spending),
    )

# --- repayment ability --------------------------------------------------------------------------
for salary, pts in [
    (299_999, 0),
    (300_000, 15),
    (599_999, 15),
    (600_000, 30),
    (1_199_999, 30),
    (1_200_000, 40),
]:
    case(
        "net_monthly_income_minor",
        salary,
        pts,
        transactions=payroll_statement(amounts=[salary] * 3),
    )
# No payroll: the declared income counts only with an accepted income proof.
case("net_monthly_income_minor", 800_000, 30)
case("net_monthly_income_minor", None, 0, accepted_document_types=NO_INCOME_PROOF)
case(
    "net_monthly_income_minor",
    None,
    0,
    accepted_document_types=NO_INCOME_PROOF,
    transactions=payroll_statement(payer="张伟", description="转账"),  # a friend, not an employer
)

case("income_stability_cv", None, 0)
for pair, cv, pts in [
    ((800_000, 800_000), "0", 25),
    ((905_000, 1_095_000), "0.095", 25),
    ((900_000, 1_100_000), "0.1", 15),
    ((760_000, 1_240_000), "0.24", 15),
    ((750_000, 1_250_000), "0.25", 5),
    ((510_000, 1_490_000), "0.49", 5),
    ((500_000, 1_500_000), "0.5", 0),
]:
    case(
        "income_stability_cv",
        Decimal(cv),
        pts,
        transactions=payroll_statement(months=4, amounts=list(pair) * 2),
    )
# A month without salary is instability: totals 8000, 0, 8000, 8000 -> cv 0.5774.
case(
    "income_stability_cv",
    Decimal("0.5774"),
    0,
    transactions=payroll_statement(months=4, amounts=[800_000, 0, 800_000, 800_000], spending=100_000),
)

# requested 10,000 yuan -> minimum payment 1,000 yuan a month; income 10,000 yuan
case("debt_to_income", None, 0)  # declared income with proof, but no statement for debts
for debt, dti, pts in [
    (0, "0.1", 40),
    (99_000, "0.199", 40),
    (100_000, "0.2", 25),
    (249_000, "0.349", 25),
    (250_000, "0.35", 10),
    (399_000, "0.499", 10),
    (400_000, "0.5", 0),
]:
    case(
        "debt_to_income",
        Decimal(dti),
        pts,
        transactions=payroll_statement(amounts=[1_000_000] * 3, debt=debt),
    )

STATEMENT = payroll_statement(payer="上海星辰科技有限公司")
case("employment_verified", True, 25, transactions=STATEMENT, employment_document_accepted=True)
case("employment_verified", False, 0, transactions=STATEMENT, employment_document_accepted=False)
case(
    "employment_verified",
    False,
    0,
    transactions=STATEMENT,
    employment_document_accepted=True,
    customer=base_input().customer.model_copy(update={"employer_name": "华晟电子"}),
)
case(
    "employment_verified",
    False,
    0,
    transactions=STATEMENT,
    employment_document_accepted=True,
    customer=base_input().customer.model_copy(update={"employer_name": None}),
)


def _case_id(c: Case) -> str:
    return f"{c.characteristic}={c.value}"


@pytest.mark.parametrize("c", CASES, ids=[_case_id(c) for c in CASES])
def test_characteristic_value_and_points(policy: LoadedPolicy, c: Case) -> None:
    a = assess(policy, c.inp)
    (got,) = [x for x in a.contributions if x.characteristic == c.characteristic]
    assert got.value == c.value
    assert type(got.value) is type(c.value)
    assert got.points == c.points


def test_cases_reach_every_bin_of_every_characteristic(policy: LoadedPolicy) -> None:
    reached: dict[str, set[str]] = defaultdict(set)
    for c in CASES:
        a = assess(policy, c.inp)
        for x in a.contributions:
            if x.characteristic == c.characteristic:
                reached[x.characteristic].add(x.bin)
    for spec in policy.policy.scorecard.characteristics:
        expected = {b.display for b in spec.bins}
        if spec.missing_points is not None:
            expected.add("missing")
        assert reached[spec.name] == expected, spec.name


# --- gates and helpers ----------------------------------------------------------------------


def test_overdue_now(policy: LoadedPolicy) -> None:
    inp = base_input(
        bills=(
            bill(AS_OF, 0, amount=50_000, paid=0),  # due today: not overdue yet
            bill(AS_OF - DAY, 0, amount=70_000, paid=20_000),  # partly paid, due yesterday
            bill(ago(2), 10),  # late but repaid
        )
    )
    ch = compute_characteristics(inp, policy.policy)
    assert ch.overdue_bills_now == 1
    assert ch.overdue_amount_now_minor == 50_000
    assert ch.worst_dpd_12m == 10


def test_gate_counts(policy: LoadedPolicy) -> None:
    closed = base_input().account.model_copy(update={"status": AccountStatus.CLOSED})
    inp = base_input(
        account=closed,
        red_flags=(RedFlag(code="EDITED_PDF", explanation="producer changed after signing"),),
        accepted_document_types=(),
    )
    ch = compute_characteristics(inp, policy.policy)
    assert ch.account_closed is True
    assert ch.red_flag_count == 1
    assert ch.missing_documents == (DocumentType.BANK_STATEMENT,)
    assert ch.missing_document_count == 1


@pytest.mark.parametrize(
    ("first_day", "last_day", "expected"),
    [
        (1, 31, ("2025-03", "2025-04", "2025-05")),
        (6, 31, ("2025-03", "2025-04", "2025-05")),  # within 5 days of the month's start
        (7, 31, ("2025-04", "2025-05")),
        (1, 26, ("2025-03", "2025-04", "2025-05")),  # within 5 days of the month's end
        (1, 25, ("2025-03", "2025-04")),
    ],
)
def test_statement_coverage(first_day: int, last_day: int, expected: tuple[str, ...]) -> None:
    transactions = [
        txn(dt.date(2025, 3, first_day), -100),
        txn(dt.date(2025, 4, 15), -100),
        txn(dt.date(2025, 5, last_day), -100),
    ]
    assert covered_months(transactions, AS_OF, 6, 5) == expected


def test_statement_coverage_needs_activity_and_ignores_the_as_of_month() -> None:
    transactions = [txn(dt.date(2025, 3, 1), -100), txn(AS_OF, -100)]  # nothing in April/May
    assert covered_months(transactions, AS_OF, 6, 5) == ("2025-03",)


@pytest.mark.parametrize(
    ("counterparty", "description", "days", "is_payroll"),
    [
        ("上海星辰科技有限公司", "代发工资", (10, 10, 10), True),
        ("上海星辰科技有限公司", "转账", (10, 10, 10), True),  # an organisation paying monthly
        (None, "代发工资 2025", (10, 10, 10), True),  # keyword in the description
        ("ACME PAYROLL SERVICES", "SALARY", (10, 10, 10), True),
        ("张伟", "转账", (10, 10, 10), False),  # a person, no payroll keyword
        ("上海星辰科技有限公司", "代发工资", (10, 10, None), False),  # only two months
    ],
)
def test_payroll_detection(
    policy: LoadedPolicy,
    counterparty: str | None,
    description: str,
    days: tuple[int | None, ...],
    is_payroll: bool,
) -> None:
    months = ("2025-03", "2025-04", "2025-05")
    transactions = [
        txn(dt.date(2025, 3 + i, day), 800_000, description, counterparty)
        for i, day in enumerate(days)
        if day is not None
    ]
    sources = detect_payroll(transactions, months, policy.policy.parameters.payroll)
    assert bool(sources) is is_payroll


def test_payroll_must_be_roughly_monthly(policy: LoadedPolicy) -> None:
    # Every other month, in a six-month window: three months with credits but a 59-61 day gap.
    months = ("2024-12", "2025-01", "2025-02", "2025-03", "2025-04", "2025-05")
    transactions = [txn(dt.date(2025, m, 10), 800_000, "代发工资", "上海星辰科技有限公司") for m in (1, 3, 5)]
    assert detect_payroll(transactions, months, policy.policy.parameters.payroll) == ()


@pytest.mark.parametrize(
    ("declared", "payer", "match"),
    [
        ("星辰科技", "上海星辰科技有限公司", True),
        ("上海星辰科技有限公司", "星辰科技", True),
        ("Suzhou Bright Logistics Co., Ltd", "SUZHOU BRIGHT LOGISTICS CO., LTD.", True),
        ("ｓｕｚｈｏｕ　ｂｒｉｇｈｔ", "SUZHOU BRIGHT LOGISTICS CO LTD", True),  # full-width
        ("华晟", "深圳华晟电子股份有限公司", True),
        ("星辰科技", "代发工资 上海星辰科技有限公司", True),
        ("星辰", "上海星河科技有限公司", False),
        ("A", "A公司", False),  # too short to mean anything
        ("有限公司", "上海星辰科技有限公司", False),  # a legal form is not a name
    ],
)
def test_employer_name_match(policy: LoadedPolicy, declared: str, payer: str, match: bool) -> None:
    assert names_match(declared, payer, policy.policy.parameters.employer_match) is match


@pytest.mark.parametrize(
    ("requested", "declared", "worst", "expected"),
    [
        (2_000_000, 800_000, 30, {DocumentType.BANK_STATEMENT}),
        (2_000_001, 800_000, 30, {DocumentType.BANK_STATEMENT, DocumentType.INCOME_PROOF}),
        (1_000_000, None, 30, {DocumentType.BANK_STATEMENT, DocumentType.INCOME_PROOF}),
        (1_000_000, 800_000, 31, {DocumentType.BANK_STATEMENT, DocumentType.CREDIT_REPORT}),
    ],
)
def test_document_requirements(
    policy: LoadedPolicy,
    requested: int,
    declared: int | None,
    worst: int,
    expected: set[DocumentType],
) -> None:
    reqs = document_requirements(
        policy.policy,
        requested_limit_minor=requested,
        declared_monthly_income_minor=declared,
        worst_dpd_12m=worst,
    )
    assert {r.document_type for r in reqs} == expected
    statement = reqs[0]
    assert statement.document_type is DocumentType.BANK_STATEMENT
    assert statement.reasons == (RequirementReason.ALWAYS,)
    assert statement.min_full_months == 3
