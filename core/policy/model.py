"""The decision policy as typed, validated data.

A policy file (see `policy/limit-restore-v1.toml`) is parsed into `Policy`. Shape errors come
from pydantic; rules that span fields (contiguous bins, ordered cut-offs, known reason codes...)
are checked in `Policy`'s own validator, which raises `PolicyError` naming each offending key
path, e.g. ``scorecard.characteristics[2].bins[1].upper: must be greater than lower``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

# --------------------------------------------------------------------------------------------
# Errors


class PolicyIssue(BaseModel):
    """One problem in a policy file, located by its key path."""

    model_config = ConfigDict(frozen=True)

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class PolicyError(Exception):
    """A policy file that cannot be used. `path` is the key path of the first issue."""

    def __init__(self, issues: Sequence[PolicyIssue], source: str | None = None) -> None:
        if not issues:
            raise ValueError("PolicyError needs at least one issue")
        self.issues: tuple[PolicyIssue, ...] = tuple(issues)
        self.source = source
        super().__init__(str(self))

    @property
    def path(self) -> str:
        return self.issues[0].path

    @property
    def message(self) -> str:
        return self.issues[0].message

    def __str__(self) -> str:
        head = f"invalid policy {self.source}" if self.source else "invalid policy"
        if len(self.issues) == 1:
            return f"{head}: {self.issues[0]}"
        return head + ":\n" + "\n".join(f"  {issue}" for issue in self.issues)


# --------------------------------------------------------------------------------------------
# Enumerations shared by the policy and the assessment


class RiskTier(StrEnum):
    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class Recommendation(StrEnum):
    AUTO_APPROVE = "AUTO_APPROVE"
    MANUAL_REVIEW = "MANUAL_REVIEW"
    AUTO_DECLINE = "AUTO_DECLINE"


class KnockoutAction(StrEnum):
    DECLINE = "decline"  # AUTO_DECLINE whatever the score
    REFER = "refer"  # MANUAL_REVIEW whatever the score, unless a decline knock-out fires
    FORCE_REVIEW = "force_review"  # MANUAL_REVIEW even over a decline: never automatic


class Direction(StrEnum):
    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


class CharacteristicName(StrEnum):
    """Every characteristic `characteristics.compute_characteristics` produces.

    The first group can be scored; all of them can drive a knock-out.
    """

    # credit record
    WORST_DPD_12M = "worst_dpd_12m"
    LATE_BILLS_12M = "late_bills_12m"
    MONTHS_SINCE_LAST_LATE = "months_since_last_late"
    ON_TIME_RATIO_12M = "on_time_ratio_12m"
    ACCOUNT_AGE_MONTHS = "account_age_months"
    ACTIVE_MONTHS_6M = "active_months_6m"
    OTHER_CREDIT_PRODUCTS = "other_credit_products"
    # consumption behaviour
    SMALL_LOAN_APPS_90D = "small_loan_apps_90d"
    OVERDUE_RECORDS_24M = "overdue_records_24m"
    SPENDING_TO_INCOME = "spending_to_income"
    # repayment ability
    NET_MONTHLY_INCOME_MINOR = "net_monthly_income_minor"
    INCOME_STABILITY_CV = "income_stability_cv"
    DEBT_TO_INCOME = "debt_to_income"
    EMPLOYMENT_VERIFIED = "employment_verified"
    # gates (knock-outs)
    OVERDUE_BILLS_NOW = "overdue_bills_now"
    ACCOUNT_CLOSED = "account_closed"
    RED_FLAG_COUNT = "red_flag_count"
    MISSING_DOCUMENT_COUNT = "missing_document_count"
    STATEMENT_MONTHS_COVERED = "statement_months_covered"


# Characteristics whose value can be None (not computable from the snapshot): a scorecard entry
# for one of these must say how many points "missing" earns.
NULLABLE_CHARACTERISTICS: frozenset[CharacteristicName] = frozenset(
    {
        CharacteristicName.MONTHS_SINCE_LAST_LATE,
        CharacteristicName.ON_TIME_RATIO_12M,
        CharacteristicName.OTHER_CREDIT_PRODUCTS,
        CharacteristicName.SPENDING_TO_INCOME,
        CharacteristicName.NET_MONTHLY_INCOME_MINOR,
        CharacteristicName.INCOME_STABILITY_CV,
        CharacteristicName.DEBT_TO_INCOME,
    }
)

ReasonCode = Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
NonEmptyText = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]

# --------------------------------------------------------------------------------------------
# Building blocks


class _Strict(BaseModel):
    # Unknown keys are typos until proven otherwise: refuse them.
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class PayrollDetection(_Strict):
    min_months: int = Field(ge=1)
    min_gap_days: int = Field(ge=1)
    max_gap_days: int = Field(ge=1)
    keywords: tuple[NonEmptyText, ...]
    organisation_markers: tuple[NonEmptyText, ...] = ()


class DebtServiceDetection(_Strict):
    keywords: tuple[NonEmptyText, ...]


class EmployerMatch(_Strict):
    ignore_suffixes: tuple[NonEmptyText, ...] = ()
    ignore_words: tuple[NonEmptyText, ...] = ()
    min_length: int = Field(default=2, ge=1)


class Parameters(_Strict):
    minimum_payment_ratio: Decimal = Field(ge=0, le=1)
    statement_lookback_months: int = Field(ge=1, le=24)
    statement_coverage_grace_days: int = Field(ge=0, le=15)
    payroll: PayrollDetection
    debt_service: DebtServiceDetection
    employer_match: EmployerMatch


class Knockout(_Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
    characteristic: str
    at_least: Decimal | None = None
    below: Decimal | None = None
    action: KnockoutAction
    reason: ReasonCode

    def fires(self, value: Decimal | None) -> bool:
        """Whether the rule fires for a characteristic value (None never fires)."""
        if value is None:
            return False
        if self.at_least is not None:
            return value >= self.at_least
        assert self.below is not None  # guaranteed by Policy validation
        return value < self.below

    @property
    def condition(self) -> str:
        if self.at_least is not None:
            return f">= {self.at_least}"
        return f"< {self.below}"


class Bin(_Strict):
    """Half-open interval [lower, upper); `upper` omitted means no upper bound."""

    lower: Decimal
    upper: Decimal | None = None
    points: int
    label: str | None = None

    def contains(self, value: Decimal) -> bool:
        return value >= self.lower and (self.upper is None or value < self.upper)

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        upper = "∞" if self.upper is None else str(self.upper)
        return f"[{self.lower}, {upper})"


class Characteristic(_Strict):
    name: str
    reason: ReasonCode
    direction: Direction | None = None
    missing_points: int | None = None
    bins: tuple[Bin, ...] = Field(min_length=1)

    @property
    def max_points(self) -> int:
        candidates = [b.points for b in self.bins]
        if self.missing_points is not None:
            candidates.append(self.missing_points)
        return max(candidates)

    @property
    def min_points(self) -> int:
        candidates = [b.points for b in self.bins]
        if self.missing_points is not None:
            candidates.append(self.missing_points)
        return min(candidates)

    def bin_for(self, value: Decimal) -> Bin | None:
        for b in self.bins:
            if b.contains(value):
                return b
        return None


class Scorecard(_Strict):
    characteristics: tuple[Characteristic, ...] = Field(min_length=1)

    @property
    def min_score(self) -> int:
        return sum(c.min_points for c in self.characteristics)

    @property
    def max_score(self) -> int:
        return sum(c.max_points for c in self.characteristics)


class Cutoffs(_Strict):
    auto_approve_min: int
    auto_decline_below: int


class RiskTierBand(_Strict):
    tier: RiskTier
    min_score: int


class LimitSizing(_Strict):
    ability_to_pay_multiple: Decimal = Field(gt=0)
    rounding_unit_minor: int = Field(gt=0)
    tier_share: dict[RiskTier, Decimal]


class FourEyes(_Strict):
    min_amount_minor: int = Field(gt=0)
    risk_tiers: tuple[RiskTier, ...] = ()


class Sla(_Strict):
    review_due_hours: int = Field(gt=0)
    review_warning_hours: int = Field(gt=0)
    escalation_queue: NonEmptyText


class BankStatementRequirement(_Strict):
    min_full_months: int = Field(ge=1)


class IncomeProofRequirement(_Strict):
    required_above_requested_minor: int = Field(ge=0)
    required_without_declared_income: bool = True


class CreditReportRequirement(_Strict):
    required_above_worst_dpd_12m: int = Field(ge=0)


class Documents(_Strict):
    collection_deadline_days: int = Field(gt=0)
    reminder_days: tuple[int, ...] = ()
    bank_statement: BankStatementRequirement
    income_proof: IncomeProofRequirement
    credit_report: CreditReportRequirement


class AppealWindows(_Strict):
    decline_cooldown_days: int = Field(ge=0)
    human_review_window_days: int = Field(gt=0)


class ReasonText(_Strict):
    en: NonEmptyText
    zh_cn: NonEmptyText = Field(alias="zh-CN")


# --------------------------------------------------------------------------------------------
# The policy


class Policy(_Strict):
    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    description: str = ""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    max_principal_reasons: int = Field(default=4, ge=1, le=10)
    parameters: Parameters
    knockouts: tuple[Knockout, ...] = ()
    scorecard: Scorecard
    cutoffs: Cutoffs
    risk_tiers: tuple[RiskTierBand, ...] = Field(min_length=1)
    limit_sizing: LimitSizing
    four_eyes: FourEyes
    sla: Sla
    documents: Documents
    appeals: AppealWindows
    reasons: dict[ReasonCode, ReasonText]

    # -- durations, for the workflow and API ---------------------------------------------------
    @property
    def collection_deadline(self) -> timedelta:
        return timedelta(days=self.documents.collection_deadline_days)

    @property
    def reminder_offsets(self) -> tuple[timedelta, ...]:
        return tuple(timedelta(days=d) for d in self.documents.reminder_days)

    @property
    def review_due(self) -> timedelta:
        return timedelta(hours=self.sla.review_due_hours)

    @property
    def review_warning(self) -> timedelta:
        return timedelta(hours=self.sla.review_warning_hours)

    @property
    def decline_cooldown(self) -> timedelta:
        return timedelta(days=self.appeals.decline_cooldown_days)

    @property
    def human_review_window(self) -> timedelta:
        return timedelta(days=self.appeals.human_review_window_days)

    def characteristic(self, name: str) -> Characteristic:
        for c in self.scorecard.characteristics:
            if c.name == name:
                return c
        raise KeyError(name)

    def tier_for(self, score: int) -> RiskTierBand:
        for band in self.risk_tiers:
            if score >= band.min_score:
                return band
        # Validation guarantees the last band covers the lowest possible score.
        return self.risk_tiers[-1]

    # -- cross-field rules ---------------------------------------------------------------------
    @model_validator(mode="after")
    def _check_consistency(self) -> Policy:
        issues = list(_consistency_issues(self))
        if issues:
            # Not a ValueError on purpose: pydantic lets it through unwrapped, with its paths.
            raise PolicyError(issues)
        return self


def _consistency_issues(p: Policy) -> Iterator[PolicyIssue]:
    known = {c.value for c in CharacteristicName}

    def reason_exists(path: str, code: str) -> Iterator[PolicyIssue]:
        if code not in p.reasons:
            yield PolicyIssue(path=path, message=f"unknown reason code {code!r} (not in reasons)")

    # parameters
    pay = p.parameters.payroll
    if pay.max_gap_days < pay.min_gap_days:
        yield PolicyIssue(
            path="parameters.payroll.max_gap_days",
            message=f"must not be less than min_gap_days ({pay.min_gap_days})",
        )

    # knock-outs
    seen_ko: dict[str, int] = {}
    for i, ko in enumerate(p.knockouts):
        path = f"knockouts[{i}]"
        if ko.id in seen_ko:
            yield PolicyIssue(
                path=f"{path}.id",
                message=f"duplicate knock-out id {ko.id!r} (also knockouts[{seen_ko[ko.id]}])",
            )
        seen_ko.setdefault(ko.id, i)
        if ko.characteristic not in known:
            yield PolicyIssue(
                path=f"{path}.characteristic",
                message=f"unknown characteristic {ko.characteristic!r}",
            )
        if (ko.at_least is None) == (ko.below is None):
            yield PolicyIssue(path=path, message="set exactly one of at_least and below")
        yield from reason_exists(f"{path}.reason", ko.reason)

    # scorecard
    seen_ch: dict[str, int] = {}
    for i, ch in enumerate(p.scorecard.characteristics):
        path = f"scorecard.characteristics[{i}]"
        if ch.name not in known:
            yield PolicyIssue(path=f"{path}.name", message=f"unknown characteristic {ch.name!r}")
        elif ch.name in seen_ch:
            yield PolicyIssue(
                path=f"{path}.name",
                message=f"duplicate characteristic {ch.name!r} "
                f"(also scorecard.characteristics[{seen_ch[ch.name]}])",
            )
        seen_ch.setdefault(ch.name, i)
        if ch.name in NULLABLE_CHARACTERISTICS and ch.missing_points is None:
            yield PolicyIssue(
                path=f"{path}.missing_points",
                message=f"required: {ch.name!r} can be missing from an input",
            )
        yield from reason_exists(f"{path}.reason", ch.reason)
        yield from _bin_issues(path, ch)

    # cut-offs and tiers
    lo, hi = p.scorecard.min_score, p.scorecard.max_score
    if p.cutoffs.auto_decline_below > p.cutoffs.auto_approve_min:
        yield PolicyIssue(
            path="cutoffs.auto_decline_below",
            message=f"must not exceed cutoffs.auto_approve_min ({p.cutoffs.auto_approve_min})",
        )
    if p.cutoffs.auto_approve_min > hi:
        yield PolicyIssue(
            path="cutoffs.auto_approve_min",
            message=f"{p.cutoffs.auto_approve_min} is above the highest possible score ({hi})",
        )
    if p.cutoffs.auto_decline_below <= lo:
        yield PolicyIssue(
            path="cutoffs.auto_decline_below",
            message=f"must be above the lowest possible score ({lo}) or nothing is declined",
        )
    seen_tier: dict[RiskTier, int] = {}
    for i, band in enumerate(p.risk_tiers):
        path = f"risk_tiers[{i}]"
        if band.tier in seen_tier:
            yield PolicyIssue(
                path=f"{path}.tier",
                message=f"duplicate tier {band.tier.value} (also risk_tiers[{seen_tier[band.tier]}])",
            )
        seen_tier.setdefault(band.tier, i)
        if i > 0 and band.min_score >= p.risk_tiers[i - 1].min_score:
            yield PolicyIssue(
                path=f"{path}.min_score",
                message=f"must be lower than risk_tiers[{i - 1}].min_score "
                f"({p.risk_tiers[i - 1].min_score}): list tiers from the best score down",
            )
    last = len(p.risk_tiers) - 1
    if p.risk_tiers[last].min_score > lo:
        yield PolicyIssue(
            path=f"risk_tiers[{last}].min_score",
            message=f"the last tier must start at or below the lowest possible score ({lo})",
        )

    # limit sizing and four-eyes
    for band in p.risk_tiers:
        if band.tier not in p.limit_sizing.tier_share:
            yield PolicyIssue(
                path="limit_sizing.tier_share",
                message=f"missing a share for tier {band.tier.value}",
            )
    for tier, share in p.limit_sizing.tier_share.items():
        if not Decimal(0) < share <= Decimal(1):
            yield PolicyIssue(
                path=f"limit_sizing.tier_share.{tier.value}",
                message="must be greater than 0 and at most 1",
            )
    for i, tier in enumerate(p.four_eyes.risk_tiers):
        if tier not in seen_tier:
            yield PolicyIssue(
                path=f"four_eyes.risk_tiers[{i}]",
                message=f"tier {tier.value} is not defined in risk_tiers",
            )

    # SLA and documents
    if p.sla.review_warning_hours >= p.sla.review_due_hours:
        yield PolicyIssue(
            path="sla.review_warning_hours",
            message=f"must be less than sla.review_due_hours ({p.sla.review_due_hours})",
        )
    deadline = p.documents.collection_deadline_days
    for i, day in enumerate(p.documents.reminder_days):
        path = f"documents.reminder_days[{i}]"
        if not 0 < day < deadline:
            yield PolicyIssue(
                path=path, message=f"must be between 1 and the collection deadline ({deadline})"
            )
        if i > 0 and day <= p.documents.reminder_days[i - 1]:
            yield PolicyIssue(path=path, message="reminder days must be strictly increasing")


def _bin_issues(path: str, ch: Characteristic) -> Iterator[PolicyIssue]:
    last = len(ch.bins) - 1
    for j, b in enumerate(ch.bins):
        bpath = f"{path}.bins[{j}]"
        if j == 0 and b.lower != 0:
            yield PolicyIssue(
                path=f"{bpath}.lower",
                message="the first bin must start at 0 (characteristics are never negative)",
            )
        if b.upper is not None and b.upper <= b.lower:
            yield PolicyIssue(path=f"{bpath}.upper", message="must be greater than lower")
        if b.upper is None and j != last:
            yield PolicyIssue(path=f"{bpath}.upper", message="only the last bin may be open-ended")
        if b.upper is not None and j == last:
            yield PolicyIssue(
                path=f"{bpath}.upper",
                message="the last bin must be open-ended (omit upper)",
            )
        if j > 0:
            prev = ch.bins[j - 1]
            if prev.upper is not None and b.lower != prev.upper:
                kind = "overlaps" if b.lower < prev.upper else "leaves a gap after"
                yield PolicyIssue(
                    path=f"{bpath}.lower",
                    message=f"{kind} the previous bin: must equal bins[{j - 1}].upper "
                    f"({prev.upper}) so bins are contiguous and non-overlapping",
                )
            if ch.direction is Direction.HIGHER_IS_BETTER and b.points < prev.points:
                yield PolicyIssue(
                    path=f"{bpath}.points",
                    message=f"must not be less than bins[{j - 1}].points ({prev.points}) "
                    "for direction higher_is_better",
                )
            if ch.direction is Direction.LOWER_IS_BETTER and b.points > prev.points:
                yield PolicyIssue(
                    path=f"{bpath}.points",
                    message=f"must not exceed bins[{j - 1}].points ({prev.points}) "
                    "for direction lower_is_better",
                )
