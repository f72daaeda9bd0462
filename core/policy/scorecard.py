"""`assess`: one input snapshot + one policy -> one explainable, reproducible `Assessment`.

Order of work:
1. characteristics from the snapshot (`characteristics.compute_characteristics`);
2. knock-outs (policy order);
3. points per scorecard characteristic from its bins, summed to the score; risk tier;
4. route: force_review knock-out > decline knock-out > refer knock-out > score cut-offs;
   an automatic approval also needs a positive suggested limit below the four-eyes amount;
5. suggested limit (0 on decline), principal reasons, four-eyes flag.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_FLOOR, Decimal, localcontext
from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from core.policy.characteristics import (
    DECIMAL_CONTEXT,
    Characteristics,
    CharacteristicValue,
    compute_characteristics,
    numeric,
)
from core.policy.inputs import AssessmentInput, RedFlag
from core.policy.loader import LoadedPolicy
from core.policy.model import (
    INPUT_PREFIX,
    KnockoutAction,
    Policy,
    Recommendation,
    RiskTier,
)
from core.policy.requirements import DocumentRequirement, document_requirements
from core.policy.scoring import CardScore, Contribution, RawValue, Unscorable, score_card
from core.reviews.rules import needs_four_eyes


class Route(StrEnum):
    """Why the recommendation is what it is."""

    KNOCKOUT_FORCE_REVIEW = "knockout_force_review"
    KNOCKOUT_DECLINE = "knockout_decline"
    KNOCKOUT_REFER = "knockout_refer"
    SCORE_APPROVE = "score_at_or_above_approve_cutoff"
    SCORE_DECLINE = "score_below_decline_cutoff"
    SCORE_BETWEEN = "score_between_cutoffs"
    NO_AFFORDABLE_LIMIT = "approve_score_but_no_affordable_limit"
    FOUR_EYES = "approve_score_but_four_eyes_required"


class _Result(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KnockoutHit(_Result):
    id: str
    characteristic: str
    value: CharacteristicValue
    condition: str  # e.g. ">= 1"
    action: KnockoutAction
    reason: str


class Reason(_Result):
    code: str
    en: str
    zh_cn: str
    characteristic: str | None = None  # None for a knock-out reason
    points_lost: Decimal | None = None

    def text(self, locale: str) -> str:
        """Customer text for a locale such as "zh-CN" or "en" (anything not Chinese is en)."""
        return self.zh_cn if locale.lower().startswith("zh") else self.en


class LimitSizing(_Result):
    original_limit_minor: int
    requested_limit_minor: int
    tier_share: Decimal
    tier_cap_minor: int  # tier_share x original
    monthly_income_minor: int | None
    monthly_debt_service_minor: int | None
    disposable_income_minor: int | None  # income - debt service; None without income
    ability_to_pay_multiple: Decimal
    ability_to_pay_cap_minor: int  # multiple x disposable; 0 without income
    unrounded_minor: int
    rounding_unit_minor: int
    suggested_limit_minor: int
    zeroed_because: str | None = None  # set when a decline forces the suggestion to 0


class Assessment(_Result):
    policy_id: str
    policy_hash: str
    as_of: dt.date
    currency: str
    score: int
    # Implied probability of default of the unrounded score, when the scorecard is calibrated.
    pd: Decimal | None = None
    score_min: int
    score_max: int
    risk_tier: RiskTier
    recommendation: Recommendation
    route: Route
    suggested_limit_minor: int
    four_eyes_required: bool
    reasons: tuple[Reason, ...]  # principal reasons, most important first
    knockouts: tuple[KnockoutHit, ...]  # the knock-outs that fired, policy order
    contributions: tuple[Contribution, ...]  # scorecard order
    red_flags: tuple[RedFlag, ...]
    required_documents: tuple[DocumentRequirement, ...]
    limit_sizing: LimitSizing
    characteristics: Characteristics
    input: AssessmentInput


def requires_four_eyes(policy: Policy, amount_minor: int, tier: RiskTier) -> bool:
    """Whether approving `amount_minor` for a case in `tier` needs a second reviewer."""
    if amount_minor <= 0:
        return False
    rule = policy.four_eyes
    return needs_four_eyes(amount_minor, tier, rule.min_amount_minor, rule.risk_tiers)


def card_values(policy: Policy, ch: Characteristics, inp: AssessmentInput) -> dict[str, RawValue]:
    """The scorecard's inputs keyed by source field: features from `ch`, input fields from the
    snapshot (validation keeps the two name spaces apart)."""
    return {
        spec.field: ch.value(spec.field) if spec.is_feature else inp.fields.get(spec.field)
        for spec in policy.scorecard.characteristics
    }


def score_characteristics(policy: Policy, ch: Characteristics, inp: AssessmentInput) -> CardScore:
    return score_card(policy.scorecard, card_values(policy, ch, inp))


def _knockout_value(name: str, ch: Characteristics, inp: AssessmentInput) -> CharacteristicValue:
    if not name.startswith(INPUT_PREFIX):
        return ch.value(name.removeprefix("feature:"))
    text = inp.fields.get(name.removeprefix(INPUT_PREFIX), "").strip()
    try:
        return Decimal(text) if text else None
    except ArithmeticError:
        raise Unscorable(name, f"not a number: {text[:40]!r}") from None


def evaluate_knockouts(policy: Policy, ch: Characteristics, inp: AssessmentInput) -> tuple[KnockoutHit, ...]:
    hits: list[KnockoutHit] = []
    for ko in policy.knockouts:
        value = _knockout_value(ko.characteristic, ch, inp)
        if ko.fires(numeric(value)):
            hits.append(
                KnockoutHit(
                    id=ko.id,
                    characteristic=ko.characteristic,
                    value=value,
                    condition=ko.condition,
                    action=ko.action,
                    reason=ko.reason,
                )
            )
    return tuple(hits)


def _floor(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_FLOOR))


def size_limit(
    policy: Policy,
    inp: AssessmentInput,
    ch: Characteristics,
    tier: RiskTier,
    zeroed_because: str | None,
) -> LimitSizing:
    sizing = policy.limit_sizing
    original = inp.account.original_limit_minor
    requested = inp.requested_limit_minor
    share = sizing.tier_share[tier]
    tier_cap = _floor(share * original)
    income = ch.net_monthly_income_minor
    debt = ch.monthly_debt_service_minor
    disposable = None if income is None else max(0, income - (debt or 0))
    ability = 0 if disposable is None else _floor(sizing.ability_to_pay_multiple * disposable)
    unrounded = max(0, min(requested, original, tier_cap, ability))
    unit = sizing.rounding_unit_minor
    suggested = 0 if zeroed_because else unrounded // unit * unit
    return LimitSizing(
        original_limit_minor=original,
        requested_limit_minor=requested,
        tier_share=share,
        tier_cap_minor=tier_cap,
        monthly_income_minor=income,
        monthly_debt_service_minor=debt,
        disposable_income_minor=disposable,
        ability_to_pay_multiple=sizing.ability_to_pay_multiple,
        ability_to_pay_cap_minor=ability,
        unrounded_minor=unrounded,
        rounding_unit_minor=unit,
        suggested_limit_minor=suggested,
        zeroed_because=zeroed_because,
    )


def principal_reasons(
    policy: Policy,
    knockouts: tuple[KnockoutHit, ...],
    contributions: tuple[Contribution, ...],
) -> tuple[Reason, ...]:
    """Knock-out reasons first (policy order), then the characteristics that lost the most
    points against their best bin (ties: scorecard order); each code once; at most
    `max_principal_reasons`."""
    reasons: list[Reason] = []
    seen: set[str] = set()

    def add(code: str, characteristic: str | None, lost: Decimal | None) -> None:
        if code in seen:
            return
        seen.add(code)
        text = policy.reasons[code]
        reasons.append(
            Reason(
                code=code,
                en=text.en,
                zh_cn=text.zh_cn,
                characteristic=characteristic,
                points_lost=lost,
            )
        )

    for hit in knockouts:
        add(hit.reason, None, None)
    order = {c.characteristic: i for i, c in enumerate(contributions)}
    losers = sorted(
        (c for c in contributions if c.points_lost > 0),
        key=lambda c: (-c.points_lost, order[c.characteristic]),
    )
    for c in losers:
        add(policy.characteristic(c.characteristic).reason, c.characteristic, c.points_lost)
    return tuple(reasons[: policy.max_principal_reasons])


def assess(policy: LoadedPolicy, inp: AssessmentInput) -> Assessment:
    """Score one appeal. Pure and deterministic: same policy bytes + same input -> same result."""
    with localcontext(DECIMAL_CONTEXT):
        return _assess(policy, inp)


def _assess(policy: LoadedPolicy, inp: AssessmentInput) -> Assessment:
    p = policy.policy
    ch = compute_characteristics(inp, p)
    knockouts = evaluate_knockouts(p, ch, inp)
    card = score_characteristics(p, ch, inp)
    contributions = card.contributions
    score = card.score
    tier = p.tier_for(score, card.pd).tier

    actions = {hit.action for hit in knockouts}
    route: Route
    if KnockoutAction.FORCE_REVIEW in actions:
        route = Route.KNOCKOUT_FORCE_REVIEW
    elif KnockoutAction.DECLINE in actions:
        route = Route.KNOCKOUT_DECLINE
    elif KnockoutAction.REFER in actions:
        route = Route.KNOCKOUT_REFER
    elif p.cutoffs.approves(score, card.pd):
        route = Route.SCORE_APPROVE
    elif p.cutoffs.declines(score, card.pd):
        route = Route.SCORE_DECLINE
    else:
        route = Route.SCORE_BETWEEN

    # A decline (automatic, or a decline knock-out a reviewer must look past) suggests nothing.
    zeroed: str | None = None
    if KnockoutAction.DECLINE in actions:
        zeroed = "decline knock-out: " + ", ".join(
            h.id for h in knockouts if h.action is KnockoutAction.DECLINE
        )
    elif route is Route.SCORE_DECLINE:
        below = p.cutoffs.auto_decline_below
        zeroed = (
            f"score {score} below {below}"
            if below is not None
            else f"PD {card.pd} above {p.cutoffs.auto_decline_above_pd}"
        )
    sizing = size_limit(p, inp, ch, tier, zeroed)
    suggested = sizing.suggested_limit_minor
    four_eyes = requires_four_eyes(p, suggested, tier)

    if route is Route.SCORE_APPROVE and suggested <= 0:
        route = Route.NO_AFFORDABLE_LIMIT
    elif route is Route.SCORE_APPROVE and four_eyes:
        # Amounts that need two people are not approved by a machine either.
        route = Route.FOUR_EYES

    recommendation = {
        Route.KNOCKOUT_FORCE_REVIEW: Recommendation.MANUAL_REVIEW,
        Route.KNOCKOUT_DECLINE: Recommendation.AUTO_DECLINE,
        Route.KNOCKOUT_REFER: Recommendation.MANUAL_REVIEW,
        Route.SCORE_APPROVE: Recommendation.AUTO_APPROVE,
        Route.SCORE_DECLINE: Recommendation.AUTO_DECLINE,
        Route.SCORE_BETWEEN: Recommendation.MANUAL_REVIEW,
        Route.NO_AFFORDABLE_LIMIT: Recommendation.MANUAL_REVIEW,
        Route.FOUR_EYES: Recommendation.MANUAL_REVIEW,
    }[route]

    return Assessment(
        policy_id=p.id,
        policy_hash=policy.content_hash,
        as_of=inp.as_of,
        currency=p.currency,
        score=score,
        pd=card.pd,
        score_min=p.scorecard.min_score,
        score_max=p.scorecard.max_score,
        risk_tier=tier,
        recommendation=recommendation,
        route=route,
        suggested_limit_minor=suggested,
        four_eyes_required=four_eyes,
        reasons=principal_reasons(p, knockouts, contributions),
        knockouts=knockouts,
        contributions=contributions,
        red_flags=inp.red_flags,
        required_documents=document_requirements(
            p,
            requested_limit_minor=inp.requested_limit_minor,
            declared_monthly_income_minor=inp.customer.declared_monthly_income_minor,
            worst_dpd_12m=ch.worst_dpd_12m,
        ),
        limit_sizing=sizing,
        characteristics=ch,
        input=inp,
    )
