"""The supervisor dashboard's numbers on SQLite and PostgreSQL, against the hand-computed
expectations of tests/dashboard_data.py (read its table first)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy.engine import Engine

from core.db import session_scope
from core.db.case_tables import TaskStatus
from core.reviews.dashboard import (
    Dashboard,
    DayDecisions,
    DecisionMode,
    OutcomeCounts,
    QueueLoad,
    SlaState,
    TierApproval,
    TimeToDecision,
    day_start,
    supervisor_dashboard,
)
from tests.api.pages.helpers import QueryCounter
from tests.dashboard_data import NOW, SHANGHAI, WARNING_FRACTION, Scenario, build_scenario

H = timedelta(hours=1)


def _dashboard(engine: Engine, *, zone: ZoneInfo = SHANGHAI, days: int = 3, limit: int = 50) -> Dashboard:
    with session_scope(engine, read_only=True) as session:
        return supervisor_dashboard(
            session, now=NOW, zone=zone, days=days, warning_fraction=WARNING_FRACTION, urgent_limit=limit
        )


@pytest.fixture
def scenario(engine: Engine) -> Scenario:
    return build_scenario(engine)


def test_open_tasks_by_queue_and_status_with_their_service_levels(engine: Engine, scenario: Scenario) -> None:
    board = _dashboard(engine)
    assert board.queues == [
        QueueLoad("review", open=3, claimed=1, warning=1, breached=1, escalated=0),
        QueueLoad("second-review", open=1, claimed=0, warning=0, breached=1, escalated=0),
        QueueLoad("escalation", open=1, claimed=1, warning=0, breached=2, escalated=2),
    ]
    totals = (board.open_total, board.warning_total, board.breached_total, board.escalated_total)
    assert totals == (7, 1, 4, 2)


def test_ageing_bands_include_their_lower_bound(engine: Engine, scenario: Scenario) -> None:
    # T2 is exactly 4h old (4-8h), T5 exactly 24h (1-3d), T9 exactly 72h (>3d).
    board = _dashboard(engine)
    assert [(band.lower, band.upper, band.count) for band in board.ageing] == [
        (timedelta(0), 4 * H, 1),
        (4 * H, 8 * H, 1),
        (8 * H, 24 * H, 1),
        (24 * H, 72 * H, 2),
        (72 * H, None, 2),
    ]


def test_decisions_per_day_are_counted_on_the_viewers_calendar(engine: Engine, scenario: Scenario) -> None:
    board = _dashboard(engine)
    assert board.decisions == [
        DayDecisions(date(2025, 3, 8), automatic=OutcomeCounts(approve=1, partial=1, decline=1)),
        DayDecisions(date(2025, 3, 9), manual=OutcomeCounts(partial=1)),
        DayDecisions(date(2025, 3, 10), manual=OutcomeCounts(approve=2, decline=1)),
    ]
    assert board.decided == OutcomeCounts(approve=3, partial=2, decline=2)
    assert (board.first_day, board.last_day) == (date(2025, 3, 8), date(2025, 3, 10))


def test_the_same_decisions_on_utc_days(engine: Engine, scenario: Scenario) -> None:
    # In UTC, A2 (7 Mar 16:00) falls before the period, A4's review and A8 on 9 Mar, A7 (10 Mar
    # 16:00) inside it.
    board = _dashboard(engine, zone=ZoneInfo("UTC"))
    assert board.decisions == [
        DayDecisions(date(2025, 3, 8), automatic=OutcomeCounts(partial=1, decline=1)),
        DayDecisions(date(2025, 3, 9), manual=OutcomeCounts(approve=2, partial=1)),
        DayDecisions(date(2025, 3, 10), manual=OutcomeCounts(decline=2)),
    ]


def test_a_longer_period_reaches_back_further(engine: Engine, scenario: Scenario) -> None:
    board = _dashboard(engine, days=14)
    assert len(board.decisions) == 14 and board.first_day == date(2025, 2, 25)
    by_day = {d.day: d for d in board.decisions}
    assert by_day[date(2025, 3, 7)] == DayDecisions(date(2025, 3, 7), automatic=OutcomeCounts(approve=1))
    assert board.decided == OutcomeCounts(approve=4, partial=2, decline=2)
    # A1 (LOW, approved automatically after 5h59) joins the tiers and the automatic median:
    # 2h, 4h, 5h59, 6h -> (4h + 5h59) / 2.
    assert board.tiers[0] == TierApproval("LOW", OutcomeCounts(approve=2, decline=1))
    assert board.time_to_decision[0] == TimeToDecision(
        DecisionMode.AUTOMATIC, 4, timedelta(hours=4, minutes=59, seconds=30)
    )


def test_approval_rate_by_risk_tier_of_the_assessment_each_decision_was_made_on(
    engine: Engine, scenario: Scenario
) -> None:
    # A4's automatic decline was made on its HIGH first assessment, its approval on the MEDIUM
    # second one; A8 has no assessment.
    board = _dashboard(engine)
    assert board.tiers == [
        TierApproval("LOW", OutcomeCounts(approve=1, decline=1)),
        TierApproval("MEDIUM", OutcomeCounts(approve=1, partial=1)),
        TierApproval("HIGH", OutcomeCounts(partial=1, decline=1)),
        TierApproval(None, OutcomeCounts(approve=1)),
    ]
    assert [t.rate for t in board.tiers] == [0.5, 1.0, 0.5, 1.0]


def test_median_time_from_submission_to_decision(engine: Engine, scenario: Scenario) -> None:
    # automatic: 2h, 4h, 6h -> 4h; manual: 12h, 24h, 31h01m, 72h -> (24h + 31h01m) / 2.
    board = _dashboard(engine)
    assert board.time_to_decision == [
        TimeToDecision(DecisionMode.AUTOMATIC, 3, 4 * H),
        TimeToDecision(DecisionMode.MANUAL, 4, timedelta(hours=27, minutes=30, seconds=30)),
    ]


def test_the_most_urgent_tasks_come_first(engine: Engine, scenario: Scenario) -> None:
    board = _dashboard(engine)
    t = scenario.tasks
    assert [(u.id, u.sla) for u in board.urgent] == [
        (t["T9"], SlaState.BREACHED),  # escalated, due 48h ago
        (t["T4"], SlaState.BREACHED),  # escalated, due 6h ago
        (t["T6"], SlaState.BREACHED),  # not escalated yet
        (t["T5"], SlaState.BREACHED),  # due now: the workflow's breach timer fires at the due time
        (t["T3"], SlaState.WARNING),
        (t["T2"], SlaState.ON_TIME),
        (t["T1"], SlaState.ON_TIME),
    ]
    t4 = board.urgent[1]
    assert (t4.queue, t4.status, t4.assignee, t4.escalated, t4.priority, t4.version) == (
        "escalation",
        TaskStatus.CLAIMED,
        "r-2",
        True,
        10,
        1,
    )
    assert t4.due_at == NOW - 6 * H and t4.created_at == NOW - 30 * H
    assert [u.id for u in _dashboard(engine, limit=2).urgent] == [t["T9"], t["T4"]]


def test_an_empty_service(engine: Engine) -> None:
    board = _dashboard(engine)
    assert board.open_total == 0 and [band.count for band in board.ageing] == [0] * 5
    assert all(day.total == 0 for day in board.decisions) and len(board.decisions) == 3
    assert [t.rate for t in board.tiers] == [None, None, None]
    assert board.time_to_decision == [
        TimeToDecision(DecisionMode.AUTOMATIC, 0, None),
        TimeToDecision(DecisionMode.MANUAL, 0, None),
    ]
    assert board.urgent == []


def _queries(counter: QueryCounter) -> list[str]:
    """The statements that read data (SQLite's explicit BEGIN is not one)."""
    return [s for s in counter.statements if not s.lstrip().upper().startswith(("BEGIN", "COMMIT"))]


def test_four_queries_whatever_the_volume(engine: Engine) -> None:
    with QueryCounter(engine) as empty:
        _dashboard(engine)
    build_scenario(engine)
    build_scenario(engine)
    with QueryCounter(engine) as full:
        board = _dashboard(engine, days=30)
    assert board.open_total == 14 and board.decided.total == 16
    assert len(_queries(empty)) == len(_queries(full)) == 4


def test_a_day_starts_at_local_midnight_across_daylight_saving() -> None:
    new_york = ZoneInfo("America/New_York")  # clocks went forward on 9 March 2025
    assert day_start(date(2025, 3, 9), new_york) == datetime(2025, 3, 9, 5, tzinfo=UTC)
    assert day_start(date(2025, 3, 10), new_york) == datetime(2025, 3, 10, 4, tzinfo=UTC)
