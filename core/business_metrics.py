"""The business metrics (docs/metrics.md), counted from the database's own rows at scrape time.

Nothing is counted in a process's memory: every number is an aggregate over rows the workflow
and the API already write (appeals, their audit trail, review tasks, notices, documents). So a
count survives a worker restart, is the same at every worker process that serves it, and a
retried activity (which writes its row once) is never counted twice. Counters are counts of
rows that are only ever added (audit events, closed appeals, rejected documents); gauges are
counts of rows in a state now (open review tasks, notices by state).

Label values are enum values or codes the code defines, never ids; a value outside the expected
shape is reported as `other` so that no free text can grow the label set.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.engine import Engine
from sqlmodel import col

from core.db.case_tables import (
    Appeal,
    AppealEvent,
    Document,
    DocumentState,
    Notification,
    ReviewTask,
    TaskStatus,
)
from core.db.lender_tables import AccountNotice
from core.lender.review import INVITATION_ACCEPTED
from core.reviews.service import REVIEW_QUEUE, SECOND_REVIEW_QUEUE
from core.reviews.sla import ESCALATION_QUEUE
from core.status import CLOSED_STATUSES, AppealStatus

S = AppealStatus

# Time from submission to a decision, in seconds: the automatic path decides minutes after the
# last document, a reviewer within the review SLA (a day by default), a customer who takes the
# whole document window weeks.
DECISION_BUCKETS: tuple[float, ...] = (
    60.0,
    300.0,
    900.0,
    3600.0,
    4 * 3600.0,
    12 * 3600.0,
    86400.0,
    2 * 86400.0,
    3 * 86400.0,
    7 * 86400.0,
    14 * 86400.0,
    30 * 86400.0,
)

# The statuses that are a decision, and the outcome each one is.
DECISION_OUTCOMES: dict[AppealStatus, str] = {
    S.AUTO_APPROVED: "approved",
    S.APPROVED: "approved",
    S.PARTIALLY_APPROVED: "partially_approved",
    S.AUTO_DECLINED: "declined",
    S.DECLINED: "declined",
}
AUTOMATIC_DECISIONS = frozenset({S.AUTO_APPROVED, S.AUTO_DECLINED})
# A closed appeal's outcome when it closed without a decision.
UNDECIDED_OUTCOMES: dict[AppealStatus, str] = {
    S.INELIGIBLE: "ineligible",
    S.EXPIRED: "expired",
    S.WITHDRAWN: "withdrawn",
}
OPEN_TASK_STATUSES = (TaskStatus.OPEN, TaskStatus.CLAIMED)
QUEUES = (REVIEW_QUEUE, SECOND_REVIEW_QUEUE, ESCALATION_QUEUE)
SLA_WARNING = "sla_warning"  # core/reviews/sla.py: the warning to the assignee
SLA_BREACH = "task_escalated"  # ... and the escalation at breach

_LABEL = re.compile(r"^[A-Za-z0-9_.-]{1,60}$")
OTHER = "other"


def label(value: object) -> str:
    """A label value as stored, when it has the shape of a code; `other` when it does not."""
    text = str(getattr(value, "value", value)) if value is not None else ""
    return text if _LABEL.match(text) else OTHER


@dataclass
class DecisionTimes:
    """One (path, outcome)'s time-to-decision histogram: cumulative counts per DECISION_BUCKETS."""

    buckets: list[int] = field(default_factory=lambda: [0] * len(DECISION_BUCKETS))
    count: int = 0
    sum_seconds: float = 0.0


@dataclass
class BusinessCounts:
    started: dict[str, int] = field(default_factory=dict)  # by source
    open_appeals: dict[str, int] = field(default_factory=dict)  # by status
    closed: dict[tuple[str, str], int] = field(default_factory=dict)  # by (path, outcome)
    decisions: dict[tuple[str, str], DecisionTimes] = field(default_factory=dict)  # (path, outcome)
    open_review_tasks: dict[tuple[str, str], int] = field(default_factory=dict)  # (queue, status)
    sla_warnings: int = 0
    sla_breaches: int = 0
    notices: dict[tuple[str, str, str, str], int] = field(
        default_factory=dict
    )  # about, audience, channel, state
    document_rejections: dict[str, int] = field(default_factory=dict)  # by rejection code
    limit_applies: int = 0
    limit_refusals: int = 0


def _seconds_between(engine: Engine, start: Any, end: Any) -> ColumnElement[Any]:
    if engine.dialect.name == "postgresql":
        return func.extract("epoch", end - start)
    # SQLite stores the UTC columns as text that julianday reads (days, fractional).
    return (func.julianday(end) - func.julianday(start)) * 86400.0


def _path(max_stage: int | None) -> str:
    """Who worked an appeal: a second reviewer, a reviewer, or nobody (the automatic path)."""
    if max_stage is None:
        return "automatic"
    return "four_eyes" if max_stage >= 2 else "manual"


def count_business(engine: Engine) -> BusinessCounts:
    """Every business metric, in a handful of aggregate queries (one read-only connection)."""
    counts = BusinessCounts()
    event, appeal, task = AppealEvent, Appeal, ReviewTask
    with engine.connect() as conn:
        total = conn.execute(select(func.count()).select_from(appeal)).scalar_one()
        invited = conn.execute(
            select(func.count(func.distinct(col(event.appeal_id)))).where(
                col(event.kind) == INVITATION_ACCEPTED
            )
        ).scalar_one()
        counts.started = {"customer": total - invited, "invitation": invited}

        # Every open status reported, 0 included: the series exist before the first appeal.
        counts.open_appeals = {status.value: 0 for status in S if status not in CLOSED_STATUSES}
        for status, n in conn.execute(
            select(col(appeal.status), func.count()).where(col(appeal.is_open)).group_by(col(appeal.status))
        ):
            counts.open_appeals[label(status)] = n

        # A closed appeal's outcome is its last decision (an automatic decline a reviewer later
        # overturned is an approval), or how it closed without one. The last decision in one
        # pass, without joining the trail to itself: max(seq * 8 + the decision's code).
        codes = {status: code for code, status in enumerate(DECISION_OUTCOMES, start=1)}
        decided = (
            select(
                col(event.appeal_id),
                func.max(col(event.seq) * 8 + case(codes, value=col(event.to_status), else_=0)).label("last"),
            )
            .where(col(event.to_status).in_(list(DECISION_OUTCOMES)))
            .group_by(col(event.appeal_id))
            .subquery()
        )
        stages = (
            select(col(task.appeal_id), func.max(col(task.stage)).label("max_stage"))
            .group_by(col(task.appeal_id))
            .subquery()
        )
        decision_code = decided.c.last % 8
        closed_rows = conn.execute(
            select(col(appeal.status), decision_code, stages.c.max_stage, func.count())
            .select_from(appeal)
            .outerjoin(decided, decided.c.appeal_id == appeal.id)
            .outerjoin(stages, stages.c.appeal_id == appeal.id)
            .where(~col(appeal.is_open))
            .group_by(col(appeal.status), decision_code, stages.c.max_stage)
        )
        decisions_by_code = {code: status for status, code in codes.items()}
        for status, code, max_stage, n in closed_rows:
            if status in UNDECIDED_OUTCOMES:
                outcome = UNDECIDED_OUTCOMES[S(status)]
            else:
                decision = decisions_by_code.get(int(code)) if code is not None else None
                outcome = DECISION_OUTCOMES[decision] if decision else OTHER
            key = (_path(max_stage), outcome)
            counts.closed[key] = counts.closed.get(key, 0) + n

        seconds = _seconds_between(engine, col(appeal.created_at), event.at)
        decision_rows = conn.execute(
            select(
                col(event.to_status),
                col(event.from_status),
                func.count(),
                func.coalesce(func.sum(seconds), 0.0),
                *[func.sum(case((seconds <= bound, 1), else_=0)) for bound in DECISION_BUCKETS],
            )
            .select_from(event)
            .join(appeal, col(appeal.id) == col(event.appeal_id))
            .where(col(event.to_status).in_(list(DECISION_OUTCOMES)))
            .group_by(col(event.to_status), col(event.from_status))
        )
        for to_status, from_status, n, total_seconds, *buckets in decision_rows:
            status = S(to_status)
            if status in AUTOMATIC_DECISIONS:
                path = "automatic"
            else:
                path = "four_eyes" if from_status == S.IN_SECOND_REVIEW else "manual"
            times = counts.decisions.setdefault((path, DECISION_OUTCOMES[status]), DecisionTimes())
            times.count += n
            times.sum_seconds += float(total_seconds or 0.0)
            times.buckets = [a + int(b or 0) for a, b in zip(times.buckets, buckets, strict=True)]

        counts.open_review_tasks = {(q, s.value): 0 for q in QUEUES for s in OPEN_TASK_STATUSES}
        for queue, task_status, n in conn.execute(
            select(col(task.queue), col(task.status), func.count())
            .where(col(task.status).in_(OPEN_TASK_STATUSES))
            .group_by(col(task.queue), col(task.status))
        ):
            key = (label(queue), label(task_status))
            counts.open_review_tasks[key] = counts.open_review_tasks.get(key, 0) + n

        for kind, n in conn.execute(
            select(col(event.kind), func.count())
            .where(col(event.kind).in_([SLA_WARNING, SLA_BREACH]))
            .group_by(col(event.kind))
        ):
            if kind == SLA_WARNING:
                counts.sla_warnings = n
            else:
                counts.sla_breaches = n

        for about, table in (("appeal", Notification), ("account", AccountNotice)):
            for audience, channel, state, n in conn.execute(
                select(col(table.audience), col(table.channel), col(table.status), func.count()).group_by(
                    col(table.audience), col(table.channel), col(table.status)
                )
            ):
                notice = (about, label(audience), label(channel), label(state))
                counts.notices[notice] = counts.notices.get(notice, 0) + n

        for code, n in conn.execute(
            select(col(Document.rejection_code), func.count())
            .where(col(Document.state) == DocumentState.REJECTED)
            .group_by(col(Document.rejection_code))
        ):
            reason = label(code) if code else "unspecified"
            counts.document_rejections[reason] = counts.document_rejections.get(reason, 0) + n

        for applied, n in conn.execute(
            select(col(event.to_status), func.count())
            .where(col(event.to_status).in_([S.LIMIT_APPLIED, S.LIMIT_APPLY_FAILED]))
            .group_by(col(event.to_status))
        ):
            if applied == S.LIMIT_APPLIED:
                counts.limit_applies = n
            else:
                counts.limit_refusals = n
    return counts
