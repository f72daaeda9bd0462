from __future__ import annotations

import datetime as dt
import decimal
import json
from collections import Counter
from typing import Any

import pytest

from core.policy import (
    AccountStatus,
    Assessment,
    AssessmentInput,
    DocumentType,
    KnockoutAction,
    LoadedPolicy,
    LoanApplication,
    Recommendation,
    RiskTier,
    Route,
    assess,
    requires_four_eyes,
)
from tests.core.policy.factories import (
    AS_OF,
    RED_FLAG,
    Population,
    ago,
    base_input,
    bill,
    make_profile,
    payroll_statement,
)

DAY = dt.timedelta(days=1)


def good_input(
    *, salary: int = 1_000_000, debt: int = 0, limit: int = 1_000_000, **overrides: Any
) -> AssessmentInput:
    """A clean customer: a year of on-time bills, steady payroll from the declared employer."""
    fields: dict[str, Any] = {
        "bills": tuple(bill(ago(k)) for k in range(1, 13)),
        "transactions": payroll_statement(amounts=[salary] * 3, spending=salary // 4, debt=debt),
        "other_credit_products": 2,
        "employment_document_accepted": True,
        "requested_limit_minor": limit,
        "account": base_input().account.model_copy(update={"original_limit_minor": limit}),
    }
    fields.update(overrides)
    return base_input(**fields)


# --- golden profiles ----------------------------------------------------------------------------

GOLDEN = [
    # population, seed, score, tier, recommendation, suggested limit (fen)
    (Population.STEADY, 0, 400, RiskTier.LOW, Recommendation.AUTO_APPROVE, 1_750_000),
    (Population.STEADY, 1, 375, RiskTier.LOW, Recommendation.AUTO_APPROVE, 600_000),
    (Population.RECOVERED, 0, 305, RiskTier.MEDIUM, Recommendation.MANUAL_REVIEW, 440_000),
    (Population.RECOVERED, 1, 275, RiskTier.HIGH, Recommendation.MANUAL_REVIEW, 520_000),
    (Population.CHRONIC_LATE, 0, 95, RiskTier.HIGH, Recommendation.AUTO_DECLINE, 0),
    (Population.CHRONIC_LATE, 1, 120, RiskTier.HIGH, Recommendation.AUTO_DECLINE, 0),
    (Population.MULTI_LENDER, 0, 210, RiskTier.HIGH, Recommendation.AUTO_DECLINE, 0),
    (Population.MULTI_LENDER, 2, 185, RiskTier.HIGH, Recommendation.AUTO_DECLINE, 0),
    (Population.THIN_FILE, 0, 270, RiskTier.HIGH, Recommendation.MANUAL_REVIEW, 220_000),
    (Population.THIN_FILE, 1, 295, RiskTier.MEDIUM, Recommendation.MANUAL_REVIEW, 400_000),
    (Population.HIGH_SPENDER, 0, 290, RiskTier.MEDIUM, Recommendation.MANUAL_REVIEW, 1_280_000),
    (Population.HIGH_SPENDER, 1, 300, RiskTier.MEDIUM, Recommendation.MANUAL_REVIEW, 1_360_000),
]


@pytest.mark.parametrize(
    ("population", "seed", "score", "tier", "recommendation", "suggested"),
    GOLDEN,
    ids=[f"{g[0].value}-{g[1]}" for g in GOLDEN],
)
def test_golden_profiles(
    policy: LoadedPolicy,
    population: Population,
    seed: int,
    score: int,
    tier: RiskTier,
    recommendation: Recommendation,
    suggested: int,
) -> None:
    a = assess(policy, make_profile(population, seed))
    assert (a.score, a.risk_tier, a.recommendation, a.suggested_limit_minor) == (
        score,
        tier,
        recommendation,
        suggested,
    )
    assert a.four_eyes_required is (tier is RiskTier.HIGH and suggested > 0)


def test_golden_details(policy: LoadedPolicy) -> None:
    steady = assess(policy, make_profile(Population.STEADY, 1))
    assert steady.route is Route.SCORE_APPROVE
    assert [r.code for r in steady.reasons] == [
        "RC_RECENT_LATE_PAYMENT",
        "RC_REPAYMENT_DELAY",
        "RC_LATE_PAYMENTS",
        "RC_ON_TIME_RATIO",
    ]
    ch = steady.characteristics
    assert (ch.worst_dpd_12m, ch.late_bills_12m, ch.months_since_last_late) == (3, 1, 5)
    assert ch.employment_verified is True
    assert [s.payer for s in ch.payroll_sources] == ["SUZHOU BRIGHT LOGISTICS CO., LTD."]

    stacked = assess(policy, make_profile(Population.MULTI_LENDER, 0))
    assert stacked.route is Route.KNOCKOUT_DECLINE
    assert [k.id for k in stacked.knockouts] == ["KO_LOAN_STACKING"]
    assert stacked.reasons[0].code == "RC_MULTIPLE_LENDERS"


@pytest.mark.parametrize(
    ("population", "expected"),
    [
        (Population.STEADY, {Recommendation.AUTO_APPROVE: 40}),
        (Population.CHRONIC_LATE, {Recommendation.AUTO_DECLINE: 40}),
        (Population.THIN_FILE, {Recommendation.MANUAL_REVIEW: 40}),
        (Population.HIGH_SPENDER, {Recommendation.MANUAL_REVIEW: 40}),
        (Population.RECOVERED, {Recommendation.MANUAL_REVIEW: 39, Recommendation.AUTO_APPROVE: 1}),
        (
            Population.MULTI_LENDER,
            {Recommendation.AUTO_DECLINE: 39, Recommendation.MANUAL_REVIEW: 1},
        ),
    ],
)
def test_population_outcomes(
    policy: LoadedPolicy, population: Population, expected: dict[Recommendation, int]
) -> None:
    outcomes = Counter(assess(policy, make_profile(population, s)).recommendation for s in range(40))
    assert dict(outcomes) == expected


# --- knock-outs and routing ---------------------------------------------------------------------


def test_clean_customer_is_approved_in_full(policy: LoadedPolicy) -> None:
    a = assess(policy, good_input())
    assert a.recommendation is Recommendation.AUTO_APPROVE
    assert a.risk_tier is RiskTier.LOW
    assert a.knockouts == ()
    assert a.suggested_limit_minor == 1_000_000
    assert a.four_eyes_required is False


def test_bill_still_overdue_declines(policy: LoadedPolicy) -> None:
    inp = good_input()
    inp = inp.model_copy(update={"bills": (*inp.bills, bill(AS_OF - 10 * DAY, 0, paid=0))})
    a = assess(policy, inp)
    assert a.recommendation is Recommendation.AUTO_DECLINE
    assert a.route is Route.KNOCKOUT_DECLINE
    assert [k.id for k in a.knockouts] == ["KO_OVERDUE_NOW"]
    assert a.suggested_limit_minor == 0
    assert a.limit_sizing.zeroed_because == "decline knock-out: KO_OVERDUE_NOW"
    assert a.reasons[0].code == "RC_OVERDUE_OUTSTANDING"
    assert a.characteristics.overdue_amount_now_minor == 100_000


def test_closed_account_declines(policy: LoadedPolicy) -> None:
    inp = good_input()
    closed = inp.account.model_copy(update={"status": AccountStatus.CLOSED})
    a = assess(policy, inp.model_copy(update={"account": closed}))
    assert a.recommendation is Recommendation.AUTO_DECLINE
    assert [k.id for k in a.knockouts] == ["KO_ACCOUNT_CLOSED"]


@pytest.mark.parametrize(("dpd", "declined"), [(89, False), (90, True)])
def test_severe_delinquency_declines(policy: LoadedPolicy, dpd: int, declined: bool) -> None:
    inp = good_input()
    inp = inp.model_copy(update={"bills": (*inp.bills[:-1], bill(ago(2), dpd))})
    a = assess(policy, inp)
    assert ("KO_SEVERE_DPD" in [k.id for k in a.knockouts]) is declined
    assert (a.recommendation is Recommendation.AUTO_DECLINE) is declined


@pytest.mark.parametrize(("apps", "declined"), [(5, False), (6, True)])
def test_loan_stacking_declines(policy: LoadedPolicy, apps: int, declined: bool) -> None:
    applications = tuple(
        LoanApplication(
            applied_on=AS_OF - (k + 1) * DAY, lender="分期乐", amount_minor=200_000, small_loan=True
        )
        for k in range(apps)
    )
    a = assess(policy, good_input(loan_applications=applications))
    assert ("KO_LOAN_STACKING" in [k.id for k in a.knockouts]) is declined
    assert (a.recommendation is Recommendation.AUTO_DECLINE) is declined


def test_red_flag_forces_manual_review_over_approval(policy: LoadedPolicy) -> None:
    a = assess(policy, good_input(red_flags=(RED_FLAG,)))
    assert a.recommendation is Recommendation.MANUAL_REVIEW
    assert a.route is Route.KNOCKOUT_FORCE_REVIEW
    assert a.red_flags == (RED_FLAG,)
    assert a.suggested_limit_minor == 1_000_000  # the reviewer still sees what would be offered
    assert a.reasons[0].code == "RC_DOCUMENTS_UNDER_REVIEW"


def test_red_flag_forces_manual_review_over_decline(policy: LoadedPolicy) -> None:
    inp = good_input(red_flags=(RED_FLAG,))
    inp = inp.model_copy(update={"bills": (*inp.bills, bill(AS_OF - 10 * DAY, 0, paid=0))})
    a = assess(policy, inp)
    assert a.recommendation is Recommendation.MANUAL_REVIEW
    assert [k.action for k in a.knockouts] == [KnockoutAction.DECLINE, KnockoutAction.FORCE_REVIEW]
    assert a.suggested_limit_minor == 0  # a decline knock-out still zeroes the suggestion

    chronic = make_profile(Population.CHRONIC_LATE, 0).model_copy(update={"red_flags": (RED_FLAG,)})
    assert assess(policy, chronic).recommendation is Recommendation.MANUAL_REVIEW


def test_missing_documents_refer(policy: LoadedPolicy) -> None:
    a = assess(policy, good_input(accepted_document_types=(DocumentType.INCOME_PROOF,)))
    assert a.recommendation is Recommendation.MANUAL_REVIEW
    assert a.route is Route.KNOCKOUT_REFER
    assert a.characteristics.missing_documents == (DocumentType.BANK_STATEMENT,)
    assert [k.id for k in a.knockouts] == ["KO_DOCUMENTS_MISSING"]


def test_short_statement_refers(policy: LoadedPolicy) -> None:
    a = assess(policy, good_input(transactions=payroll_statement(months=2)))
    assert a.characteristics.statement_months_covered == 2
    assert a.route is Route.KNOCKOUT_REFER
    assert [k.id for k in a.knockouts] == ["KO_SHORT_STATEMENT"]


def test_score_decline_zeroes_the_limit(policy: LoadedPolicy) -> None:
    a = assess(policy, make_profile(Population.CHRONIC_LATE, 0))
    assert a.route is Route.SCORE_DECLINE
    assert a.suggested_limit_minor == 0
    assert a.limit_sizing.zeroed_because == "score 95 below 240"
    assert a.limit_sizing.unrounded_minor > 0  # what it would have been, for the reviewer


# --- limit sizing and four-eyes -----------------------------------------------------------------


def test_ability_to_pay_caps_and_rounds_down(policy: LoadedPolicy) -> None:
    # disposable = 10,000 - 6,938.28 = 3,061.72 yuan; cap = 2 x that = 6,123.44 -> 6,100 yuan
    a = assess(policy, good_input(debt=693_828))
    s = a.limit_sizing
    assert s.disposable_income_minor == 306_172
    assert s.ability_to_pay_cap_minor == 612_344
    assert a.suggested_limit_minor == 610_000
    assert a.suggested_limit_minor % s.rounding_unit_minor == 0


def test_requested_below_original_caps(policy: LoadedPolicy) -> None:
    a = assess(policy, good_input(requested_limit_minor=455_555))
    assert a.suggested_limit_minor == 450_000


def test_medium_tier_gets_partial_share(policy: LoadedPolicy) -> None:
    a = assess(policy, make_profile(Population.HIGH_SPENDER, 0))
    assert a.risk_tier is RiskTier.MEDIUM
    assert a.limit_sizing.tier_cap_minor == a.input.account.original_limit_minor * 8 // 10
    assert a.suggested_limit_minor == 1_280_000


def test_no_affordable_limit_is_not_auto_approved(policy: LoadedPolicy) -> None:
    a = assess(policy, good_input(debt=1_000_000))
    assert policy.policy.cutoffs.approves(a.score, a.pd)
    assert a.limit_sizing.ability_to_pay_cap_minor == 0
    assert a.route is Route.NO_AFFORDABLE_LIMIT
    assert a.recommendation is Recommendation.MANUAL_REVIEW


def test_large_approval_needs_four_eyes_and_a_human(policy: LoadedPolicy) -> None:
    a = assess(policy, good_input(salary=2_000_000, limit=2_500_000))
    assert a.suggested_limit_minor == 2_500_000
    assert a.four_eyes_required is True
    assert a.route is Route.FOUR_EYES
    assert a.recommendation is Recommendation.MANUAL_REVIEW


@pytest.mark.parametrize(
    ("amount", "tier", "required"),
    [
        (1_999_999, RiskTier.LOW, False),
        (2_000_000, RiskTier.LOW, True),
        (100_000, RiskTier.MEDIUM, False),
        (100_000, RiskTier.HIGH, True),
        (0, RiskTier.HIGH, False),  # nothing approved, nothing to double-check
    ],
)
def test_requires_four_eyes(policy: LoadedPolicy, amount: int, tier: RiskTier, required: bool) -> None:
    assert requires_four_eyes(policy.policy, amount, tier) is required


# --- reasons ---------------------------------------------------------------------------------


def test_principal_reasons_order(policy: LoadedPolicy) -> None:
    a = assess(policy, make_profile(Population.CHRONIC_LATE, 3))
    assert 1 <= len(a.reasons) <= 4
    assert all(r.points_lost is not None for r in a.reasons)  # no knock-out fired here
    lost = [r.points_lost or 0 for r in a.reasons]
    assert lost == sorted(lost, reverse=True)
    # ties keep scorecard order, and nothing not listed lost more than the last listed
    order = [c.characteristic for c in a.contributions]
    for first, second in zip(a.reasons, a.reasons[1:], strict=False):
        if first.points_lost == second.points_lost:
            assert order.index(first.characteristic or "") < order.index(second.characteristic or "")
    listed = {r.characteristic for r in a.reasons}
    assert max(c.points_lost for c in a.contributions if c.characteristic not in listed) <= lost[-1]


def test_reason_texts(policy: LoadedPolicy) -> None:
    a = assess(policy, make_profile(Population.CHRONIC_LATE, 0))
    r = a.reasons[0]
    text = policy.policy.reasons[r.code]
    assert (r.en, r.zh_cn) == (text.en, text.zh_cn)
    assert r.text("zh-CN") == r.zh_cn
    assert r.text("en") == r.en
    assert len({x.code for x in a.reasons}) == len(a.reasons)


# --- the record ------------------------------------------------------------------------------


@pytest.mark.parametrize("population", list(Population))
def test_assessment_json_round_trip(policy: LoadedPolicy, population: Population) -> None:
    a = assess(policy, make_profile(population, 7).model_copy(update={"red_flags": (RED_FLAG,)}))
    data = a.model_dump(mode="json")
    text = json.dumps(data, ensure_ascii=False)
    assert Assessment.model_validate(json.loads(text)) == a
    assert Assessment.model_validate_json(a.model_dump_json()) == a
    assert AssessmentInput.model_validate(data["input"]) == a.input
    assert data["policy_id"] == "limit-restore-v1"
    assert data["policy_hash"] == policy.content_hash


def test_assess_is_deterministic(policy: LoadedPolicy) -> None:
    inp = make_profile(Population.RECOVERED, 11)
    snapshot = inp.model_dump(mode="json")
    assert assess(policy, inp) == assess(policy, inp)
    assert inp.model_dump(mode="json") == snapshot


def test_callers_decimal_context_does_not_leak_in(policy: LoadedPolicy) -> None:
    inp = make_profile(Population.HIGH_SPENDER, 4)
    expected = assess(policy, inp)
    with decimal.localcontext(prec=3, rounding=decimal.ROUND_DOWN):
        assert assess(policy, inp) == expected
