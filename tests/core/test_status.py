import itertools

from core.status import (
    ALLOWED_TRANSITIONS,
    CLOSED_STATUSES,
    WITHDRAWABLE_STATUSES,
    AppealStatus,
    can_transition,
    is_open,
)

S = AppealStatus


def test_closed_statuses_lead_nowhere() -> None:
    for status in CLOSED_STATUSES:
        assert not ALLOWED_TRANSITIONS.get(status)
        assert not is_open(status)


def test_every_open_status_can_reach_a_closed_one() -> None:
    for start in AppealStatus:
        seen, frontier = {start}, [start]
        while frontier:
            for nxt in ALLOWED_TRANSITIONS.get(frontier.pop(), frozenset()):
                if nxt not in seen:
                    seen.add(nxt)
                    frontier.append(nxt)
        assert seen & CLOSED_STATUSES, start


def test_main_paths_of_the_design() -> None:
    path = [
        S.SUBMITTED,
        S.AWAITING_DOCUMENTS,
        S.CHECKING,
        S.PENDING_REVIEW,
        S.IN_REVIEW,
        S.PARTIALLY_APPROVED,
        S.LIMIT_APPLIED,
        S.CLOSED,
    ]
    assert all(can_transition(a, b) for a, b in itertools.pairwise(path))
    assert can_transition(S.IN_REVIEW, S.INFO_REQUESTED)
    assert can_transition(S.INFO_REQUESTED, S.AWAITING_DOCUMENTS)
    assert can_transition(S.AUTO_DECLINED, S.PENDING_REVIEW)
    assert not can_transition(S.SUBMITTED, S.APPROVED)
    assert not can_transition(S.DECLINED, S.LIMIT_APPLIED)


def test_withdrawal_only_before_a_decision() -> None:
    assert S.AWAITING_DOCUMENTS in WITHDRAWABLE_STATUSES
    assert S.PENDING_REVIEW in WITHDRAWABLE_STATUSES
    for status in (S.APPROVED, S.LIMIT_APPLIED, S.CLOSED, S.DECLINED, S.AUTO_APPROVED):
        assert status not in WITHDRAWABLE_STATUSES
        assert not can_transition(status, S.WITHDRAWN)


def test_a_refused_limit_stays_open_for_an_operator() -> None:
    for decided in (S.AUTO_APPROVED, S.APPROVED, S.PARTIALLY_APPROVED):
        assert can_transition(decided, S.LIMIT_APPLY_FAILED)
    assert is_open(S.LIMIT_APPLY_FAILED)
    assert S.LIMIT_APPLY_FAILED not in CLOSED_STATUSES | WITHDRAWABLE_STATUSES
    assert not can_transition(S.LIMIT_APPLY_FAILED, S.WITHDRAWN)
    assert not can_transition(S.DECLINED, S.LIMIT_APPLY_FAILED)
