"""Scoring one set of characteristic values against a scorecard: bins, missing, special and else
values, exact decimal points, one rounding at the end, and the implied PD.

The values are keyed by each characteristic's source field (`Characteristic.field`): in an
appeal they come from the computed features and the snapshot's input fields, in a backtest from a
data file's columns (docs/scorecards.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation, localcontext

from pydantic import BaseModel, ConfigDict

from core.policy.characteristics import DECIMAL_CONTEXT, CharacteristicValue
from core.policy.model import (
    Characteristic,
    CharacteristicType,
    Recommendation,
    Scorecard,
    ScorecardPolicy,
)

MISSING_BIN = "missing"
ELSE_BIN = "else"
# Cells a data file uses for "no value" (compared case-insensitively, after trimming).
MISSING_TOKENS = frozenset({"", "na", "n/a", "nan", "null", "none"})

RawValue = str | int | Decimal | bool | None
# A characteristic's value as scored: a number, a category, or None (missing).
ScoredValue = CharacteristicValue | str


class Unscorable(Exception):
    """A characteristic's value that the scorecard cannot score (no bin takes it)."""

    def __init__(self, characteristic: str, reason: str) -> None:
        self.characteristic = characteristic
        self.reason = reason
        super().__init__(f"{characteristic}: {reason}")


class Contribution(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    characteristic: str
    value: CharacteristicValue = None  # a numeric characteristic's value (None: missing)
    category: str | None = None  # a categorical characteristic's value (None: missing)
    bin: str  # the bin's label, or "missing" / "else"
    points: Decimal
    max_points: Decimal  # the characteristic's best bin
    points_lost: Decimal  # max_points - points


@dataclass(frozen=True, slots=True)
class CardScore:
    exact: Decimal  # base points + every characteristic's points, unrounded
    score: int  # `exact` rounded once by the scorecard's rule
    pd: Decimal | None  # implied probability of default when the card is calibrated
    contributions: tuple[Contribution, ...]


def _number(ch: Characteristic, raw: RawValue) -> CharacteristicValue:
    if raw is None or isinstance(raw, bool | int):
        return raw
    if isinstance(raw, Decimal):
        return None if raw.is_nan() else raw
    text = raw.strip()
    if text.lower() in MISSING_TOKENS:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise Unscorable(ch.name, f"not a number: {text[:40]!r}") from None
    if not value.is_finite():
        if value.is_nan():
            return None
        raise Unscorable(ch.name, f"not a finite number: {text[:40]!r}")
    return value


def _category_text(raw: str | int | Decimal | bool) -> str:
    if isinstance(raw, bool):
        return "true" if raw else "false"
    return str(raw).strip()


def _category(raw: RawValue) -> str | None:
    if raw is None:
        return None
    text = _category_text(raw)
    return None if text.lower() in MISSING_TOKENS else text


def _missing(ch: Characteristic, value: ScoredValue) -> tuple[str, Decimal]:
    if ch.missing_points is None:
        raise Unscorable(ch.name, "missing value and the characteristic has no missing_points")
    return MISSING_BIN, ch.missing_points


def _score_numeric(ch: Characteristic, raw: RawValue) -> tuple[ScoredValue, str, Decimal]:
    value = _number(ch, raw)
    if value is None:
        return (value, *_missing(ch, value))
    number = Decimal(int(value)) if isinstance(value, bool) else Decimal(value)
    for special in ch.special:
        if number in special.values:
            return value, special.display, special.points
    found = ch.bin_for(number)
    if found is None:
        raise Unscorable(ch.name, f"value {number} is outside every bin")
    return value, found.display, found.points


def _score_categorical(ch: Characteristic, raw: RawValue) -> tuple[ScoredValue, str, Decimal]:
    text = None if raw is None else _category_text(raw)
    # A listed category wins over the missing tokens: "none" is a real answer in many data sets.
    for b in ch.bins:
        if text is not None and b.values is not None and text in b.values:
            return text, b.display, b.points
    value = _category(raw)
    if value is None:
        return (value, *_missing(ch, value))
    if ch.else_points is None:
        raise Unscorable(ch.name, f"category {value[:40]!r} is in no bin and there is no else_points")
    return value, ELSE_BIN, ch.else_points


def score_characteristic(ch: Characteristic, raw: RawValue) -> Contribution:
    if ch.type is CharacteristicType.CATEGORICAL:
        value, label, points = _score_categorical(ch, raw)
    else:
        value, label, points = _score_numeric(ch, raw)
    best = ch.max_points
    return Contribution(
        characteristic=ch.name,
        value=None if isinstance(value, str) else value,
        category=value if isinstance(value, str) else None,
        bin=label,
        points=points,
        max_points=best,
        points_lost=best - points,
    )


def score_card(card: Scorecard, values: Mapping[str, RawValue]) -> CardScore:
    """Score values keyed by source field; a field absent from `values` is missing."""
    with localcontext(DECIMAL_CONTEXT):
        contributions = tuple(score_characteristic(ch, values.get(ch.field)) for ch in card.characteristics)
        exact = card.base_points + sum((c.points for c in contributions), Decimal(0))
        pd = card.calibration.pd(exact) if card.calibration is not None else None
    return CardScore(exact=exact, score=card.score_rounding.apply(exact), pd=pd, contributions=contributions)


def route_for(policy: ScorecardPolicy, card: CardScore) -> Recommendation:
    """The recommendation the cut-offs alone give (no knock-outs, no limit sizing)."""
    if policy.cutoffs is None:
        raise ValueError(f"policy {policy.id} has no cut-offs")
    if policy.cutoffs.approves(card.score, card.pd):
        return Recommendation.AUTO_APPROVE
    if policy.cutoffs.declines(card.score, card.pd):
        return Recommendation.AUTO_DECLINE
    return Recommendation.MANUAL_REVIEW


__all__ = [
    "ELSE_BIN",
    "MISSING_BIN",
    "MISSING_TOKENS",
    "CardScore",
    "Contribution",
    "RawValue",
    "Unscorable",
    "route_for",
    "score_card",
    "score_characteristic",
]
