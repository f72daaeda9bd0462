"""The review queue: listing with keyset pagination, and claims that never collide.

claim-next takes the most urgent task the caller may work (priority, then earliest due). On
PostgreSQL the candidate is locked with FOR UPDATE SKIP LOCKED, so concurrent callers pass
over each other's rows instead of waiting; on both databases the claim itself is a
conditional UPDATE (status still OPEN, version unchanged), so a lost race changes nothing.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Row, and_, bindparam, case, func, or_, update
from sqlalchemy import select as sa_select
from sqlalchemy.sql.elements import BindParameter
from sqlmodel import Session, col, select

from core import staff
from core.appeals.audit import append_event
from core.appeals.service import Transition, apply_transition, get_appeal, lock_appeal
from core.auth import SUPERVISING_ROLES, Principal, required_roles_for
from core.cursors import decode as decode_cursor
from core.cursors import identifier, instant, int32
from core.db.case_tables import Appeal, ReviewTask, TaskStatus
from core.db.types import utcnow
from core.db.unchanged import recall, remember
from core.errors import Conflict, Forbidden, InvalidInput, PreconditionFailed
from core.reviews.notices import record_task_assigned
from core.reviews.rules import NOT_CLAIM_HOLDER, NOT_THE_FIRST_REVIEWER, Refusal, Stage, why_not_role
from core.reviews.service import get_task


class TaskSort(StrEnum):
    DUE = "due"
    PRIORITY = "priority"
    AGE = "age"


@dataclass(frozen=True)
class TaskFilter:
    status: TaskStatus | None = TaskStatus.OPEN
    queue: str | None = None
    assignee: str | None = None
    overdue: bool | None = None
    risk_tier: str | None = None


def default_status(assignee: str | None) -> TaskStatus:
    """The status a listing means when it names none. Without an assignee it is the queue to
    pick work from (OPEN); for one person it is the work in their hands (CLAIMED): an OPEN
    task has no assignee, so "my tasks" defaulting to OPEN would always be empty."""
    return TaskStatus.OPEN if assignee is None else TaskStatus.CLAIMED


def _sort_columns(sort: TaskSort) -> list[Any]:
    if sort is TaskSort.PRIORITY:
        return [col(ReviewTask.priority).desc(), col(ReviewTask.due_at), col(ReviewTask.id)]
    if sort is TaskSort.AGE:
        return [col(ReviewTask.created_at), col(ReviewTask.id)]
    return [col(ReviewTask.due_at), col(ReviewTask.id)]


def _cursor_values(task: ReviewTask, sort: TaskSort) -> list[Any]:
    if sort is TaskSort.PRIORITY:
        return [task.priority, task.due_at.isoformat(), task.id]
    if sort is TaskSort.AGE:
        return [task.created_at.isoformat(), task.id]
    return [task.due_at.isoformat(), task.id]


def _encode(values: list[Any], sort: TaskSort) -> str:
    return base64.urlsafe_b64encode(json.dumps([sort.value, *values]).encode()).decode().rstrip("=")


def _cursor_params(cursor: str, sort: TaskSort) -> dict[str, Any]:
    """The values a cursor carries, as the parameters of `_after`'s condition."""
    try:
        raw = decode_cursor(cursor)
        if raw[0] != sort.value:
            raise ValueError("cursor of another sort")
        values = raw[1:]
        if sort is TaskSort.PRIORITY:
            return {
                "after_priority": int32(values[0]),
                "after_at": instant(values[1]),
                "after_id": identifier(values[2]),
            }
        return {"after_at": instant(values[0]), "after_id": identifier(values[1])}
    except (ValueError, TypeError, IndexError, KeyError) as exc:
        raise InvalidInput("The cursor is not valid for this sort.", code="invalid_cursor") from exc


def _after(sort: TaskSort) -> Any:
    """Past the cursor's task in `sort` order (parameters from `_cursor_params`)."""
    task_id: BindParameter[Any] = bindparam("after_id")
    at: BindParameter[Any] = bindparam("after_at")
    if sort is TaskSort.PRIORITY:
        priority: BindParameter[Any] = bindparam("after_priority")
        # The leading `priority <= p` lets the index seek; the OR alone would be a filter.
        return and_(
            col(ReviewTask.priority) <= priority,
            or_(
                col(ReviewTask.priority) < priority,
                and_(col(ReviewTask.priority) == priority, col(ReviewTask.due_at) > at),
                and_(
                    col(ReviewTask.priority) == priority,
                    col(ReviewTask.due_at) == at,
                    col(ReviewTask.id) > task_id,
                ),
            ),
        )
    column = ReviewTask.created_at if sort is TaskSort.AGE else ReviewTask.due_at
    return and_(
        col(column) >= at, or_(col(column) > at, and_(col(column) == at, col(ReviewTask.id) > task_id))
    )


# Which filters a listing sets (and whether it wants overdue tasks or the others): the shape
# of its statements, whose values are parameters.
_Shape = tuple[bool, bool, bool, bool | None, bool]


def _shape(f: TaskFilter) -> _Shape:
    return (
        f.status is not None,
        f.queue is not None,
        f.assignee is not None,
        f.overdue,
        f.risk_tier is not None,
    )


def _where_params(f: TaskFilter, now: datetime) -> dict[str, Any]:
    params: dict[str, Any] = {
        "status": f.status,
        "queue": f.queue,
        "assignee": f.assignee,
        "risk_tier": f.risk_tier,
    }
    params = {name: value for name, value in params.items() if value is not None}
    if f.overdue is not None:
        params["now"] = now
    return params


def _where(shape: _Shape) -> list[Any]:
    status, queue, assignee, overdue, risk_tier = shape
    clauses: list[Any] = []
    if status:
        clauses.append(col(ReviewTask.status) == bindparam("status"))
    if queue:
        clauses.append(col(ReviewTask.queue) == bindparam("queue"))
    if assignee:
        clauses.append(col(ReviewTask.assignee) == bindparam("assignee"))
    if overdue is True:
        clauses.append(col(ReviewTask.due_at) < bindparam("now"))
    elif overdue is False:
        clauses.append(col(ReviewTask.due_at) >= bindparam("now"))
    if risk_tier:
        clauses.append(col(ReviewTask.risk_tier) == bindparam("risk_tier"))
    return clauses


@functools.lru_cache(maxsize=256)
def _statements(
    shape: _Shape, sort: TaskSort, after: bool, columns: tuple[str, ...] | None
) -> tuple[Any, Any]:
    """The page and count statements of one shape of listing, built once: a statement object
    used again keeps its cache key, so SQLAlchemy neither rebuilds nor recompiles it.
    `columns` None: whole ReviewTask entities (the ORM listing)."""
    table = ReviewTask.__table__  # type: ignore[attr-defined]
    selected = [ReviewTask] if columns is None else [table.c[name] for name in columns]
    clauses = _where(shape)
    query = sa_select(*selected).where(*clauses)
    if after:
        query = query.where(_after(sort))
    count = sa_select(func.count()).select_from(ReviewTask).where(*clauses)
    return query.order_by(*_sort_columns(sort)).limit(bindparam("page_rows")), count


def _page_statements(
    f: TaskFilter,
    sort: TaskSort,
    cursor: str | None,
    limit: int,
    now: datetime | None,
    columns: tuple[str, ...] | None,
) -> tuple[Any, Any, dict[str, Any], dict[str, Any]]:
    """The statements of one page with their parameters: the tasks in order (one row past
    the page, to know whether another follows), and the count of every matching task."""
    page, count = _statements(_shape(f), sort, bool(cursor), columns)
    where = _where_params(f, now or utcnow())
    after = _cursor_params(cursor, sort) if cursor else {}
    return page, count, {**where, **after, "page_rows": limit + 1}, where


def _page(rows: list[Any], sort: TaskSort, limit: int) -> tuple[list[Any], str | None]:
    next_cursor = _encode(_cursor_values(rows[limit - 1], sort), sort) if len(rows) > limit else None
    return rows[:limit], next_cursor


def list_tasks(
    session: Session,
    f: TaskFilter,
    *,
    sort: TaskSort,
    cursor: str | None,
    limit: int,
    now: datetime | None = None,
) -> tuple[list[ReviewTask], str | None, int]:
    """A page of tasks, the cursor of the next page, and how many tasks match in all."""
    page, count, params, count_params = _page_statements(f, sort, cursor, limit, now, None)
    rows, next_cursor = _page(list(session.scalars(page, params).all()), sort, limit)
    return rows, next_cursor, int(session.execute(count, count_params).scalar_one())


def _count_key(f: TaskFilter, count_params: dict[str, Any]) -> tuple[Any, ...]:
    """What a listing's count depends on: its filters' shape and their values."""
    return (_shape(f), *sorted(count_params.items()))


# What a page's next cursor is made of, whatever the sort.
_CURSOR_COLUMNS = ("id", "priority", "due_at", "created_at")


def list_task_rows(
    connection: Connection,
    f: TaskFilter,
    *,
    columns: Iterable[str],
    sort: TaskSort,
    cursor: str | None,
    limit: int,
    now: datetime | None = None,
) -> tuple[list[Row[Any]], str | None, int]:
    """list_tasks for hot read paths (the JSON queue page): the same page, cursor and total,
    with only the named columns of each task (and those of the cursor, and `total`) as rows,
    read on a Core connection (core.db.read_scope): no ORM objects, no session. The total is
    taken again only when the database has changed since this connection last took it
    (core/db/unchanged.py: SQLite; PostgreSQL counts every time)."""
    names = tuple(dict.fromkeys([*columns, *_CURSOR_COLUMNS]))
    page, count, params, count_params = _page_statements(f, sort, cursor, limit, now, names)
    key = _count_key(f, count_params)
    known = recall(connection, key)  # SQLite: the count taken while nothing has changed since
    if known is not None:
        rows, next_cursor = _page(list(connection.execute(page, params).all()), sort, limit)
        return rows, next_cursor, known
    # The page carries the total as a column of its own (the count, as a scalar subquery the
    # database runs once): one statement, one round trip. A page with no rows carries none.
    with_total = _page_with_total(_shape(f), sort, bool(cursor), names)
    rows = list(connection.execute(with_total, params).all())
    total = rows[0].total if rows else int(connection.execute(count, count_params).scalar_one())
    remember(connection, key, total)
    rows, next_cursor = _page(rows, sort, limit)
    return rows, next_cursor, total


@functools.lru_cache(maxsize=256)
def _page_with_total(shape: _Shape, sort: TaskSort, after: bool, columns: tuple[str, ...]) -> Any:
    """The page statement of `_statements` with its count as the last column, `total` (not
    correlated: the count of every matching task, not of the row's)."""
    page, count = _statements(shape, sort, after, columns)
    return page.add_columns(count.scalar_subquery().correlate(None).label("total"))


def task_in_state(status: TaskStatus) -> Refusal:
    return Refusal(f"the task is {status.value}", f"任务状态为 {status.value}")


@dataclass(frozen=True)
class QueueCounts:
    open: int
    open_overdue: int
    mine: int  # the caller's CLAIMED tasks


def queue_counts(
    session: Session, assignee: str, *, now: datetime | None = None, open_total: int | None = None
) -> QueueCounts:
    """The queue's headline numbers in one statement that reads indexes only: the open tasks
    and how many of them are overdue in one pass over (status, due_at), the caller's claimed
    tasks over (assignee, status). A caller that has just counted the open tasks (the default
    queue's page total) passes `open_total`, and only the overdue ones are counted."""
    now = now or utcnow()
    is_open = ReviewTask.status == TaskStatus.OPEN
    overdue = col(ReviewTask.due_at) < now
    mine = (
        select(func.count())
        .select_from(ReviewTask)
        .where(ReviewTask.assignee == assignee, ReviewTask.status == TaskStatus.CLAIMED)
        .scalar_subquery()
    )
    if open_total is None:
        both = session.exec(
            select(func.count(), func.coalesce(func.sum(case((overdue, 1), else_=0)), 0), mine).where(is_open)
        ).one()
        return QueueCounts(open=int(both[0]), open_overdue=int(both[1]), mine=int(both[2]))
    late = select(func.count()).select_from(ReviewTask).where(is_open, overdue).scalar_subquery()
    known = session.exec(select(late, mine)).one()
    return QueueCounts(open=open_total, open_overdue=int(known[0]), mine=int(known[1]))


def why_not_claimable(task: ReviewTask, principal: Principal) -> Refusal | None:
    """The reason this person may not take this task, or None when they may."""
    if task.status != TaskStatus.OPEN:
        return task_in_state(TaskStatus(task.status))
    not_role = why_not_role(task.required_role, principal.role.value)
    if not_role is not None:
        return not_role
    if task.customer_id == principal.subject:
        return Refusal("reviewers may not decide their own appeal", "审核人员不得处理本人的申诉")
    if task.excluded_reviewer == principal.subject:
        return NOT_THE_FIRST_REVIEWER
    return None


def why_not_releasable(task: ReviewTask, principal: Principal) -> Refusal | None:
    """The claim holder gives a task back; those who manage the queue (supervisors and
    admins, who may reassign it too) may release anyone's claim."""
    if task.status != TaskStatus.CLAIMED:
        return task_in_state(TaskStatus(task.status))
    if task.assignee != principal.subject and principal.role not in SUPERVISING_ROLES:
        return NOT_CLAIM_HOLDER
    return None


def why_not_reassigning(task: ReviewTask, principal: Principal) -> Refusal | None:
    """Supervisors and admins hand open or claimed tasks to someone (whether that person may
    take the task is the staff directory's answer, when they are named)."""
    if principal.role not in SUPERVISING_ROLES:
        return Refusal("only supervisors reassign tasks", "只有主管可以改派任务")
    if task.status not in (TaskStatus.OPEN, TaskStatus.CLAIMED):
        return task_in_state(TaskStatus(task.status))
    return None


def _claimable(principal: Principal) -> list[Any]:
    return [
        ReviewTask.status == TaskStatus.OPEN,
        col(ReviewTask.required_role).in_(required_roles_for(principal.role)),
        col(ReviewTask.customer_id) != principal.subject,
        or_(
            col(ReviewTask.excluded_reviewer).is_(None),
            col(ReviewTask.excluded_reviewer) != principal.subject,
        ),
    ]


def follow_task(session: Session, task: ReviewTask, *, actor: str, at: datetime) -> None:
    """The appeal's status follows its open task, in the same transaction as the claim,
    release or reassignment: in review while claimed, pending while open. The appeal page is
    right the moment the queue answers; the workflow is told afterwards only to know who may
    decide."""
    stage = Stage(task.stage)
    target = stage.in_review_status if task.status == TaskStatus.CLAIMED else stage.pending_status
    appeal = get_appeal(session, task.appeal_id)
    # Only between the two statuses of the task's review: any other status is the workflow's.
    if appeal.status != target and appeal.status in (stage.pending_status, stage.in_review_status):
        apply_transition(
            session,
            Transition(
                appeal_id=appeal.id,
                to_status=target,
                at=at,
                actor=actor,
                details={"task_id": task.id, "reviewer": task.assignee},
            ),
        )


def _take(session: Session, task: ReviewTask, assignee: str, actor: str, kind: str) -> ReviewTask | None:
    """Conditional update: only if nobody changed the task since we read it."""
    now = utcnow()
    # Read before the UPDATE: an ORM-enabled update would also refresh the loaded object.
    before = {"status": TaskStatus(task.status).value, "assignee": task.assignee}
    result = session.execute(
        update(ReviewTask)
        .where(col(ReviewTask.id) == task.id, col(ReviewTask.version) == task.version)
        .values(status=TaskStatus.CLAIMED, assignee=assignee, claimed_at=now, version=task.version + 1)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return None
    append_event(
        session,
        appeal_id=task.appeal_id,
        at=now,
        actor=actor,
        kind=kind,
        details={
            "task_id": task.id,
            "before": before,
            "after": {"status": "CLAIMED", "assignee": assignee},
        },
    )
    record_task_assigned(session, task, assignee=assignee, assigned_by=actor, at=now)
    session.expire(task)
    taken = session.get(ReviewTask, task.id)
    assert taken is not None
    follow_task(session, taken, actor=actor, at=now)
    return taken


def claim_next(session: Session, principal: Principal, *, attempts: int = 5) -> ReviewTask | None:
    principal = staff.acting_principal(session, principal)
    postgres = session.get_bind().dialect.name == "postgresql"
    for _ in range(attempts):
        query = (
            select(ReviewTask)
            .where(*_claimable(principal))
            .order_by(col(ReviewTask.priority).desc(), col(ReviewTask.due_at), col(ReviewTask.id))
            .limit(1)
        )
        if postgres:
            # The task and its appeal at once, skipping what anyone holds: a claim never waits
            # for a lock while holding one (the appeal is locked before its tasks, see _locked_task).
            query = query.join(Appeal, col(Appeal.id) == col(ReviewTask.appeal_id)).with_for_update(
                skip_locked=True
            )
        candidate = session.exec(query).first()
        if candidate is None:
            return None
        taken = _take(session, candidate, principal.subject, principal.actor, "task_claimed")
        if taken is not None:
            return taken
    return None


def _locked_task(session: Session, task_id: str) -> ReviewTask:
    """The task as it is once its appeal's row is locked. The workflow's steps lock the appeal
    and then change its tasks (a withdrawal cancels them, a decision completes one); a queue
    action that changed the task first and the appeal's status second could deadlock with one."""
    task = get_task(session, task_id)
    lock_appeal(session, task.appeal_id)
    session.refresh(task)
    return task


def _check_version(task: ReviewTask, if_match: int | None) -> None:
    if if_match is not None and if_match != task.version:
        raise PreconditionFailed(
            f"The task changed (version {task.version}, you had {if_match}); reload it.",
            code="stale_version",
            current_version=task.version,
        )


def claim(session: Session, task_id: str, principal: Principal, *, if_match: int | None = None) -> ReviewTask:
    principal = staff.acting_principal(session, principal)
    task = _locked_task(session, task_id)
    _check_version(task, if_match)
    reason = why_not_claimable(task, principal)
    if reason is not None:
        error = Conflict if task.status != TaskStatus.OPEN else Forbidden
        raise error(f"You cannot claim this task: {reason}.", code="task_not_claimable")
    taken = _take(session, task, principal.subject, principal.actor, "task_claimed")
    if taken is None:
        raise Conflict("Someone else claimed this task first.", code="task_not_claimable")
    return taken


def release(
    session: Session, task_id: str, principal: Principal, *, if_match: int | None = None
) -> ReviewTask:
    principal = staff.acting_principal(session, principal)
    task = _locked_task(session, task_id)
    _check_version(task, if_match)
    if why_not_releasable(task, principal) is not None:
        raise Conflict("Only the reviewer holding a claimed task can release it.", code="not_claim_holder")
    before = {"status": task.status.value, "assignee": task.assignee}
    task.status, task.assignee, task.claimed_at = TaskStatus.OPEN, None, None
    task.version += 1
    session.add(task)
    append_event(
        session,
        appeal_id=task.appeal_id,
        at=utcnow(),
        actor=principal.actor,
        kind="task_released",
        details={"task_id": task.id, "before": before, "after": {"status": "OPEN", "assignee": None}},
    )
    follow_task(session, task, actor=principal.actor, at=utcnow())
    session.flush()
    return task


def reassign(
    session: Session,
    task_id: str,
    principal: Principal,
    *,
    to: str,
    if_match: int | None = None,
) -> ReviewTask:
    """Hands the task to `to`, who must be in the staff directory, active, and hold a role
    that may work it (their role is the directory's: never one a request names)."""
    if principal.role not in SUPERVISING_ROLES:
        raise Forbidden("Only a supervisor can reassign tasks.", code="role_required")
    principal = staff.acting_principal(session, principal)
    task = _locked_task(session, task_id)
    _check_version(task, if_match)
    if task.status not in (TaskStatus.OPEN, TaskStatus.CLAIMED):
        raise Conflict(f"The task is {task.status.value}.", code="task_closed")
    target = staff.assignee(session, to, task.required_role)
    reason = why_not_claimable(task.model_copy(update={"status": TaskStatus.OPEN}), target)
    if reason is not None:
        raise Conflict(f"{to} cannot take this task: {reason}.", code="task_not_assignable")
    before = {"status": task.status.value, "assignee": task.assignee}
    task.status, task.assignee, task.claimed_at = TaskStatus.CLAIMED, to, utcnow()
    task.version += 1
    session.add(task)
    append_event(
        session,
        appeal_id=task.appeal_id,
        at=utcnow(),
        actor=principal.actor,
        kind="task_reassigned",
        details={"task_id": task.id, "before": before, "after": {"status": "CLAIMED", "assignee": to}},
    )
    record_task_assigned(session, task, assignee=to, assigned_by=principal.actor, at=utcnow())
    follow_task(session, task, actor=principal.actor, at=utcnow())
    session.flush()
    return task
