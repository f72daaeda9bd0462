from __future__ import annotations

import math
import random
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.policy.calibration import CalibrationError, fit_calibration
from core.policy.loader import load_scorecard_bytes
from launcher.cli import app


def labelled(n: int, seed: int, points0: float, odds0: float, pdo: float) -> tuple[list[int], list[bool]]:
    """Scores with outcomes drawn from a known points-to-odds law."""
    rng = random.Random(seed)
    scores, bads = [], []
    for _ in range(n):
        score = rng.randint(300, 800)
        odds = odds0 * 2 ** ((points0 - score) / pdo)
        scores.append(score)
        bads.append(rng.random() < odds / (1 + odds))
    return scores, bads


def test_the_fit_recovers_a_known_calibration() -> None:
    scores, bads = labelled(40_000, seed=5, points0=600, odds0=1 / 19, pdo=50)
    fitted = fit_calibration(scores, bads, Decimal(600))
    assert fitted.points0 == 600
    assert math.isclose(float(fitted.odds0), 1 / 19, rel_tol=0.08)
    assert math.isclose(float(fitted.pdo), 50, rel_tol=0.06)
    # and the policy takes what it prints
    card = 'id = "c"\n[[scorecard.characteristics]]\nname = "x"\nsource = "input:x"\nreason = "RC_X"\n'
    card += "bins = [ { points = 1 } ]\n"
    cal = load_scorecard_bytes((card.replace('id = "c"\n', 'id = "c"\n' + fitted.toml())).encode())
    assert cal.policy.scorecard.calibration is not None


def test_data_that_cannot_be_calibrated_is_refused() -> None:
    with pytest.raises(CalibrationError, match="only one outcome"):
        fit_calibration([1, 2, 3], [False, False, False])
    with pytest.raises(CalibrationError, match="same score"):
        fit_calibration([5, 5, 5], [True, False, False])
    scores, bads = labelled(2_000, seed=1, points0=600, odds0=1 / 19, pdo=50)
    with pytest.raises(CalibrationError, match="does not mean less risk"):
        fit_calibration([-s for s in scores], bads)


def test_calibrate_command_prints_the_table(tmp_path: Path) -> None:
    policy = tmp_path / "card.toml"
    policy.write_text(
        'id = "card"\n[[scorecard.characteristics]]\nname = "x"\nsource = "input:x"\nreason = "RC_X"\n'
        "bins = [ { upper = 400, points = 400 }, { lower = 400, upper = 500, points = 500 },"
        " { lower = 500, upper = 600, points = 600 }, { lower = 600, points = 700 } ]\n"
    )
    scores, bads = labelled(5_000, seed=9, points0=600, odds0=1 / 19, pdo=50)
    data = tmp_path / "data.csv"
    data.write_text("x,bad\n" + "".join(f"{s},{int(b)}\n" for s, b in zip(scores, bads, strict=True)))
    outcome = CliRunner().invoke(
        app, ["policy", "calibrate", str(policy), "--data", str(data), "--target", "bad"]
    )
    assert outcome.exit_code == 0, outcome.output
    assert "[scorecard.calibration]" in outcome.output and "fitted on 5000 rows" in outcome.output
    refused = CliRunner().invoke(
        app, ["policy", "calibrate", str(policy), "--data", str(data), "--target", "nope"]
    )
    assert refused.exit_code == 2 and "no target column" in refused.output
