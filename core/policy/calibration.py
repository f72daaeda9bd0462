"""Fitting a scorecard's points-to-odds calibration on labelled data.

A one-variable logistic regression of the outcome (bad = 1) on the score, by Newton's method:
log(bad:good odds) = a + b·score. With b < 0 (a higher score means less risk) this is the
convention of `model.Calibration`: pdo = ln 2 / −b, and at points0 the odds are exp(a + b·points0).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal


class CalibrationError(ValueError):
    """The data cannot be calibrated (one class only, a score that does not rank, no spread)."""


@dataclass(frozen=True, slots=True)
class FittedCalibration:
    points0: Decimal
    odds0: Decimal  # bad:good odds at points0
    pdo: Decimal
    rows: int
    bads: int
    log_loss: float  # mean negative log-likelihood of the fit

    def toml(self) -> str:
        return (
            "[scorecard.calibration]\n"
            f"points0 = {self.points0}\n"
            f"odds0 = {self.odds0}  # bad:good odds at points0\n"
            f"pdo = {self.pdo}\n"
        )


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))


def fit_calibration(
    scores: Sequence[Decimal | float | int], bads: Sequence[bool], points0: Decimal | None = None
) -> FittedCalibration:
    """Fit on (score, bad) pairs; `points0` defaults to the median score, rounded."""
    if len(scores) != len(bads):
        raise ValueError("scores and bads differ in length")
    n, n_bad = len(scores), sum(bads)
    if n_bad == 0 or n_bad == n:
        raise CalibrationError("the data holds only one outcome: nothing to calibrate on")
    xs = [float(s) for s in scores]
    mean = sum(xs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / n)
    if sd == 0:
        raise CalibrationError("every row has the same score")
    zs = [(x - mean) / sd for x in xs]
    ys = [1.0 if b else 0.0 for b in bads]
    # Newton's method on standardised scores: a few steps from the base rate converge.
    a, b = math.log(n_bad / (n - n_bad)), 0.0
    for _ in range(100):
        g0 = g1 = h00 = h01 = h11 = 0.0
        for z, y in zip(zs, ys, strict=True):
            p = _sigmoid(a + b * z)
            w = p * (1 - p)
            g0 += y - p
            g1 += (y - p) * z
            h00 += w
            h01 += w * z
            h11 += w * z * z
        det = h00 * h11 - h01 * h01
        if det <= 0:
            raise CalibrationError("the fit does not converge (a score that separates perfectly?)")
        da = (h11 * g0 - h01 * g1) / det
        db = (h00 * g1 - h01 * g0) / det
        a, b = a + da, b + db
        if abs(da) < 1e-12 and abs(db) < 1e-12:
            break
    slope = b / sd
    intercept = a - slope * mean
    if slope >= 0:
        raise CalibrationError("a higher score does not mean less risk in this data")
    reference = points0 if points0 is not None else Decimal(round(sorted(xs)[n // 2]))
    odds0 = math.exp(intercept + slope * float(reference))
    loss = (
        -sum(
            math.log(max(1e-300, p if y else 1 - p))
            for z, y in zip(zs, ys, strict=True)
            for p in (_sigmoid(a + b * z),)
        )
        / n
    )
    return FittedCalibration(
        points0=reference,
        odds0=Decimal(f"{odds0:.6g}"),
        pdo=Decimal(f"{math.log(2) / -slope:.4g}"),
        rows=n,
        bads=n_bad,
        log_loss=loss,
    )
