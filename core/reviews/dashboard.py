"""The supervisor dashboard's numbers (docs/architecture.md section 6): open review tasks by
queue and status with their service levels, how long open tasks have waited, decisions per
day, the approval rate by risk tier, the median time from submission to decision, and the
most urgent tasks to hand to someone.

Everything is read with four queries whatever the volume (three GROUP BY queries and one
LIMITed list), written once for SQLite and PostgreSQL: calendar days and age bands are
compared with bound instants computed here, never with the database's own date functions, and
the one arithmetic on times (the SLA warning point, the time to decision) goes through
`epoch_seconds`, compiled for each database. `now` is the caller's clock.

Definitions:

- An open task is OPEN or CLAIMED. It is past due ("breached") from its due time on (when the
  workflow's breach timer fires), past the warning point once `now` reaches `created_at +
  fraction x (due_at - created_at)` (where the workflow warns the assignee; the caller passes
  the workflow's fraction), escalated once the workflow has moved it to the escalation queue.
- A decision is a move of the appeal to an outcome status (core/appeals/cooldown.py):
  automatic (AUTO_APPROVED, AUTO_DECLINED) or manual (APPROVED, PARTIALLY_APPROVED, DECLINED; a
  four-eyes case counts once, when the second reviewer decides). An approval is partial when
  the decided limit is below the requested one, the same rule as the approval notice. Each
  decision counts: an automatic decline overturned on human review is one decline and one
  approval.
- A decision's day is the calendar day of its time in the zone the caller gives; the period is
  the last `days` days up to and including today there.
- A decision's risk tier is that of the appeal's latest assessment made at or before it.
- The time to decision runs from the appeal's submission to the decision.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Float, and_, case, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlmodel import Session, col

from core.appeals.cooldown import DECLINE_STATUSES, OUTCOME_STATUSES
from core.db.case_tables import Appeal, AppealEvent, Assessment, ReviewTask, TaskStatus
from core.reviews.sla import ESCALATION_QUEUE
from core.status import AppealStatus

S = AppealStatus

OPEN_TASK_STATUSES = (TaskStatus.OPEN, TaskStatus.CLAIMED)
# The queues tasks are created in (core/reviews/service.py) and escalated to (core/reviews/sla.py),
# always listed, in this order; any other queue follows by name.
KNOWN_QUEUES = ("review", "second-review", ESCALATION_QUEUE)
AUTOMATIC_STATUSES = (S.AUTO_APPROVED, S.AUTO_DECLINED)
RISK_TIERS = ("LOW", "MEDIUM", "HIGH")
# Upper bounds of the age bands of open tasks; the last band is open-ended.
AGE_BOUNDS = (timedelta(hours=4), timedelta(hours=8), timedelta(hours=24), timedelta(days=3))
PERIODS = (14, 30)


class epoch_seconds(FunctionElement[float]):
    """Seconds since 1970-01-01 UTC of a UTC time column, as a float, on either database."""

    type = Float()
    inherit_cache = True
    name = "epoch_seconds"


@compiles(epoch_seconds, "postgresql")
def _epoch_postgresql(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    return f"CAST(EXTRACT(EPOCH FROM {compiler.process(element.clauses, **kw)}) AS DOUBLE PRECISION)"


@compiles(epoch_seconds, "sqlite")
def _epoch_sqlite(element: epoch_seconds, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC times as ISO text; julianday reads it (millisecond precision).
    return f"((julianday({compiler.process(element.clauses, **kw)}) - 2440587.5) * 86400.0)"


class SlaState(StrEnum):
    ON_TIME = "on_time"
    WARNING = "warning"
    BREACHED = "breached"


class DecisionMode(StrEnum):
    AUTOMATIC = "automatic"
    MANUAL = "manual"


class Outcome(StrEnum):
    APPROVE = "approve"
    PARTIAL = "partial"
    DECLINE = "decline"


@dataclass(frozen=True)
class QueueLoad:
    """Open tasks of one queue: unclaimed (OPEN) and in someone's hands (CLAIMED)."""

    queue: str
    open: int = 0
    claimed: int = 0
    warning: int = 0
    breached: int = 0
    escalated: int = 0

    @property
    def total(self) -> int:
        return self.open + self.claimed


@dataclass(frozen=True)
class AgeBand:
    """Open tasks whose age (now - created_at) is in [lower, upper)."""

    lower: timedelta
    upper: timedelta | None
    count: int


@dataclass(frozen=True)
class OutcomeCounts:
    approve: int = 0
    partial: int = 0
    decline: int = 0

    @property
    def approved(self) -> int:
        return self.approve + self.partial

    @property
    def total(self) -> int:
        return self.approve + self.partial + self.decline

    def plus(self, outcome: Outcome, n: int) -> OutcomeCounts:
        values = {"approve": self.approve, "partial": self.partial, "decline": self.decline}
        values[outcome.value] += n
        return OutcomeCounts(**values)


@dataclass(frozen=True)
class DayDecisions:
    day: date
    automatic: OutcomeCounts = field(default_factory=OutcomeCounts)
    manual: OutcomeCounts = field(default_factory=OutcomeCounts)

    @property
    def total(self) -> int:
        return self.automatic.total + self.manual.total


@dataclass(frozen=True)
class TierApproval:
    tier: str | None  # None: no assessment before the decision
    counts: OutcomeCounts

    @property
    def rate(self) -> float | None:
        """Approved (in full or in part) over all decisions; None without decisions."""
        return self.counts.approved / self.counts.total if self.counts.total else None


@dataclass(frozen=True)
class TimeToDecision:
    mode: DecisionMode
    decisions: int
    median: timedelta | None


@dataclass(frozen=True)
class UrgentTask:
    id: str
    appeal_id: str
    queue: str
    status: TaskStatus
    assignee: str | None
    required_role: str
    risk_tier: str | None
    priority: int
    escalated: bool
    version: int
    created_at: datetime
    due_at: datetime
    sla: SlaState


@dataclass(frozen=True)
class Dashboard:
    now: datetime
    zone: ZoneInfo
    days: int
    queues: list[QueueLoad]
    ageing: list[AgeBand]
    decisions: list[DayDecisions]  # oldest day first, one per day of the period
    tiers: list[TierApproval]
    time_to_decision: list[TimeToDecision]  # automatic, then manual
    urgent: list[UrgentTask]  # the most urgent open tasks, at most `urgent_limit`

    @property
    def first_day(self) -> date:
        return self.decisions[0].day

    @property
    def last_day(self) -> date:
        return self.decisions[-1].day

    @property
    def open_total(self) -> int:
        return sum(q.total for q in self.queues)

    @property
    def warning_total(self) -> int:
        return sum(q.warning for q in self.queues)

    @property
    def breached_total(self) -> int:
        return sum(q.breached for q in self.queues)

    @property
    def escalated_total(self) -> int:
        return sum(q.escalated for q in self.queues)

    @property
    def decided(self) -> OutcomeCounts:
        counts = OutcomeCounts()
        for day in self.decisions:
            for part in (day.automatic, day.manual):
                for outcome in Outcome:
                    counts = counts.plus(outcome, getattr(part, outcome.value))
        return counts


def period_days(now: datetime, zone: ZoneInfo, days: int) -> list[date]:
    """The last `days` calendar days in `zone`, today (there) last."""
    today = now.astimezone(zone).date()
    return [today - timedelta(days=n) for n in range(days - 1, -1, -1)]


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """The instant a calendar day begins in `zone` (daylight saving included)."""
    return datetime.combine(day, time(0), tzinfo=zone)


def _breached(now: datetime) -> Any:
    return col(ReviewTask.due_at) <= now


def _past_warning_point(now: datetime, warning_fraction: float) -> Any:
    created, due = epoch_seconds(col(ReviewTask.created_at)), epoch_seconds(col(ReviewTask.due_at))
    return created * (1 - warning_fraction) + due * warning_fraction <= now.timestamp()


def _sla_state(now: datetime, warning_fraction: float) -> Any:
    return case(
        (_breached(now), literal(SlaState.BREACHED.value)),
        (_past_warning_point(now, warning_fraction), literal(SlaState.WARNING.value)),
        else_=literal(SlaState.ON_TIME.value),
    )


def _open_tasks(
    session: Session, now: datetime, warning_fraction: float
) -> tuple[list[QueueLoad], list[AgeBand]]:
    band = case(
        *((col(ReviewTask.created_at) > now - bound, index) for index, bound in enumerate(AGE_BOUNDS)),
        else_=len(AGE_BOUNDS),
    )
    rows = (
        select(
            col(ReviewTask.queue).label("queue"),
            col(ReviewTask.status).label("status"),
            col(ReviewTask.escalated).label("escalated"),
            band.label("band"),
            _sla_state(now, warning_fraction).label("sla"),
        )
        .where(col(ReviewTask.status).in_(OPEN_TASK_STATUSES))
        .subquery()
    )
    grouped = session.execute(
        select(rows.c.queue, rows.c.status, rows.c.escalated, rows.c.band, rows.c.sla, func.count()).group_by(
            rows.c.queue, rows.c.status, rows.c.escalated, rows.c.band, rows.c.sla
        )
    ).all()
    loads: dict[str, dict[str, int]] = {q: defaultdict(int) for q in KNOWN_QUEUES}
    bands = [0] * (len(AGE_BOUNDS) + 1)
    for queue, status, escalated, band_index, sla, count in grouped:
        load = loads.setdefault(queue, defaultdict(int))
        load["open" if TaskStatus(status) is TaskStatus.OPEN else "claimed"] += count
        if sla != SlaState.ON_TIME.value:
            load[str(sla)] += count
        if escalated:
            load["escalated"] += count
        bands[int(band_index)] += count
    order = list(KNOWN_QUEUES) + sorted(set(loads) - set(KNOWN_QUEUES))
    queues = [QueueLoad(queue=q, **loads[q]) for q in order]
    lowers = (timedelta(0), *AGE_BOUNDS)
    uppers: tuple[timedelta | None, ...] = (*AGE_BOUNDS, None)
    return queues, [AgeBand(lo, up, n) for lo, up, n in zip(lowers, uppers, bands, strict=True)]


def _period_bounds(days: list[date], zone: ZoneInfo) -> list[datetime]:
    """The instants each day of the period begins, and the end of its last day."""
    return [day_start(day, zone) for day in [*days, days[-1] + timedelta(days=1)]]


def _in_period(query: Any, bounds: list[datetime]) -> Any:
    """The decisions (moves to an outcome status) of the period, with their appeal."""
    at = col(AppealEvent.at)
    return (
        query.select_from(AppealEvent)
        .join(Appeal, col(Appeal.id) == col(AppealEvent.appeal_id))
        .where(col(AppealEvent.to_status).in_(OUTCOME_STATUSES), and_(at >= bounds[0], at < bounds[-1]))
    )


def _mode() -> Any:
    return case(
        (col(AppealEvent.to_status).in_(AUTOMATIC_STATUSES), literal(DecisionMode.AUTOMATIC.value)),
        else_=literal(DecisionMode.MANUAL.value),
    )


def _decision_rows(bounds: list[datetime]) -> Any:
    """One row per decision of the period: its day's index, mode, outcome and risk tier."""
    at = col(AppealEvent.at)
    inner = bounds[1:-1]  # a decision before the second day's start is on the first day, ...
    day_index = case(*((at < start, index) for index, start in enumerate(inner)), else_=len(inner))
    outcome = case(
        (col(AppealEvent.to_status).in_(DECLINE_STATUSES), literal(Outcome.DECLINE.value)),
        (
            or_(
                col(AppealEvent.to_status) == S.PARTIALLY_APPROVED,
                col(Appeal.decided_limit_minor) < col(Appeal.requested_limit_minor),
            ),
            literal(Outcome.PARTIAL.value),
        ),
        else_=literal(Outcome.APPROVE.value),
    )
    tier = (
        select(col(Assessment.risk_tier))
        .where(col(Assessment.appeal_id) == col(AppealEvent.appeal_id), col(Assessment.created_at) <= at)
        .order_by(col(Assessment.run).desc())
        .limit(1)
        .correlate(AppealEvent)
        .scalar_subquery()
    )
    query = select(
        day_index.label("day"), _mode().label("mode"), outcome.label("outcome"), tier.label("tier")
    )
    return _in_period(query, bounds).subquery()


def _decisions(
    session: Session, days: list[date], zone: ZoneInfo
) -> tuple[list[DayDecisions], list[TierApproval]]:
    rows = _decision_rows(_period_bounds(days, zone))
    grouped = session.execute(
        select(rows.c.day, rows.c.mode, rows.c.outcome, rows.c.tier, func.count()).group_by(
            rows.c.day, rows.c.mode, rows.c.outcome, rows.c.tier
        )
    ).all()
    per_day = {index: {m: OutcomeCounts() for m in DecisionMode} for index in range(len(days))}
    per_tier: dict[str | None, OutcomeCounts] = {tier: OutcomeCounts() for tier in RISK_TIERS}
    for day_index, mode, outcome, tier, count in grouped:
        cell = per_day[int(day_index)]
        cell[DecisionMode(mode)] = cell[DecisionMode(mode)].plus(Outcome(outcome), count)
        per_tier[tier] = per_tier.get(tier, OutcomeCounts()).plus(Outcome(outcome), count)
    decisions = [
        DayDecisions(day, per_day[i][DecisionMode.AUTOMATIC], per_day[i][DecisionMode.MANUAL])
        for i, day in enumerate(days)
    ]
    known = [TierApproval(tier, per_tier[tier]) for tier in RISK_TIERS]
    others = sorted((t for t in per_tier if t not in RISK_TIERS), key=lambda t: (t is None, t or ""))
    return decisions, known + [TierApproval(tier, per_tier[tier]) for tier in others]


def _time_to_decision(session: Session, days: list[date], zone: ZoneInfo) -> list[TimeToDecision]:
    """The median per mode, in SQL: rank each mode's durations; the middle one or two rows
    (2 x rank between n and n + 2) are averaged."""
    waited = epoch_seconds(col(AppealEvent.at)) - epoch_seconds(col(Appeal.created_at))
    query = select(_mode().label("mode"), waited.label("seconds"))
    rows = _in_period(query, _period_bounds(days, zone)).subquery()
    ranked = select(
        rows.c.mode,
        rows.c.seconds,
        func.row_number().over(partition_by=rows.c.mode, order_by=rows.c.seconds).label("rank"),
        func.count().over(partition_by=rows.c.mode).label("n"),
    ).subquery()
    medians = session.execute(
        select(ranked.c.mode, func.max(ranked.c.n), func.avg(ranked.c.seconds))
        .where(ranked.c.rank * 2 >= ranked.c.n, ranked.c.rank * 2 <= ranked.c.n + 2)
        .group_by(ranked.c.mode)
    ).all()
    found = {DecisionMode(mode): (int(n), float(middle)) for mode, n, middle in medians}
    result = []
    for mode in DecisionMode:
        n, middle = found.get(mode, (0, 0.0))
        result.append(TimeToDecision(mode, n, timedelta(seconds=round(middle)) if n else None))
    return result


def _urgent(session: Session, now: datetime, warning_fraction: float, limit: int) -> list[UrgentTask]:
    """Breached tasks first, then those past the warning point, then the rest; within each,
    escalated and higher priority first, then the earliest due."""
    rank = case((_breached(now), 0), (_past_warning_point(now, warning_fraction), 1), else_=2)
    rows = session.execute(
        select(ReviewTask, _sla_state(now, warning_fraction).label("sla"))
        .where(col(ReviewTask.status).in_(OPEN_TASK_STATUSES))
        .order_by(
            rank,
            col(ReviewTask.escalated).desc(),
            col(ReviewTask.priority).desc(),
            col(ReviewTask.due_at),
            col(ReviewTask.id),
        )
        .limit(limit)
    ).all()
    return [
        UrgentTask(
            id=task.id,
            appeal_id=task.appeal_id,
            queue=task.queue,
            status=TaskStatus(task.status),
            assignee=task.assignee,
            required_role=task.required_role,
            risk_tier=task.risk_tier,
            priority=task.priority,
            escalated=task.escalated,
            version=task.version,
            created_at=task.created_at,
            due_at=task.due_at,
            sla=SlaState(state),
        )
        for task, state in rows
    ]


def supervisor_dashboard(
    session: Session,
    *,
    now: datetime,
    zone: ZoneInfo,
    days: int = 14,
    warning_fraction: float,
    urgent_limit: int = 50,
) -> Dashboard:
    """The dashboard as of `now`; decisions over the last `days` calendar days in `zone`."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if days < 1:
        raise ValueError("days must be at least 1")
    period = period_days(now, zone, days)
    queues, ageing = _open_tasks(session, now, warning_fraction)
    decisions, tiers = _decisions(session, period, zone)
    return Dashboard(
        now=now,
        zone=zone,
        days=days,
        queues=queues,
        ageing=ageing,
        decisions=decisions,
        tiers=tiers,
        time_to_decision=_time_to_decision(session, period, zone),
        urgent=_urgent(session, now, warning_fraction, urgent_limit),
    )
