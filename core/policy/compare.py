"""Champion against challenger: how the policy that decided each appeal and the challenger that
scored the same snapshot in shadow agree (`appeals policy compare`).

Pure over rows: the caller reads the assessments, shadow assessments and appeals (statuses and
status history) and passes them in. An appeal counts once per challenger, with its latest run
that both scored: the run whose assessment routed it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from core.status import AppealStatus

S = AppealStatus

AUTO_APPROVE = "AUTO_APPROVE"
MANUAL_REVIEW = "MANUAL_REVIEW"
AUTO_DECLINE = "AUTO_DECLINE"
RECOMMENDATIONS: tuple[str, ...] = (AUTO_APPROVE, MANUAL_REVIEW, AUTO_DECLINE)

_APPROVALS = frozenset({S.AUTO_APPROVED, S.APPROVED, S.PARTIALLY_APPROVED})
_ENDED_WITHOUT_DECISION = frozenset({S.INELIGIBLE, S.EXPIRED, S.WITHDRAWN})


class Outcome(StrEnum):
    """How a decided appeal finally ended."""

    APPROVED = "APPROVED"  # approved by the machine or a reviewer (in full or in part)
    DECLINED = "DECLINED"  # declined by a reviewer, or declined automatically and closed


@dataclass(frozen=True, slots=True)
class ChampionRow:
    appeal_id: str
    run: int
    recommendation: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ShadowRow:
    appeal_id: str
    run: int
    rule_id: str
    rule_hash: str
    recommendation: str | None  # None: the challenger could not score the snapshot
    created_at: datetime


@dataclass(frozen=True, slots=True)
class AppealRow:
    appeal_id: str
    status: AppealStatus
    history: tuple[AppealStatus, ...] = ()  # the statuses it moved to, in order


def final_outcome(status: AppealStatus, history: Sequence[AppealStatus]) -> Outcome | None:
    """The decision an appeal ended with, or None while it is undecided (open, or ended without
    a decision). An automatic decline is final once the appeal closed without a human review
    (within the review window the customer may still ask for one)."""
    if status in _ENDED_WITHOUT_DECISION:
        return None
    for step in reversed((*history, status)):
        if step in _APPROVALS:
            return Outcome.APPROVED
        if step is S.DECLINED:
            return Outcome.DECLINED
        if step is S.AUTO_DECLINED:
            return Outcome.DECLINED if status is S.CLOSED else None
    return None


@dataclass(slots=True)
class Comparison:
    """One challenger against the champion."""

    rule_id: str
    rule_hash: str
    both: int = 0  # appeals scored by both (the challenger produced a recommendation)
    agree: int = 0
    challenger_failed: int = 0  # appeals the challenger could not score (and no run it did)
    # (champion recommendation, challenger recommendation) -> appeals
    table: Counter[tuple[str, str]] = field(default_factory=Counter)
    # final outcome -> role ("champion" / "challenger") -> recommendation -> appeals
    outcomes: dict[Outcome, dict[str, Counter[str]]] = field(default_factory=dict)

    @property
    def agreement(self) -> float | None:
        return self.agree / self.both if self.both else None

    @property
    def swap_in(self) -> int:
        """The challenger would approve automatically; the champion did not."""
        return sum(n for (champ, chall), n in self.table.items() if chall == AUTO_APPROVE != champ)

    @property
    def swap_out(self) -> int:
        """The champion approved automatically; the challenger would not."""
        return sum(n for (champ, chall), n in self.table.items() if champ == AUTO_APPROVE != chall)

    def decided(self, outcome: Outcome) -> int:
        return sum(self.outcomes.get(outcome, {}).get("champion", Counter()).values())

    def recommended(self, outcome: Outcome, role: str, recommendation: str) -> int:
        return self.outcomes.get(outcome, {}).get(role, Counter())[recommendation]


def compare(
    champions: Iterable[ChampionRow],
    shadows: Iterable[ShadowRow],
    appeals: Iterable[AppealRow],
) -> list[Comparison]:
    """One comparison per challenger policy (by content hash), the most recently used first."""
    champion_by_run = {(c.appeal_id, c.run): c for c in champions}
    appeal_by_id = {a.appeal_id: a for a in appeals}
    latest_use: dict[str, datetime] = {}
    # challenger hash -> appeal -> its rows, by run
    by_challenger: dict[str, dict[str, list[ShadowRow]]] = {}
    names: dict[str, str] = {}
    for row in shadows:
        if (row.appeal_id, row.run) not in champion_by_run:
            continue
        by_challenger.setdefault(row.rule_hash, {}).setdefault(row.appeal_id, []).append(row)
        names[row.rule_hash] = row.rule_id
        if row.rule_hash not in latest_use or row.created_at > latest_use[row.rule_hash]:
            latest_use[row.rule_hash] = row.created_at
    out: list[Comparison] = []
    for rule_hash in sorted(by_challenger, key=lambda h: latest_use[h], reverse=True):
        result = Comparison(rule_id=names[rule_hash], rule_hash=rule_hash)
        for appeal_id, rows in by_challenger[rule_hash].items():
            scored = [r for r in rows if r.recommendation is not None]
            if not scored:
                result.challenger_failed += 1
                continue
            shadow = max(scored, key=lambda r: r.run)
            champion = champion_by_run[(appeal_id, shadow.run)].recommendation
            challenger = shadow.recommendation
            assert challenger is not None
            result.both += 1
            result.agree += champion == challenger
            result.table[(champion, challenger)] += 1
            appeal = appeal_by_id.get(appeal_id)
            outcome = None if appeal is None else final_outcome(appeal.status, appeal.history)
            if outcome is not None:
                roles = result.outcomes.setdefault(outcome, {"champion": Counter(), "challenger": Counter()})
                roles["champion"][champion] += 1
                roles["challenger"][challenger] += 1
        out.append(result)
    return out


def _short(recommendation: str) -> str:
    return {AUTO_APPROVE: "approve", MANUAL_REVIEW: "manual", AUTO_DECLINE: "decline"}.get(
        recommendation, recommendation
    )


def format_comparison(c: Comparison, *, champion: str | None = None) -> str:
    """The report of one challenger, as plain text."""
    lines = [f"Challenger {c.rule_id} (sha256 {c.rule_hash})" + (f" against {champion}" if champion else "")]
    lines.append(f"  appeals scored by both: {c.both}")
    if c.challenger_failed:
        lines.append(f"  appeals the challenger could not score: {c.challenger_failed}")
    if not c.both:
        return "\n".join(lines)
    share = c.agreement or 0.0
    lines.append(f"  same recommendation: {c.agree} of {c.both} ({share:.1%})")
    lines.append("")
    width = 10
    header = "".join(_short(r).rjust(width) for r in RECOMMENDATIONS)
    lines.append("  champion \\ challenger".ljust(24) + header)
    for champ in RECOMMENDATIONS:
        cells = "".join(str(c.table[(champ, chall)]).rjust(width) for chall in RECOMMENDATIONS)
        lines.append(f"  {_short(champ)}".ljust(24) + cells)
    lines.append("")
    lines.append(f"  swap-in  (challenger would auto-approve, champion did not): {c.swap_in}")
    lines.append(f"  swap-out (champion auto-approved, challenger would not):    {c.swap_out}")
    decided = sum(c.decided(o) for o in Outcome)
    lines.append("")
    lines.append(f"  decided appeals: {decided}")
    for outcome in Outcome:
        n = c.decided(outcome)
        if not n:
            continue
        lines.append(f"    finally {outcome.value.lower()}: {n}")
        for role in ("champion", "challenger"):
            counts = ", ".join(f"{c.recommended(outcome, role, r)} {_short(r)}" for r in RECOMMENDATIONS)
            lines.append(f"      {role:<10} recommended: {counts}")
    return "\n".join(lines)
