"""The backtest's metrics against independent computations (sklearn, numpy, by hand), and the
backtest of a generated data file scored by the real engine."""

from __future__ import annotations

import math
import random
import re
from collections import Counter
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.policy.backtest import (
    SHARE_FLOOR,
    TARGET_NOT_0_1,
    BacktestInputError,
    BacktestResult,
    RowScore,
    Sample,
    auc,
    band_index,
    band_labels,
    gini,
    ks,
    parse_band_edges,
    parse_target,
    quantile_edges,
    reading,
    render_text,
    roc_points,
    run_backtest,
    score_psi,
    stability_index,
    summarise,
)
from core.policy.backtest_report import distribution_svg, render_html, roc_svg
from core.policy.loader import LoadedScorecard, load_scorecard
from core.policy.model import Recommendation


def labelled_scores(rng: random.Random, n: int, *, tie_grid: int = 5) -> tuple[list[Decimal], list[bool]]:
    """Scores where bads tend to score lower, on a coarse grid so that ties are common."""
    scores: list[Decimal] = []
    bads: list[bool] = []
    for _ in range(n):
        bad = rng.random() < 0.25
        raw = rng.gauss(480 if bad else 540, 60)
        scores.append(Decimal(round(raw / tie_grid) * tie_grid) + Decimal("0.25"))
        bads.append(bad)
    return scores, bads


def direct_ks(scores: list[Decimal], bads: list[bool]) -> float:
    s = np.array([float(x) for x in scores])
    b = np.array(bads)
    bad_scores, good_scores = s[b], s[~b]
    return max(abs(float(np.mean(bad_scores <= t)) - float(np.mean(good_scores <= t))) for t in np.unique(s))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_auc_and_ks_equal_independent_computations(seed: int) -> None:
    scores, bads = labelled_scores(random.Random(seed), 2_000)
    assert len(set(scores)) < 200  # many ties

    expected_auc = roc_auc_score([int(b) for b in bads], [-float(s) for s in scores])
    assert auc(scores, bads) == pytest.approx(expected_auc, abs=1e-12)
    assert gini(auc(scores, bads)) == pytest.approx(2 * expected_auc - 1, abs=1e-12)

    result = ks(scores, bads)
    assert result is not None
    assert result.value == pytest.approx(direct_ks(scores, bads), abs=1e-12)
    assert result.value > 0.2  # the generator separates bads from goods


def test_roc_curve_area_is_the_auc() -> None:
    scores, bads = labelled_scores(random.Random(7), 500)
    points = roc_points(scores, bads)
    assert points[0] == (0.0, 0.0)
    assert points[-1] == (1.0, 1.0)
    fpr, tpr = zip(*points, strict=True)
    assert float(np.trapezoid(tpr, fpr)) == pytest.approx(auc(scores, bads), abs=1e-12)


def test_auc_small_cases_by_hand() -> None:
    # bads 1, 2; goods 2, 3: pairs (1<2) (1<3) (2=2: half) (2<3) -> 3.5 / 4
    assert auc([1, 2, 2, 3], [True, True, False, False]) == 0.875
    assert auc([5, 5, 5], [True, False, False]) == 0.5
    assert auc([9, 1], [True, False]) == 0.0
    assert auc([1, 2], [False, False]) is None
    assert ks([1, 2], [True, True]) is None


def test_ks_reports_where_it_is_reached() -> None:
    result = ks([1, 2, 3, 4], [True, True, False, False])
    assert result is not None
    assert result.value == 1.0
    assert result.score == 2


def test_deciles_and_bands() -> None:
    scores = list(range(1, 101))
    edges = quantile_edges(scores)
    assert edges == (11, 21, 31, 41, 51, 61, 71, 81, 91)
    assert [band_index(edges, s) for s in (1, 10, 11, 90, 91, 500)] == [0, 0, 1, 8, 9, 9]
    assert band_labels(edges)[0] == "< 11"
    assert band_labels(edges)[1] == "[11, 21)"
    assert band_labels(edges)[-1] == ">= 91"
    # ties merge bands rather than leave empty ones
    assert quantile_edges([5] * 50 + [7] * 50) == (7,)
    assert quantile_edges([5] * 10) == ()


def test_psi_of_a_sample_against_itself_is_zero() -> None:
    scores, _ = labelled_scores(random.Random(11), 1_000)
    psi = score_psi(scores, scores)
    assert psi.index == 0.0
    assert psi.reading == "stable"


def test_psi_against_a_shifted_sample_by_hand() -> None:
    baseline = list(range(1, 101))  # deciles: ten bands of ten rows
    shifted = list(range(11, 111))  # nothing below 11; 20 rows at or above 91
    psi = score_psi(baseline, shifted)
    # first band: share 0 -> the floor; last band: 0.2 against 0.1; the others equal
    expected = (SHARE_FLOOR - 0.1) * math.log(SHARE_FLOOR / 0.1) + (0.2 - 0.1) * math.log(0.2 / 0.1)
    assert psi.index == pytest.approx(expected, rel=1e-12)
    assert psi.index == pytest.approx(0.7594, abs=1e-4)
    assert psi.reading == "shift"
    assert [r.actual_count for r in psi.rows] == [0, 10, 10, 10, 10, 10, 10, 10, 10, 20]


def test_stability_index_by_hand_and_reading() -> None:
    s = stability_index("purpose", ["car", "tv"], {"car": 50, "tv": 50}, {"car": 60, "tv": 40})
    expected = (0.6 - 0.5) * math.log(0.6 / 0.5) + (0.4 - 0.5) * math.log(0.4 / 0.5)
    assert s.index == pytest.approx(expected)
    assert s.reading == "stable"
    assert (reading(0.0999), reading(0.1), reading(0.25), reading(0.2501)) == (
        "stable",
        "watch",
        "watch",
        "shift",
    )


@pytest.mark.parametrize(
    ("text", "bad"),
    [
        ("1", True),
        ("0", False),
        (" BAD ", True),
        ("good", False),
        ("True", True),
        ("false", False),
        ("1.0", True),
        ("0.0", False),
        ("2", None),
        ("", None),
        ("NaN", None),
        (None, None),
    ],
)
def test_target_values(text: str | None, bad: bool | None) -> None:
    assert parse_target(text) is bad


# --------------------------------------------------------------------------------------------
# The backtest of a generated file, scored by the real engine

CARD = """
id = "backtest-test"

[scorecard]
base_points = 400
{calibration}

[[scorecard.characteristics]]
name = "age"
source = "input:age"
reason = "RC_AGE"
missing_points = 5
bins = [
  {{ upper = 25, points = 0 }},
  {{ lower = 25, upper = 40, points = 20.5 }},
  {{ lower = 40, points = 40 }},
]
special = [ {{ values = [-1], points = 3, label = "no record" }} ]

[[scorecard.characteristics]]
name = "purpose"
source = "input:purpose"
type = "categorical"
reason = "RC_PURPOSE"
else_points = 10
bins = [ {{ values = ["car"], points = 30 }}, {{ values = ["tv", "<script>"], points = 15 }} ]
{routing}
"""

CALIBRATION = """
[scorecard.calibration]
points0 = 600
odds0 = 0.0526315789
pdo = 50
"""

ROUTING = """
[cutoffs]
auto_approve_min = 440
auto_decline_below = 415

[[knockouts]]
id = "KO_OVERDUE"
characteristic = "input:overdue_now"
at_least = 1
action = "decline"
reason = "RC_OVERDUE"
"""

AGE_POINTS = ((25, Decimal(0)), (40, Decimal("20.5")), (None, Decimal(40)))
PURPOSE_POINTS = {"car": Decimal(30), "tv": Decimal(15), "<script>": Decimal(15)}


def write_card(tmp_path: Path, *, calibrated: bool = True, routing: bool = True) -> LoadedScorecard:
    path = tmp_path / "card.toml"
    path.write_text(
        CARD.format(calibration=CALIBRATION if calibrated else "", routing=ROUTING if routing else ""),
        encoding="utf-8",
    )
    return load_scorecard(path)


def expected_exact(age: str, purpose: str) -> Decimal | None:
    """The card above, by hand: None when the row cannot be scored."""
    if purpose == "":
        return None
    points = Decimal(400) + PURPOSE_POINTS.get(purpose, Decimal(10))
    if age in ("", "NA"):
        return points + 5
    if age == "-1":
        return points + 3
    value = int(age)
    return points + next(p for upper, p in AGE_POINTS if upper is None or value < upper)


@dataclass
class Generated:
    path: Path
    exact: list[Decimal]  # scorable rows, file order
    bads: list[bool]
    overdue: list[bool]


def write_data(
    path: Path, rng: random.Random, n: int, *, age_shift: int = 0, odd_rows: bool = True
) -> Generated:
    """A labelled file for the card above: bads more likely at low scores; some rows unscorable
    (no purpose, an age that is not a number, a target that is not 0/1)."""
    rows = ["age,purpose,overdue_now,bad"]
    out = Generated(path, [], [], [])
    for _ in range(n):
        age = rng.choice([str(rng.randint(18, 70) + age_shift), str(rng.randint(18, 70)), "-1", "", "NA"])
        purpose = rng.choice(["car", "tv", "<script>", "radio", "", "car"])
        overdue = rng.random() < 0.05
        exact = expected_exact(age, purpose)
        bad = rng.random() < (0.5 if exact is None or exact < 430 else 0.15)
        target = rng.choice(["1", "bad"] if bad else ["0", "good"])
        rows.append(f"{age},{purpose},{int(overdue)},{target}")
        if exact is not None:
            out.exact.append(exact)
            out.bads.append(bad)
            out.overdue.append(overdue)
    if odd_rows:
        rows += ["abc,car,0,1", "30,car,0,maybe"]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8-sig")  # with a byte-order mark
    return out


def test_backtest_figures_equal_independent_computations(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.csv", random.Random(5), 800)
    result = run_backtest(write_card(tmp_path), data.path, "bad")

    assert result.rows_read == 802
    assert result.scored == len(data.exact)
    assert result.bads == sum(data.bads)
    assert result.bad_rate == pytest.approx(sum(data.bads) / len(data.bads))
    expected_auc = roc_auc_score([int(b) for b in data.bads], [-float(s) for s in data.exact])
    assert result.auc == pytest.approx(expected_auc, abs=1e-12)
    assert result.ks is not None
    assert result.ks.value == pytest.approx(direct_ks(data.exact, data.bads), abs=1e-12)
    assert result.auc is not None and result.auc > 0.6

    assert sum(b.volume for b in result.bands) == result.scored
    assert sum(b.bads for b in result.bands) == result.bads
    assert result.bands[-1].cum_volume == result.scored
    assert all(b.mean_pd is not None for b in result.bands if b.volume)
    # bands run from the highest scores down: the mean PD rises
    pds = [b.mean_pd for b in result.bands if b.mean_pd is not None]
    assert pds == sorted(pds)


def test_unscorable_rows_are_counted_with_their_reasons(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.csv", random.Random(6), 300)
    result = run_backtest(write_card(tmp_path), data.path, "bad")
    no_purpose = result.rows_read - 2 - result.scored
    assert result.unscorable == {
        "purpose: missing value and the characteristic has no missing_points": no_purpose,
        "age: not a number: 'abc'": 1,
        TARGET_NOT_0_1: 1,
    }
    assert result.unscored == result.rows_read - result.scored
    assert "Rows not scored: " in render_text(result)


def test_routing_by_cutoffs_and_knockouts(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.csv", random.Random(8), 600)
    result = run_backtest(write_card(tmp_path), data.path, "bad")
    assert result.routing is not None
    assert "KO_OVERDUE" in result.routing.basis

    expected: Counter[tuple[str, bool]] = Counter()
    for exact, bad, overdue in zip(data.exact, data.bads, data.overdue, strict=True):
        score = int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        if overdue or score < 415:
            expected["declined", bad] += 1
        elif score >= 440:
            expected["approved", bad] += 1
        else:
            expected["manual", bad] += 1
    c = result.routing.confusion
    assert (c.approved_good, c.approved_bad) == (expected["approved", False], expected["approved", True])
    assert (c.manual_good, c.manual_bad) == (expected["manual", False], expected["manual", True])
    assert (c.declined_good, c.declined_bad) == (expected["declined", False], expected["declined", True])
    by_outcome = {o.outcome: o for o in result.routing.outcomes}
    assert by_outcome[Recommendation.AUTO_DECLINE].volume == c.declined_good + c.declined_bad
    assert by_outcome[Recommendation.AUTO_APPROVE].bads == c.approved_bad


def test_a_scorecard_alone_has_no_routing_and_no_pd(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.csv", random.Random(9), 200)
    result = run_backtest(write_card(tmp_path, calibrated=False, routing=False), data.path, "bad")
    assert result.routing is None
    assert all(b.mean_pd is None for b in result.bands)
    assert "mean PD" not in render_text(result)
    assert "no cut-offs" in render_text(result)


def test_given_band_edges(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.csv", random.Random(10), 300)
    result = run_backtest(write_card(tmp_path), data.path, "bad", band_edges=parse_band_edges("420, 440"))
    assert [b.label for b in result.bands] == [">= 440", "[420, 440)", "< 420"]
    assert result.bands[0].volume == sum(1 for s in data.exact if s >= 440)
    assert result.bands[2].bads == sum(1 for s, b in zip(data.exact, data.bads, strict=True) if b and s < 420)
    with pytest.raises(BacktestInputError, match="increase"):
        parse_band_edges("500,400")


def test_stability_against_a_baseline(tmp_path: Path) -> None:
    card = write_card(tmp_path)
    data = write_data(tmp_path / "data.csv", random.Random(12), 500, odd_rows=False)
    # the same rows without their target: a baseline needs none
    unlabelled = tmp_path / "unlabelled.csv"
    lines = data.path.read_text(encoding="utf-8-sig").splitlines()
    unlabelled.write_text("\n".join(line.rsplit(",", 1)[0] for line in lines) + "\n", encoding="utf-8")
    same = run_backtest(card, data.path, "bad", baseline=unlabelled)
    assert same.baseline is not None
    assert same.baseline.psi.index == 0.0
    assert all(s.index == 0.0 for s in same.baseline.csi)
    assert [s.name for s in same.baseline.csi] == ["age", "purpose"]
    # the bins are the engine's labels, in the card's order
    assert [r.label for r in same.baseline.csi[1].rows] == ["{car}", "{tv, <script>}", "else"]

    older = write_data(tmp_path / "older.csv", random.Random(13), 500, age_shift=-15, odd_rows=False)
    shifted = run_backtest(card, data.path, "bad", baseline=older.path)
    assert shifted.baseline is not None
    age = shifted.baseline.csi[0]
    assert age.index > 0.02
    counts = {r.label: (r.baseline_count, r.actual_count) for r in age.rows}
    assert counts["(-∞, 25)"][0] > counts["(-∞, 25)"][1]  # the baseline had more young rows


def test_missing_target_column_and_no_scorable_rows(tmp_path: Path) -> None:
    card = write_card(tmp_path)
    data = write_data(tmp_path / "data.csv", random.Random(14), 20)
    with pytest.raises(BacktestInputError, match="no target column 'default'"):
        run_backtest(card, data.path, "default")
    empty = tmp_path / "empty.csv"
    empty.write_text("age,purpose,bad\n30,,1\n", encoding="utf-8")
    with pytest.raises(BacktestInputError, match="no scorable row"):
        run_backtest(card, empty, "bad")
    with pytest.raises(BacktestInputError, match="no such file"):
        run_backtest(card, tmp_path / "absent.csv", "bad")


# --------------------------------------------------------------------------------------------
# The HTML report


def test_html_report_has_the_figures_escapes_values_and_valid_svg(tmp_path: Path) -> None:
    data = write_data(tmp_path / "data.csv", random.Random(15), 400)
    result = run_backtest(write_card(tmp_path), data.path, "bad", baseline=data.path)
    page = render_html(result)

    assert f"{result.auc:.4f}" in page
    assert f"{result.gini:.4f}" in page
    assert result.ks is not None and f"{result.ks.value:.4f}" in page
    for band in result.bands:
        assert f">{band.volume}<" in page
    # the hostile category is shown, escaped, and never as markup
    assert "{tv, &lt;script&gt;}" in page
    assert "<script" not in page.lower()
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page

    svgs = re.findall(r"<svg\b.*?</svg>", page, flags=re.DOTALL)
    assert len(svgs) == 2
    for svg in svgs:
        root = ElementTree.fromstring(svg)
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
    roc = ElementTree.fromstring(svgs[0])
    polyline = roc.find("{http://www.w3.org/2000/svg}polyline")
    assert polyline is not None
    assert polyline.get("points", "").startswith("48,272")  # the curve starts at (0, 0)


def test_charts_escape_band_labels() -> None:
    result = _tiny_result()
    svg = distribution_svg(replace(result, bands=tuple(replace(b, label="<b>&") for b in result.bands)))
    root = ElementTree.fromstring(str(svg))
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "<b>&" in texts
    assert ElementTree.fromstring(str(roc_svg(result))) is not None


def _tiny_result() -> BacktestResult:
    sample = Sample(source="tiny.csv", columns=["s"], rows_read=4)
    for exact, bad in ((1, True), (2, True), (2, False), (3, False)):
        sample.scores.append(RowScore(Decimal(exact), exact, None, (("c", "x"),), None))
        sample.bads.append(bad)
    return summarise(policy_id="p", policy_hash="0" * 64, policy_source="p.toml", target="bad", sample=sample)


def test_summary_of_plain_rows() -> None:
    result = _tiny_result()
    assert result.auc == 0.875
    assert result.gini == 0.75
    assert result.routing is None
    assert result.bad_rate == 0.5
