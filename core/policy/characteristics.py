"""Characteristics: pure functions from the input snapshot to the numbers the policy scores.

Conventions (the windows are `core.months`'s, the same as the repayment record's; the as-of
day itself is never in a look-back):
- "in the last N months" is `core.months.last_months(as_of, N)`: before as_of and at most N
  months old, so a monthly bill on a fixed day 1-28 gives exactly N bills; "in the last N days"
  is `core.months.last_days(as_of, N)`.
- A bill is *overdue now* when it is not fully paid and its due date has passed. Its days past
  due is the larger of the ledger's figure and the days since the due date; a bill is *late*
  when that effective figure is above 0.
- Bank-statement analysis looks at complete calendar months before the as-of month that the
  statement covers end to end (see `covered_months`); income, spending and debt service are
  monthly means over those months, in whole minor units rounded down.
- Ratios are `Decimal`, rounded half-up to 4 places so the stored snapshot is short and exact.
"""

from __future__ import annotations

import datetime as dt
import itertools
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal, localcontext
from enum import StrEnum
from typing import Annotated, TypeAlias

from pydantic import BaseModel, ConfigDict, Strict

from core.months import (
    full_calendar_months,
    last_days,
    last_months,
    monthly_periods,
    months_between,
)
from core.policy.inputs import (
    AccountStatus,
    AssessmentInput,
    Bill,
    DocumentType,
    LoanApplication,
    StatementTransaction,
)
from core.policy.model import (
    CharacteristicName,
    EmployerMatch,
    Parameters,
    PayrollDetection,
    Policy,
)
from core.policy.requirements import document_requirements

RATIO_PLACES = Decimal("0.0001")
# Decimal arithmetic runs in this context, never the thread's (which other code may change), so
# results do not depend on who ran before us.
DECIMAL_CONTEXT = Context(prec=28, rounding=ROUND_HALF_EVEN)

# Strict bool/int so that a stored Decimal such as "1.0000" does not come back as True or 1.
CharacteristicValue: TypeAlias = Annotated[bool, Strict()] | Annotated[int, Strict()] | Decimal | None

# --------------------------------------------------------------------------------------------
# Numbers


def ratio(numerator: int, denominator: int) -> Decimal:
    with localcontext(DECIMAL_CONTEXT):
        return (Decimal(numerator) / Decimal(denominator)).quantize(RATIO_PLACES, ROUND_HALF_UP)


# --------------------------------------------------------------------------------------------
# Credit record


def is_overdue_now(bill: Bill, as_of: dt.date) -> bool:
    return bill.paid_minor < bill.amount_due_minor and bill.due_date < as_of


def effective_dpd(bill: Bill, as_of: dt.date) -> int:
    if is_overdue_now(bill, as_of):
        return max(bill.days_past_due, (as_of - bill.due_date).days)
    return bill.days_past_due


def is_late(bill: Bill, as_of: dt.date) -> bool:
    return effective_dpd(bill, as_of) > 0


def bills_due_within(bills: Iterable[Bill], as_of: dt.date, months: int) -> list[Bill]:
    window = last_months(as_of, months)
    return [b for b in bills if b.due_date in window]


def worst_dpd(bills: Iterable[Bill], as_of: dt.date, months: int = 12) -> int:
    return max((effective_dpd(b, as_of) for b in bills_due_within(bills, as_of, months)), default=0)


def late_bill_count(bills: Iterable[Bill], as_of: dt.date, months: int = 12) -> int:
    return sum(1 for b in bills_due_within(bills, as_of, months) if is_late(b, as_of))


def months_since_last_late(bills: Iterable[Bill], as_of: dt.date) -> int | None:
    """Whole months since the due date of the latest late bill; None if never late."""
    last = max((b.due_date for b in bills if b.due_date <= as_of and is_late(b, as_of)), default=None)
    return None if last is None else months_between(last, as_of)


def on_time_ratio(bills: Iterable[Bill], as_of: dt.date, months: int = 12) -> Decimal | None:
    """Share of the bills due in the window that were not late; None without bills."""
    window = bills_due_within(bills, as_of, months)
    if not window:
        return None
    return ratio(sum(1 for b in window if not is_late(b, as_of)), len(window))


def account_age_months(opened_on: dt.date, as_of: dt.date) -> int:
    return months_between(opened_on, as_of)


def active_months(
    bills: Iterable[Bill],
    transactions: Iterable[StatementTransaction],
    as_of: dt.date,
    months: int = 6,
) -> int:
    """Of the last `months` monthly periods before as_of (`core.months.monthly_periods`), how
    many had a bill (with an amount due) or a statement transaction."""
    dates = [b.due_date for b in bills if b.amount_due_minor > 0]
    dates.extend(t.date for t in transactions)
    return sum(1 for period in monthly_periods(as_of, months) if any(d in period for d in dates))


def overdue_bills_now(bills: Iterable[Bill], as_of: dt.date) -> list[Bill]:
    return [b for b in bills if is_overdue_now(b, as_of)]


# --------------------------------------------------------------------------------------------
# Consumption behaviour


def small_loan_applications(applications: Iterable[LoanApplication], as_of: dt.date, days: int = 90) -> int:
    window = last_days(as_of, days)
    return sum(1 for a in applications if a.small_loan and a.applied_on in window)


# --------------------------------------------------------------------------------------------
# Bank statements


def month_key(day: dt.date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def covered_months(
    transactions: Sequence[StatementTransaction],
    as_of: dt.date,
    lookback_months: int,
    grace_days: int,
) -> tuple[str, ...]:
    """Complete calendar months, among the `lookback_months` before the as-of month, that the
    statement covers end to end: it has a transaction in the month and its transactions reach
    within `grace_days` of the month's first and last day. Oldest first."""
    if not transactions:
        return ()
    first = min(t.date for t in transactions)
    last = max(t.date for t in transactions)
    with_activity = {month_key(t.date) for t in transactions}
    grace = dt.timedelta(days=grace_days)
    return tuple(
        month_key(month.start)
        for month in full_calendar_months(as_of, lookback_months)
        if month_key(month.start) in with_activity
        and first <= month.start + grace
        and last >= month.end - grace
    )


def _fold(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _alnum(text: str) -> str:
    return "".join(ch for ch in text if ch.isalnum())


def _contains_any(text: str, words: Iterable[str]) -> bool:
    folded = _fold(text)
    return any(_fold(w) in folded for w in words)


def _payer_key(t: StatementTransaction) -> str:
    if t.counterparty:
        return _alnum(_fold(t.counterparty))
    # Without a counterparty the description names the payer; drop digits (dates, refs).
    return "".join(ch for ch in _alnum(_fold(t.description)) if not ch.isdigit())


def _payer_name(t: StatementTransaction) -> str:
    return (t.counterparty or t.description).strip()


class PayrollSource(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    payer: str  # as printed on the statement (most frequent spelling)
    payer_key: str  # normalised grouping key
    months: int  # distinct covered months with a credit
    total_minor: int  # credited over the covered months


def detect_payroll(
    transactions: Sequence[StatementTransaction],
    months: Sequence[str],
    params: PayrollDetection,
) -> tuple[PayrollSource, ...]:
    """Payers that credit the account roughly monthly and look like an employer.

    A payer (same counterparty, or same description without digits) qualifies when it credits
    in at least `min_months` distinct covered months, the median gap between each month's first
    credit is within [min_gap_days, max_gap_days], and a payroll keyword or an organisation
    marker names it.
    """
    window = set(months)
    groups: dict[str, list[StatementTransaction]] = defaultdict(list)
    for t in transactions:
        if t.amount_minor > 0 and month_key(t.date) in window:
            groups[_payer_key(t)].append(t)
    sources: list[PayrollSource] = []
    for key in sorted(groups):
        credits = sorted(groups[key], key=lambda t: (t.date, t.amount_minor))
        first_per_month: dict[str, dt.date] = {}
        for t in credits:
            first_per_month.setdefault(month_key(t.date), t.date)
        if not key or len(first_per_month) < params.min_months:
            continue
        firsts = sorted(first_per_month.values())
        gaps = sorted((b - a).days for a, b in itertools.pairwise(firsts))
        if gaps:
            median_gap = gaps[(len(gaps) - 1) // 2]  # lower median: integer, deterministic
            if not params.min_gap_days <= median_gap <= params.max_gap_days:
                continue
        looks_like_payroll = any(
            _contains_any(t.description, params.keywords)
            or _contains_any(t.counterparty or "", params.keywords)
            for t in credits
        ) or any(_contains_any(t.counterparty or "", params.organisation_markers) for t in credits)
        if not looks_like_payroll:
            continue
        names = Counter(_payer_name(t) for t in credits)
        payer = min(names, key=lambda n: (-names[n], n))
        sources.append(
            PayrollSource(
                payer=payer,
                payer_key=key,
                months=len(first_per_month),
                total_minor=sum(t.amount_minor for t in credits),
            )
        )
    return tuple(sources)


def coefficient_of_variation(values: Sequence[int]) -> Decimal | None:
    """Population standard deviation over mean; None for no values or a zero mean."""
    if not values:
        return None
    with localcontext(DECIMAL_CONTEXT):
        n = Decimal(len(values))
        mean = Decimal(sum(values)) / n
        if mean <= 0:
            return None
        variance = sum((Decimal(v) - mean) ** 2 for v in values) / n
        return (variance.sqrt() / mean).quantize(RATIO_PLACES, ROUND_HALF_UP)


class IncomeSource(StrEnum):
    STATEMENT_PAYROLL = "statement_payroll"
    DECLARED_WITH_PROOF = "declared_with_proof"


class StatementAnalysis(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    months: tuple[str, ...]  # covered months, "YYYY-MM", oldest first
    payroll_sources: tuple[PayrollSource, ...]
    monthly_payroll_minor: tuple[int, ...]  # per covered month, all payroll sources
    monthly_debt_service_minor: int | None  # mean; None without covered months
    monthly_spending_minor: int | None  # mean of other debits; None without covered months


def analyse_statement(
    transactions: Sequence[StatementTransaction], as_of: dt.date, params: Parameters
) -> StatementAnalysis:
    months = covered_months(
        transactions, as_of, params.statement_lookback_months, params.statement_coverage_grace_days
    )
    sources = detect_payroll(transactions, months, params.payroll)
    if not months:
        return StatementAnalysis(
            months=(),
            payroll_sources=sources,
            monthly_payroll_minor=(),
            monthly_debt_service_minor=None,
            monthly_spending_minor=None,
        )
    payroll_keys = {s.payer_key for s in sources}
    window = set(months)
    payroll: dict[str, int] = dict.fromkeys(months, 0)
    debt = 0
    spending = 0
    for t in transactions:
        m = month_key(t.date)
        if m not in window:
            continue
        if t.amount_minor > 0:
            if _payer_key(t) in payroll_keys:
                payroll[m] += t.amount_minor
        elif t.amount_minor < 0:
            text = f"{t.description} {t.counterparty or ''}"
            if _contains_any(text, params.debt_service.keywords):
                debt += -t.amount_minor
            else:
                spending += -t.amount_minor
    n = len(months)
    return StatementAnalysis(
        months=months,
        payroll_sources=sources,
        monthly_payroll_minor=tuple(payroll[m] for m in months),
        monthly_debt_service_minor=debt // n,
        monthly_spending_minor=spending // n,
    )


# --------------------------------------------------------------------------------------------
# Employment


def normalise_name(name: str, params: EmployerMatch) -> str:
    """NFKC, case-folded, payroll words removed, letters and digits only, legal-form suffixes
    stripped (repeatedly): '上海星辰科技有限公司' -> '上海星辰科技', 'Acme Co., Ltd.' -> 'acme'."""
    text = _fold(name)
    for word in sorted((_fold(w) for w in params.ignore_words), key=len, reverse=True):
        text = text.replace(word, " ")
    text = _alnum(text)
    suffixes = sorted((_alnum(_fold(s)) for s in params.ignore_suffixes), key=len, reverse=True)
    changed = True
    while changed:
        changed = False
        for suffix in suffixes:
            if suffix and text.endswith(suffix) and len(text) > len(suffix):
                text = text[: -len(suffix)]
                changed = True
                break
    return text


def names_match(a: str, b: str, params: EmployerMatch) -> bool:
    """Fuzzy containment: one normalised name contains the other, the shorter long enough."""
    na, nb = normalise_name(a, params), normalise_name(b, params)
    shorter, longer = sorted((na, nb), key=len)
    return len(shorter) >= params.min_length and shorter in longer


def employment_verified(
    document_accepted: bool,
    declared_employer: str | None,
    payroll_payers: Iterable[str],
    params: EmployerMatch,
) -> bool:
    if not document_accepted or not declared_employer:
        return False
    return any(names_match(declared_employer, payer, params) for payer in payroll_payers)


# --------------------------------------------------------------------------------------------
# All of them


class Characteristics(BaseModel):
    """Every characteristic of one input, plus the intermediate figures behind them."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # credit record
    worst_dpd_12m: int
    late_bills_12m: int
    months_since_last_late: int | None
    on_time_ratio_12m: Decimal | None
    account_age_months: int
    active_months_6m: int
    other_credit_products: int | None
    # consumption behaviour
    small_loan_apps_90d: int
    overdue_records_24m: int
    spending_to_income: Decimal | None
    # repayment ability
    net_monthly_income_minor: int | None
    income_stability_cv: Decimal | None
    debt_to_income: Decimal | None
    employment_verified: bool
    # gates
    overdue_bills_now: int
    # Defaults keep assessments stored before these features existed readable.
    max_dpd_now: int = 0
    small_loan_apps_30d: int = 0
    account_closed: bool
    red_flag_count: int
    missing_document_count: int
    statement_months_covered: int
    # details (not scored; shown to reviewers and used for limit sizing)
    overdue_amount_now_minor: int
    income_source: IncomeSource | None
    statement_months: tuple[str, ...]
    payroll_sources: tuple[PayrollSource, ...]
    monthly_payroll_minor: tuple[int, ...]
    monthly_debt_service_minor: int | None
    monthly_spending_minor: int | None
    minimum_payment_minor: int
    missing_documents: tuple[DocumentType, ...]

    def value(self, name: str | CharacteristicName) -> CharacteristicValue:
        key = CharacteristicName(name).value
        result: CharacteristicValue = getattr(self, key)
        return result


def numeric(value: CharacteristicValue) -> Decimal | None:
    """A characteristic value on the number line bins and thresholds use (True is 1)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return Decimal(int(value))
    return Decimal(value)


def compute_characteristics(inp: AssessmentInput, policy: Policy) -> Characteristics:
    params = policy.parameters
    as_of = inp.as_of
    bills = inp.bills

    worst = worst_dpd(bills, as_of, 12)
    requirements = document_requirements(
        policy,
        requested_limit_minor=inp.requested_limit_minor,
        declared_monthly_income_minor=inp.customer.declared_monthly_income_minor,
        worst_dpd_12m=worst,
    )
    accepted = set(inp.accepted_document_types)
    missing = tuple(r.document_type for r in requirements if r.document_type not in accepted)

    statement = analyse_statement(inp.transactions, as_of, params)
    income: int | None = None
    income_source: IncomeSource | None = None
    stability: Decimal | None = None
    if statement.payroll_sources and statement.months:
        income = sum(statement.monthly_payroll_minor) // len(statement.months)
        income_source = IncomeSource.STATEMENT_PAYROLL
        stability = coefficient_of_variation(statement.monthly_payroll_minor)
    elif inp.customer.declared_monthly_income_minor is not None and DocumentType.INCOME_PROOF in accepted:
        income = inp.customer.declared_monthly_income_minor
        income_source = IncomeSource.DECLARED_WITH_PROOF

    with localcontext(DECIMAL_CONTEXT):
        minimum_payment = int(
            (params.minimum_payment_ratio * inp.requested_limit_minor).to_integral_value(ROUND_CEILING)
        )
    spending_ratio: Decimal | None = None
    dti: Decimal | None = None
    if income:
        if statement.monthly_spending_minor is not None:
            spending_ratio = ratio(statement.monthly_spending_minor, income)
        if statement.monthly_debt_service_minor is not None:
            dti = ratio(statement.monthly_debt_service_minor + minimum_payment, income)

    overdue = overdue_bills_now(bills, as_of)
    return Characteristics(
        worst_dpd_12m=worst,
        late_bills_12m=late_bill_count(bills, as_of, 12),
        months_since_last_late=months_since_last_late(bills, as_of),
        on_time_ratio_12m=on_time_ratio(bills, as_of, 12),
        account_age_months=account_age_months(inp.account.opened_on, as_of),
        active_months_6m=active_months(bills, inp.transactions, as_of, 6),
        other_credit_products=inp.other_credit_products,
        small_loan_apps_90d=small_loan_applications(inp.loan_applications, as_of, 90),
        overdue_records_24m=late_bill_count(bills, as_of, 24),
        spending_to_income=spending_ratio,
        net_monthly_income_minor=income,
        income_stability_cv=stability,
        debt_to_income=dti,
        employment_verified=employment_verified(
            inp.employment_document_accepted,
            inp.customer.employer_name,
            [s.payer for s in statement.payroll_sources],
            params.employer_match,
        ),
        overdue_bills_now=len(overdue),
        max_dpd_now=max((effective_dpd(b, as_of) for b in overdue), default=0),
        small_loan_apps_30d=small_loan_applications(inp.loan_applications, as_of, 30),
        account_closed=inp.account.status is AccountStatus.CLOSED,
        red_flag_count=len(inp.red_flags),
        missing_document_count=len(missing),
        statement_months_covered=len(statement.months),
        overdue_amount_now_minor=sum(b.amount_due_minor - b.paid_minor for b in overdue),
        income_source=income_source,
        statement_months=statement.months,
        payroll_sources=statement.payroll_sources,
        monthly_payroll_minor=statement.monthly_payroll_minor,
        monthly_debt_service_minor=statement.monthly_debt_service_minor,
        monthly_spending_minor=statement.monthly_spending_minor,
        minimum_payment_minor=minimum_payment,
        missing_documents=missing,
    )


__all__ = [
    "CharacteristicValue",
    "Characteristics",
    "IncomeSource",
    "PayrollSource",
    "StatementAnalysis",
    "account_age_months",
    "active_months",
    "analyse_statement",
    "coefficient_of_variation",
    "compute_characteristics",
    "covered_months",
    "detect_payroll",
    "effective_dpd",
    "employment_verified",
    "is_late",
    "is_overdue_now",
    "late_bill_count",
    "months_since_last_late",
    "names_match",
    "normalise_name",
    "numeric",
    "on_time_ratio",
    "overdue_bills_now",
    "small_loan_applications",
    "worst_dpd",
]
