"""The backtest's metrics against independent computations (sklearn, numpy, by hand), and the
backtest of a generated data file scored by the real engine."""

from __future__ import annotations

import math
import random
from decimal import Decimal

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from core.policy.backtest import (
    SHARE_FLOOR,
    auc,
    band_index,
    band_labels,
    gini,
    ks,
    parse_target,
    quantile_edges,
    reading,
    roc_points,
    score_psi,
    stability_index,
)


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
