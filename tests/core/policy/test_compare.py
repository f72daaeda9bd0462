"""`compare` over hand-built rows: agreement, the 3x3 table, swaps and decided outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from core.policy.compare import (
    AUTO_APPROVE,
    AUTO_DECLINE,
    MANUAL_REVIEW,
    AppealRow,
    ChampionRow,
    Outcome,
    ShadowRow,
    compare,
    final_outcome,
    format_comparison,
)
from core.status import AppealStatus as S

T0 = datetime(2028, 3, 1, tzinfo=UTC)
A, M, D = AUTO_APPROVE, MANUAL_REVIEW, AUTO_DECLINE

# appeal: (champion, challenger, status, history)
CASES: dict[str, tuple[str, str | None, S, tuple[S, ...]]] = {
    "a1": (A, A, S.CLOSED, (S.CHECKING, S.AUTO_APPROVED, S.LIMIT_APPLIED, S.CLOSED)),
    "a2": (A, M, S.LIMIT_APPLIED, (S.CHECKING, S.AUTO_APPROVED, S.LIMIT_APPLIED)),  # swap-out
    "a3": (M, A, S.CLOSED, (S.PENDING_REVIEW, S.IN_REVIEW, S.APPROVED, S.LIMIT_APPLIED, S.CLOSED)),  # swap-in
    "a4": (M, D, S.CLOSED, (S.PENDING_REVIEW, S.IN_REVIEW, S.PARTIALLY_APPROVED, S.LIMIT_APPLIED, S.CLOSED)),
    "a5": (M, M, S.DECLINED, (S.PENDING_REVIEW, S.IN_REVIEW, S.DECLINED)),
    "a6": (D, D, S.CLOSED, (S.AUTO_DECLINED, S.CLOSED)),  # the decline stood
    "a7": (D, A, S.AUTO_DECLINED, (S.AUTO_DECLINED,)),  # swap-in, still reviewable: undecided
    "a8": (M, M, S.IN_REVIEW, (S.PENDING_REVIEW, S.IN_REVIEW)),  # open
    "a9": (A, None, S.AUTO_APPROVED, (S.AUTO_APPROVED,)),  # the challenger crashed
}


def _rows() -> tuple[list[ChampionRow], list[ShadowRow], list[AppealRow]]:
    champions, shadows, appeals = [], [], []
    for i, (appeal_id, (champ, chall, status, history)) in enumerate(CASES.items()):
        at = T0 + timedelta(hours=i)
        champions.append(ChampionRow(appeal_id, 1, champ, at))
        shadows.append(ShadowRow(appeal_id, 1, "v2", "h2", chall, at))
        appeals.append(AppealRow(appeal_id, status, history))
    return champions, shadows, appeals


def test_counts_on_a_hand_built_set() -> None:
    champions, shadows, appeals = _rows()
    (c,) = compare(champions, shadows, appeals)
    assert (c.rule_id, c.rule_hash) == ("v2", "h2")
    assert c.both == 8 and c.challenger_failed == 1
    assert c.agree == 4 and c.agreement == 0.5  # a1, a5, a6, a8
    assert dict(c.table) == {(A, A): 1, (A, M): 1, (M, A): 1, (M, D): 1, (M, M): 2, (D, D): 1, (D, A): 1}
    assert (c.swap_in, c.swap_out) == (2, 1)
    # Decided: approved a1 a2 a3 a4; declined a5 a6. a7 (reviewable) and a8 (open) are not.
    assert c.decided(Outcome.APPROVED) == 4 and c.decided(Outcome.DECLINED) == 2
    assert c.recommended(Outcome.APPROVED, "challenger", D) == 1  # a4: approved, challenger declines
    assert c.recommended(Outcome.APPROVED, "champion", A) == 2
    assert c.recommended(Outcome.DECLINED, "challenger", M) == 1
    assert c.recommended(Outcome.DECLINED, "champion", D) == 1
    report = format_comparison(c)
    assert "appeals scored by both: 8" in report
    assert "same recommendation: 4 of 8 (50.0%)" in report
    assert "swap-in  (challenger would auto-approve, champion did not): 2" in report
    assert "finally approved: 4" in report and "1 decline" in report


def test_the_latest_run_counts_and_each_challenger_is_reported_apart() -> None:
    champions = [ChampionRow("x", 1, D, T0), ChampionRow("x", 2, A, T0 + timedelta(days=1))]
    shadows = [
        ShadowRow("x", 1, "v2", "h2", D, T0),
        ShadowRow("x", 2, "v2", "h2", A, T0 + timedelta(days=1)),
        ShadowRow("x", 2, "v3", "h3", M, T0 + timedelta(days=2)),
        ShadowRow("orphan", 1, "v2", "h2", A, T0),  # no champion row (e.g. before --since)
    ]
    newest, older = compare(champions, shadows, [AppealRow("x", S.LIMIT_APPLIED)])
    assert newest.rule_hash == "h3" and dict(newest.table) == {(A, M): 1} and newest.swap_out == 1
    assert older.rule_hash == "h2" and dict(older.table) == {(A, A): 1} and older.both == 1


def test_final_outcome() -> None:
    assert (
        final_outcome(S.CLOSED, (S.AUTO_DECLINED, S.PENDING_REVIEW, S.IN_REVIEW, S.APPROVED))
        is Outcome.APPROVED
    )
    assert final_outcome(S.CLOSED, (S.AUTO_DECLINED, S.CLOSED)) is Outcome.DECLINED
    assert final_outcome(S.AUTO_DECLINED, ()) is None
    assert final_outcome(S.WITHDRAWN, (S.AUTO_DECLINED,)) is None
    assert final_outcome(S.EXPIRED, (S.AWAITING_DOCUMENTS,)) is None
    assert final_outcome(S.LIMIT_APPLY_FAILED, (S.APPROVED,)) is Outcome.APPROVED
    assert final_outcome(S.PENDING_REVIEW, ()) is None
