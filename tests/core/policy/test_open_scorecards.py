"""The policy format of docs/scorecards.md: sources, bin kinds, exact points, calibration, and
which sections a scorecard alone may leave out."""

from __future__ import annotations

import math
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.policy import assess, load_default_policy
from core.policy.loader import load_policy, load_policy_bytes, load_scorecard, load_scorecard_bytes
from core.policy.model import PolicyError, Recommendation, RiskTier, ScorecardPolicy
from core.policy.scoring import Unscorable, route_for, score_card
from tests.core.policy.factories import base_input, make_population

FIXTURES = Path(__file__).parent / "fixtures"

CATEGORICAL_CARD = """
id = "cat-card"
[scorecard]
base_points = 100.5
[[scorecard.characteristics]]
name = "housing"
source = "input:housing"
type = "categorical"
reason = "RC_HOUSING"
missing_points = -3.25
else_points = -10
bins = [
  { values = ["own"], points = 7.5 },
  { values = ["rent", "for free"], points = -15, label = "not owned" },
]
[[scorecard.characteristics]]
name = "age"
source = "input:age_in_years"
reason = "RC_AGE"
special = [ { values = [-1, 999], points = 0, label = "unknown age" } ]
bins = [
  { upper = 26, points = -34 },
  { lower = 26, upper = 35, points = 0.25 },
  { lower = 35, points = 12 },
]
"""


def card_policy(text: str = CATEGORICAL_CARD) -> ScorecardPolicy:
    return load_scorecard_bytes(text.encode()).policy


# --- the shipped policy -----------------------------------------------------------------------


def test_shipped_policy_declares_every_source_and_rounding() -> None:
    card = load_default_policy().policy.scorecard
    assert all(c.source is not None and c.source.startswith("feature:") for c in card.characteristics)
    assert card.score_rounding.value == "half_up"


def test_rewritten_policy_scores_the_seeded_population_as_the_old_format_did() -> None:
    """policy/limit-restore-v1.toml in the new format against the file as it was (format 1):
    every result identical on 10,000 seeded profiles, but for the policy hash and the PD the
    new calibration adds."""
    old = load_policy(FIXTURES / "limit-restore-v1-format1.toml")
    new = load_default_policy()
    assert old.content_hash != new.content_hash
    population = make_population(10_000, seed=20261130)
    outcomes: set[Recommendation] = set()
    for _, profile in population:
        before = assess(old, profile)
        after = assess(new, profile)
        assert after.pd is not None and before.pd is None  # the rewrite adds a calibration
        assert after == before.model_copy(update={"policy_hash": new.content_hash, "pd": after.pd})
        outcomes.add(after.recommendation)
    assert outcomes == set(Recommendation)  # the population reaches every route


# --- bins --------------------------------------------------------------------------------------


def test_categorical_bins_else_missing_and_special() -> None:
    p = card_policy()
    assert score_card(p.scorecard, {"housing": "own", "age_in_years": "40"}).exact == Decimal("120.0")
    for housing, points in (("rent", -15), ("for free", -15), ("castle", -10), ("", Decimal("-3.25"))):
        got = score_card(p.scorecard, {"housing": housing, "age_in_years": 30})
        assert got.contributions[0].points == Decimal(points)
    assert score_card(p.scorecard, {"housing": None, "age_in_years": 30}).contributions[0].bin == "missing"
    assert score_card(p.scorecard, {"housing": "castle", "age_in_years": 30}).contributions[0].bin == "else"
    special = score_card(p.scorecard, {"housing": "own", "age_in_years": "-1"}).contributions[1]
    assert (special.bin, special.points) == ("unknown age", 0)
    low = score_card(p.scorecard, {"housing": "own", "age_in_years": "-40"}).contributions[1]
    assert low.points == -34  # the open lower end takes negative values


def test_unscorable_values_name_the_characteristic() -> None:
    p = card_policy()
    with pytest.raises(Unscorable) as info:
        score_card(p.scorecard, {"housing": "own"})  # age missing, no missing_points
    assert info.value.characteristic == "age"
    assert "missing" in info.value.reason
    with pytest.raises(Unscorable, match="not a number"):
        score_card(p.scorecard, {"housing": "own", "age_in_years": "forty"})


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.none(), st.text(max_size=12), st.integers(), st.booleans()))
def test_categorical_else_and_missing_catch_every_value(value: object) -> None:
    p = card_policy()
    got = score_card(p.scorecard, {"housing": value, "age_in_years": 30})  # type: ignore[dict-item]
    assert got.contributions[0].bin in {"{own}", "not owned", "else", "missing"}


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.decimals(min_value=-1000, max_value=1000, places=3, allow_nan=False), min_size=1, max_size=8),
    st.decimals(min_value=-500, max_value=500, places=2, allow_nan=False),
)
def test_fractional_points_sum_exactly_and_round_once(points: list[Decimal], base: Decimal) -> None:
    chars = "\n".join(
        f'[[scorecard.characteristics]]\nname = "c{i}"\nsource = "input:c{i}"\nreason = "RC_C"\n'
        f"bins = [ {{ points = {p} }} ]\n"
        for i, p in enumerate(points)
    )
    p = card_policy(f'id = "frac"\n[scorecard]\nbase_points = {base}\nscore_rounding = "half_up"\n{chars}')
    got = score_card(p.scorecard, {f"c{i}": 1 for i in range(len(points))})
    exact = base + sum(points, Decimal(0))
    assert got.exact == exact
    assert got.score == int(exact.quantize(Decimal(1), rounding="ROUND_HALF_UP"))


def test_rounding_happens_once_at_the_end() -> None:
    text = 'id = "r"\n[scorecard]\nscore_rounding = "{mode}"\n' + "".join(
        f'[[scorecard.characteristics]]\nname = "c{i}"\nsource = "input:c{i}"\nreason = "RC_C"\n'
        "bins = [ { points = 0.4 } ]\n"
        for i in range(3)
    )
    values = {"c0": 0, "c1": 0, "c2": 0}
    for mode, score in (("half_up", 1), ("floor", 1), ("ceiling", 2), ("half_even", 1)):
        got = score_card(card_policy(text.replace("{mode}", mode)).scorecard, values)
        assert (got.exact, got.score) == (Decimal("1.2"), score)  # each 0.4 alone would round to 0


@st.composite
def monotone_card(draw: st.DrawFn) -> tuple[str, list[Decimal]]:
    edges = sorted(set(draw(st.lists(st.integers(-50, 50), min_size=1, max_size=6))))
    steps = draw(st.lists(st.decimals(0, 20, places=2), min_size=len(edges) + 1, max_size=len(edges) + 1))
    points: list[Decimal] = []
    total = Decimal(draw(st.integers(-30, 30)))
    for step in steps:
        total += step
        points.append(total)
    bins = []
    for i, pts in enumerate(points):
        lower = f"lower = {edges[i - 1]}, " if i > 0 else ""
        upper = f"upper = {edges[i]}, " if i < len(edges) else ""
        bins.append(f"{{ {lower}{upper}points = {pts} }}")
    text = (
        'id = "mono"\n[[scorecard.characteristics]]\nname = "x"\nsource = "input:x"\n'
        f'direction = "higher_is_better"\nreason = "RC_X"\nbins = [ {", ".join(bins)} ]\n'
    )
    return text, points


@settings(max_examples=150, deadline=None)
@given(monotone_card(), st.decimals(-80, 80, places=2), st.decimals(-80, 80, places=2))
def test_a_monotone_card_gives_monotone_scores(
    card: tuple[str, list[Decimal]], a: Decimal, b: Decimal
) -> None:
    p = card_policy(card[0])
    low, high = sorted((a, b))
    assert score_card(p.scorecard, {"x": low}).exact <= score_card(p.scorecard, {"x": high}).exact


# --- calibration -------------------------------------------------------------------------------

CALIBRATED = CATEGORICAL_CARD.replace(
    "base_points = 100.5\n",
    "base_points = 100.5\n[scorecard.calibration]\npoints0 = 600\nodds0 = 0.0526315789\npdo = 50\n",
)


def test_pd_follows_points_to_odds() -> None:
    cal = card_policy(CALIBRATED).scorecard.calibration
    assert cal is not None
    odds0 = Decimal("0.0526315789")
    assert cal.pd(Decimal(600)) == (odds0 / (1 + odds0)).quantize(Decimal("0.000001"))
    for score in (300, 450, 550, 650, 800):
        odds = float(odds0) * 2 ** ((600 - score) / 50)
        assert math.isclose(float(cal.pd(Decimal(score))), odds / (1 + odds), abs_tol=1e-6)
    assert cal.pd(Decimal(-100000)) == 1 and cal.pd(Decimal(100000)) == 0
    assert abs(cal.score_for_pd(cal.pd(Decimal(520))) - 520) < 1


def test_pd_cutoffs_and_tiers_route() -> None:
    routing = """
[cutoffs]
auto_approve_max_pd = 0.05
auto_decline_above_pd = 0.5
[[risk_tiers]]
tier = "LOW"
max_pd = 0.05
[[risk_tiers]]
tier = "HIGH"
max_pd = 1
"""
    p = card_policy(CALIBRATED + routing)
    card = score_card(p.scorecard, {"housing": "own", "age_in_years": 40})
    assert card.pd is not None and card.pd > Decimal("0.5")  # 120 points is far below 600
    assert route_for(p, card) is Recommendation.AUTO_DECLINE
    with pytest.raises(PolicyError, match=r"a PD cut-off needs scorecard\.calibration"):
        card_policy(CATEGORICAL_CARD + routing)
    bad_tiers = routing.replace("max_pd = 1\n", "max_pd = 0.9\n")
    with pytest.raises(PolicyError, match="the last tier must reach PD 1"):
        card_policy(CALIBRATED + bad_tiers)
    assert p.risk_tiers is not None and p.risk_tiers[0].tier is RiskTier.LOW


# --- optional sections -------------------------------------------------------------------------


def test_a_scorecard_alone_is_valid_for_scoring_but_not_for_appeals(tmp_path: Path) -> None:
    path = tmp_path / "card.toml"
    path.write_text(CATEGORICAL_CARD, encoding="utf-8")
    assert load_scorecard(path).policy.cutoffs is None
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    issues = {i.path: i.message for i in info.value.issues}
    for section in ("cutoffs", "risk_tiers", "limit_sizing", "four_eyes", "sla", "documents", "appeals"):
        assert issues[section].startswith("required where the policy is deployed for appeals")
    assert (
        issues["scorecard.characteristics[0].reason"] == "unknown reason code 'RC_HOUSING' (not in reasons)"
    )


def test_placeholder_reason_texts_block_appeals_only() -> None:
    shipped = (Path(load_default_policy().source)).read_text(encoding="utf-8")
    text = shipped.replace(
        'en = "Your account with us has a short history."', 'en = "TODO: say why RC_SHORT_HISTORY"'
    )
    assert load_scorecard_bytes(text.encode()).policy.reasons["RC_SHORT_HISTORY"].en.startswith("TODO")
    with pytest.raises(PolicyError, match=r"reasons\.RC_SHORT_HISTORY\.en: placeholder text"):
        load_policy_bytes(text.encode())


def test_input_fields_reach_an_appeal_assessment() -> None:
    shipped = Path(load_default_policy().source).read_text(encoding="utf-8")
    extra = """
[[scorecard.characteristics]]
name = "bureau_band"
source = "input:bureau_band"
type = "categorical"
reason = "RC_SHORT_HISTORY"
missing_points = 0
else_points = 0
bins = [ { values = ["A"], points = 20 }, { values = ["B", "C"], points = 5 } ]
"""
    marker = "# --- routing"
    loaded = load_policy_bytes(shipped.replace(marker, extra + marker).encode())
    plain = assess(loaded, base_input())
    with_band = assess(loaded, base_input(fields={"bureau_band": "A"}))
    assert with_band.score == plain.score + 20
    contribution = with_band.contributions[-1]
    assert (contribution.characteristic, contribution.category, contribution.points) == (
        "bureau_band",
        "A",
        20,
    )


def test_an_input_field_may_not_shadow_a_feature() -> None:
    text = CATEGORICAL_CARD.replace('source = "input:age_in_years"', 'source = "input:worst_dpd_12m"')
    with pytest.raises(PolicyError, match="input field 'worst_dpd_12m' has a feature's name"):
        card_policy(text)


def test_reasons_rank_points_lost_for_categorical_cards() -> None:
    shipped = Path(load_default_policy().source).read_text(encoding="utf-8")
    extra = """
[[scorecard.characteristics]]
name = "bureau_band"
source = "input:bureau_band"
type = "categorical"
reason = "RC_CREDIT_PRODUCTS"
missing_points = 0
else_points = 0
bins = [ { values = ["A"], points = 200 } ]
"""
    marker = "# --- routing"
    loaded = load_policy_bytes(shipped.replace(marker, extra + marker).encode())
    result = assess(loaded, base_input(fields={"bureau_band": "Z"}))
    first = result.reasons[0] if not result.knockouts else next(r for r in result.reasons if r.characteristic)
    assert (first.characteristic, first.points_lost) == ("bureau_band", 200)


def test_a_listed_category_is_not_a_missing_token() -> None:
    text = CATEGORICAL_CARD.replace(
        '{ values = ["own"], points = 7.5 }', '{ values = ["own", "none"], points = 7.5 }'
    )
    p = card_policy(text)
    assert score_card(p.scorecard, {"housing": "none", "age_in_years": 30}).contributions[
        0
    ].points == Decimal("7.5")
    assert score_card(p.scorecard, {"housing": "NA", "age_in_years": 30}).contributions[0].bin == "missing"
