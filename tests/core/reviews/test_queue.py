"""The review queue on SQLite and PostgreSQL: claims that never collide, who may take what,
optimistic concurrency, keyset listing, and the audit trail every queue action leaves."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from core.appeals.audit import verify_chain
from core.appeals.service import NewAppeal, create_appeal
from core.auth import Principal, Role
from core.db import read_scope, session_scope
from core.db.case_tables import AppealEvent, ReviewTask, TaskStatus
from core.db.types import utcnow
from core.errors import Conflict, Forbidden, InvalidInput, PreconditionFailed
from core.reviews.queue import (
    TaskFilter,
    TaskSort,
    claim,
    claim_next,
    list_task_rows,
    list_tasks,
    reassign,
    release,
    why_not_claimable,
)
from tests.factories import make_customer
from tests.staff_directory import add_staff

REVIEWER = Principal(subject="r-1", role=Role.REVIEWER)
OTHER_REVIEWER = Principal(subject="r-2", role=Role.REVIEWER)
SENIOR = Principal(subject="s-1", role=Role.SENIOR_REVIEWER)
SUPERVISOR = Principal(subject="sup-1", role=Role.SUPERVISOR)


@dataclass(frozen=True)
class TaskRef:
    id: str
    appeal_id: str
    customer_id: str
    priority: int
    due_at: datetime
    created_at: datetime
    queue: str
    status: TaskStatus
    assignee: str | None
    risk_tier: str | None


def make_task(
    engine: Engine,
    *,
    priority: int = 0,
    due_at: datetime | None = None,
    created_at: datetime | None = None,
    required_role: str = "reviewer",
    risk_tier: str | None = "MEDIUM",
    queue: str = "review",
    status: TaskStatus = TaskStatus.OPEN,
    assignee: str | None = None,
    excluded_reviewer: str | None = None,
) -> TaskRef:
    """A customer, their appeal, and one review task for it (customer_id is the appeal's)."""
    c = make_customer(engine)
    now = utcnow()
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, 500_000))
        task = ReviewTask(
            id=str(uuid.uuid4()),
            appeal_id=appeal.id,
            customer_id=c.customer_id,
            risk_tier=risk_tier,
            queue=queue,
            status=status,
            priority=priority,
            required_role=required_role,
            assignee=assignee,
            excluded_reviewer=excluded_reviewer,
            due_at=due_at or now + timedelta(hours=24),
            claimed_at=now if status is TaskStatus.CLAIMED else None,
            created_at=created_at or now,
        )
        session.add(task)
        session.flush()
        return TaskRef(
            task.id,
            appeal.id,
            c.customer_id,
            task.priority,
            task.due_at,
            task.created_at,
            task.queue,
            task.status,
            task.assignee,
            task.risk_tier,
        )


def _task(engine: Engine, task_id: str) -> ReviewTask:
    with session_scope(engine, read_only=True) as session:
        task = session.get(ReviewTask, task_id)
        assert task is not None
        return task


def _events(engine: Engine, appeal_id: str) -> list[AppealEvent]:
    with session_scope(engine, read_only=True) as session:
        return list(
            session.exec(
                select(AppealEvent).where(AppealEvent.appeal_id == appeal_id).order_by(col(AppealEvent.seq))
            ).all()
        )


# (a) concurrency --------------------------------------------------------------------------


def test_parallel_claim_next_gives_each_task_to_exactly_one_reviewer(engine: Engine) -> None:
    now = utcnow()
    tasks = [make_task(engine, priority=i % 3, due_at=now + timedelta(minutes=i)) for i in range(10)]
    callers = 20
    barrier = threading.Barrier(callers)
    results: dict[str, str | None] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def work(n: int) -> None:
        principal = Principal(subject=f"reviewer-{n}", role=Role.REVIEWER)
        try:
            barrier.wait(timeout=30)
            with session_scope(engine) as session:
                task = claim_next(session, principal)
                task_id = task.id if task is not None else None
            with lock:
                results[principal.subject] = task_id
        except BaseException as exc:
            with lock:
                errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == []
    assert len(results) == callers
    claimed = [task_id for task_id in results.values() if task_id is not None]
    assert sorted(claimed) == sorted(t.id for t in tasks)  # every task once, none twice
    assert sum(1 for task_id in results.values() if task_id is None) == callers - len(tasks)
    holder = {task_id: subject for subject, task_id in results.items() if task_id is not None}
    for ref in tasks:
        stored = _task(engine, ref.id)
        assert stored.status == TaskStatus.CLAIMED
        assert stored.assignee == holder[ref.id]
        assert stored.version == 2
        events = _events(engine, ref.appeal_id)
        assert [e.kind for e in events].count("task_claimed") == 1
        assert verify_chain(events) is None


# (b) order and eligibility ---------------------------------------------------------------


def test_claim_next_takes_priority_then_earliest_due_and_respects_eligibility(engine: Engine) -> None:
    now = utcnow()
    low_overdue = make_task(engine, priority=0, due_at=now - timedelta(hours=2))
    high_late = make_task(engine, priority=5, due_at=now + timedelta(hours=5))
    high_early = make_task(engine, priority=5, due_at=now + timedelta(hours=1))
    senior_only = make_task(engine, priority=10, required_role="senior_reviewer")
    excluded = make_task(engine, priority=15, excluded_reviewer=REVIEWER.subject)
    own = make_task(engine, priority=20)
    # The reviewer is also the customer of `own` (staff can be customers too).
    reviewer = Principal(subject=own.customer_id, role=Role.REVIEWER)
    excluded_too = make_task(engine, priority=14, excluded_reviewer=reviewer.subject)

    reasons = {
        ref.id: why_not_claimable(_task(engine, ref.id), reviewer)
        for ref in (senior_only, own, excluded_too, high_early)
    }
    assert reasons[senior_only.id] == "the task needs the senior_reviewer role"
    assert reasons[own.id] == "reviewers may not decide their own appeal"
    assert "someone other" in (reasons[excluded_too.id] or "")
    assert reasons[high_early.id] is None

    taken: list[str | None] = []
    for _ in range(5):
        with session_scope(engine) as session:
            task = claim_next(session, reviewer)
            taken.append(task.id if task else None)
    # `excluded` names another reviewer (r-1), so this reviewer may take it.
    assert taken == [excluded.id, high_early.id, high_late.id, low_overdue.id, None]

    with session_scope(engine) as session:
        first = claim_next(session, SENIOR)
        assert first is not None and first.id == own.id and first.assignee == SENIOR.subject
    with session_scope(engine) as session:
        second = claim_next(session, SENIOR)
        assert second is not None and second.id == excluded_too.id
    with session_scope(engine) as session:
        third = claim_next(session, SENIOR)
        assert third is not None and third.id == senior_only.id
    with session_scope(engine) as session:
        assert claim_next(session, SENIOR) is None


def test_claim_next_skips_tasks_that_are_not_open(engine: Engine) -> None:
    make_task(engine, priority=9, status=TaskStatus.CLAIMED, assignee="r-9")
    make_task(engine, priority=8, status=TaskStatus.COMPLETED)
    make_task(engine, priority=7, status=TaskStatus.CANCELLED)
    open_task = make_task(engine, priority=1)
    with session_scope(engine) as session:
        task = claim_next(session, REVIEWER)
        assert task is not None and task.id == open_task.id
    with session_scope(engine) as session:
        assert claim_next(session, OTHER_REVIEWER) is None


def test_plain_reviewer_never_gets_a_senior_task(engine: Engine) -> None:
    senior_only = make_task(engine, priority=20, required_role="senior_reviewer")
    with session_scope(engine) as session:
        assert claim_next(session, REVIEWER) is None
    with session_scope(engine) as session, pytest.raises(Forbidden):
        claim(session, senior_only.id, REVIEWER)
    with session_scope(engine) as session:
        task = claim_next(session, SUPERVISOR)
        assert task is not None and task.id == senior_only.id


# (c) errors -----------------------------------------------------------------------------------


def test_stale_if_match_is_refused(engine: Engine) -> None:
    ref = make_task(engine)
    with session_scope(engine) as session:
        claim(session, ref.id, REVIEWER, if_match=1)
    with session_scope(engine) as session:
        release(session, ref.id, REVIEWER, if_match=2)
    assert _task(engine, ref.id).version == 3
    with session_scope(engine) as session, pytest.raises(PreconditionFailed) as stale:
        claim(session, ref.id, OTHER_REVIEWER, if_match=1)
    assert stale.value.extra["current_version"] == 3
    with session_scope(engine) as session, pytest.raises(PreconditionFailed):
        release(session, ref.id, REVIEWER, if_match=2)
    with session_scope(engine) as session, pytest.raises(PreconditionFailed):
        reassign(session, ref.id, SUPERVISOR, to="r-3", if_match=1)
    stored = _task(engine, ref.id)
    assert stored.status == TaskStatus.OPEN and stored.assignee is None and stored.version == 3


def test_claiming_a_claimed_task_is_a_conflict(engine: Engine) -> None:
    ref = make_task(engine)
    with session_scope(engine) as session:
        claim(session, ref.id, REVIEWER)
    with session_scope(engine) as session, pytest.raises(Conflict):
        claim(session, ref.id, OTHER_REVIEWER)
    with session_scope(engine) as session, pytest.raises(Conflict):
        claim(session, ref.id, REVIEWER)  # not even the holder claims twice
    assert _task(engine, ref.id).assignee == REVIEWER.subject


def test_only_the_holder_releases(engine: Engine) -> None:
    ref = make_task(engine)
    with session_scope(engine) as session, pytest.raises(Conflict):
        release(session, ref.id, REVIEWER)  # nobody holds it yet
    with session_scope(engine) as session:
        claim(session, ref.id, REVIEWER)
    with session_scope(engine) as session, pytest.raises(Conflict):
        release(session, ref.id, OTHER_REVIEWER)
    with session_scope(engine) as session, pytest.raises(Conflict):
        release(session, ref.id, SENIOR)
    stored = _task(engine, ref.id)
    assert stored.status == TaskStatus.CLAIMED and stored.assignee == REVIEWER.subject


def test_reassign_needs_a_supervisor_and_an_eligible_target(engine: Engine) -> None:
    ref = make_task(engine)
    add_staff(engine, "r-3", Role.REVIEWER)
    add_staff(engine, ref.customer_id, Role.REVIEWER)  # a member of staff who is the customer
    for who in (REVIEWER, SENIOR):
        with session_scope(engine) as session, pytest.raises(Forbidden):
            reassign(session, ref.id, who, to="r-3")
    with session_scope(engine) as session, pytest.raises(Conflict):
        reassign(session, ref.id, SUPERVISOR, to=ref.customer_id)
    excluded = make_task(engine, excluded_reviewer="r-3")
    with session_scope(engine) as session, pytest.raises(Conflict):
        reassign(session, excluded.id, SUPERVISOR, to="r-3")
    senior_only = make_task(engine, required_role="senior_reviewer")
    with session_scope(engine) as session, pytest.raises(Conflict) as not_senior:
        reassign(session, senior_only.id, SUPERVISOR, to="r-3")
    assert not_senior.value.code == "task_not_assignable" and "gives them reviewer" in not_senior.value.detail
    stored = _task(engine, ref.id)
    assert stored.status == TaskStatus.OPEN and stored.assignee is None and stored.version == 1
    with session_scope(engine) as session:
        moved = reassign(session, ref.id, SUPERVISOR, to="r-3", if_match=1)
        assert moved.assignee == "r-3" and moved.status == TaskStatus.CLAIMED and moved.version == 2
    done = make_task(engine, status=TaskStatus.COMPLETED)
    with session_scope(engine) as session, pytest.raises(Conflict):
        reassign(session, done.id, SUPERVISOR, to="r-3")


def test_reassign_takes_the_assignees_role_from_the_staff_directory(engine: Engine) -> None:
    senior_only = make_task(engine, required_role="senior_reviewer")
    # Nobody the directory does not know, whatever role a request might claim for them.
    with session_scope(engine) as session, pytest.raises(InvalidInput) as unknown:
        reassign(session, senior_only.id, SUPERVISOR, to="r-9")
    assert unknown.value.code == "unknown_staff_member"
    add_staff(engine, "s-9", Role.SENIOR_REVIEWER, active=False)
    with session_scope(engine) as session, pytest.raises(Conflict) as inactive:
        reassign(session, senior_only.id, SUPERVISOR, to="s-9")
    assert inactive.value.code == "staff_member_inactive"
    add_staff(engine, "s-9", Role.SENIOR_REVIEWER)
    with session_scope(engine) as session:
        assert reassign(session, senior_only.id, SUPERVISOR, to="s-9").assignee == "s-9"
    # A supervisor the directory has made inactive reassigns nothing.
    add_staff(engine, SUPERVISOR.subject, Role.SUPERVISOR, active=False)
    other = make_task(engine)
    with session_scope(engine) as session, pytest.raises(Forbidden) as refused:
        reassign(session, other.id, SUPERVISOR, to="s-9")
    assert refused.value.code == "staff_inactive"
    assert _task(engine, other.id).assignee is None


# (d) listing ------------------------------------------------------------------------------


def _listing_fixture(engine: Engine, now: datetime) -> list[TaskRef]:
    """Ties on every sort key, so the tie-breakers (due, then id) are exercised too."""
    h = timedelta(hours=1)
    specs: list[dict[str, object]] = [
        {"priority": 5, "due_at": now + 2 * h, "created_at": now - 5 * h, "risk_tier": "HIGH"},
        {"priority": 5, "due_at": now + 2 * h, "created_at": now - 5 * h, "risk_tier": "LOW"},
        {"priority": 5, "due_at": now - 1 * h, "created_at": now - 9 * h, "risk_tier": "HIGH"},
        {"priority": 0, "due_at": now - 3 * h, "created_at": now - 7 * h},
        {"priority": 0, "due_at": now + 2 * h, "created_at": now - 5 * h},
        {"priority": 12, "due_at": now + 8 * h, "created_at": now - 1 * h, "queue": "escalation"},
        {"priority": 12, "due_at": now - 2 * h, "created_at": now - 2 * h, "queue": "escalation"},
        {"priority": 3, "due_at": now + 4 * h, "created_at": now - 3 * h, "risk_tier": "HIGH"},
        {
            "priority": 3,
            "due_at": now - 4 * h,
            "created_at": now - 8 * h,
            "status": TaskStatus.CLAIMED,
            "assignee": "r-1",
        },
        {
            "priority": 1,
            "due_at": now + 1 * h,
            "created_at": now - 6 * h,
            "status": TaskStatus.CLAIMED,
            "assignee": "r-2",
        },
        {"priority": 2, "due_at": now + 3 * h, "created_at": now - 4 * h, "status": TaskStatus.COMPLETED},
    ]
    return [make_task(engine, **spec) for spec in specs]  # type: ignore[arg-type]


def _walk(
    engine: Engine, f: TaskFilter, sort: TaskSort, now: datetime, limit: int = 3
) -> tuple[list[str], set[int], int]:
    ids: list[str] = []
    totals: set[int] = set()
    cursor: str | None = None
    pages = 0
    while True:
        with session_scope(engine, read_only=True) as session:
            rows, cursor, total = list_tasks(session, f, sort=sort, cursor=cursor, limit=limit, now=now)
        pages += 1
        assert len(rows) <= limit
        ids.extend(row.id for row in rows)
        totals.add(total)
        if cursor is None:
            return ids, totals, pages
        assert len(rows) == limit


_SORT_KEYS = {
    TaskSort.DUE: lambda t: (t.due_at, t.id),
    TaskSort.PRIORITY: lambda t: (-t.priority, t.due_at, t.id),
    TaskSort.AGE: lambda t: (t.created_at, t.id),
}


@pytest.mark.parametrize("sort", list(TaskSort))
def test_each_sort_pages_through_every_row_exactly_once(engine: Engine, sort: TaskSort) -> None:
    now = utcnow()
    refs = _listing_fixture(engine, now)
    for f, expected_refs in (
        (TaskFilter(status=None), refs),
        (TaskFilter(), [r for r in refs if r.status is TaskStatus.OPEN]),
    ):
        ids, totals, pages = _walk(engine, f, sort, now)
        expected = [r.id for r in sorted(expected_refs, key=_SORT_KEYS[sort])]
        assert ids == expected
        assert totals == {len(expected)}
        assert pages == -(-len(expected) // 3)


def test_filters(engine: Engine) -> None:
    now = utcnow()
    refs = _listing_fixture(engine, now)

    def ids(f: TaskFilter) -> tuple[set[str], int]:
        with session_scope(engine, read_only=True) as session:
            rows, cursor, total = list_tasks(session, f, sort=TaskSort.DUE, cursor=None, limit=50, now=now)
        assert cursor is None
        return {row.id for row in rows}, total

    def expect(*conditions: Callable[[TaskRef], bool]) -> tuple[set[str], int]:
        chosen = {r.id for r in refs if all(c(r) for c in conditions)}
        return chosen, len(chosen)

    def is_open(r: TaskRef) -> bool:
        return r.status is TaskStatus.OPEN

    assert ids(TaskFilter()) == expect(is_open)
    assert ids(TaskFilter(status=TaskStatus.CLAIMED)) == expect(lambda r: r.status is TaskStatus.CLAIMED)
    assert ids(TaskFilter(queue="escalation")) == expect(is_open, lambda r: r.queue == "escalation")
    assert ids(TaskFilter(status=None, assignee="r-1")) == expect(lambda r: r.assignee == "r-1")
    assert ids(TaskFilter(overdue=True)) == expect(is_open, lambda r: r.due_at < now)
    assert ids(TaskFilter(overdue=False)) == expect(is_open, lambda r: r.due_at >= now)
    assert ids(TaskFilter(status=None, overdue=True)) == expect(lambda r: r.due_at < now)
    assert ids(TaskFilter(risk_tier="HIGH")) == expect(is_open, lambda r: r.risk_tier == "HIGH")
    assert ids(TaskFilter(risk_tier="HIGH", overdue=True)) == expect(
        is_open, lambda r: r.risk_tier == "HIGH", lambda r: r.due_at < now
    )
    assert ids(TaskFilter(queue="nope")) == (set(), 0)


def test_a_cursor_only_works_with_its_own_sort(engine: Engine) -> None:
    now = utcnow()
    _listing_fixture(engine, now)
    with session_scope(engine, read_only=True) as session:
        _, due_cursor, _ = list_tasks(session, TaskFilter(), sort=TaskSort.DUE, cursor=None, limit=2, now=now)
        assert due_cursor is not None
        for other in (TaskSort.PRIORITY, TaskSort.AGE):
            with pytest.raises(InvalidInput) as wrong:
                list_tasks(session, TaskFilter(), sort=other, cursor=due_cursor, limit=2, now=now)
            assert wrong.value.code == "invalid_cursor"
        for garbage in ("not-a-cursor", "W10", "WyJkdWUiXQ"):  # junk, [], ["due"]
            with pytest.raises(InvalidInput):
                list_tasks(session, TaskFilter(), sort=TaskSort.DUE, cursor=garbage, limit=2, now=now)
        rows, _, _ = list_tasks(session, TaskFilter(), sort=TaskSort.DUE, cursor=due_cursor, limit=2, now=now)
        assert len(rows) == 2


def test_the_queue_page_total_follows_every_change_and_is_counted_again_only_then(engine: Engine) -> None:
    """The JSON page's total (list_task_rows): exact after a new task and a claim; on SQLite
    counted again only after such a change (core/db/unchanged.py)."""
    first = make_task(engine)
    make_task(engine)
    counts: list[str] = []

    def count_statements(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        counts.extend([statement] if "count(" in statement.lower() else [])

    event.listen(engine, "before_cursor_execute", count_statements)

    def total(sort: TaskSort = TaskSort.DUE) -> int:
        with read_scope(engine) as connection:
            rows, _, total = list_task_rows(
                connection, TaskFilter(), columns=("id",), sort=sort, cursor=None, limit=1
            )
        assert len(rows) == 1
        return total

    recounts = engine.dialect.name == "postgresql"
    assert (total(), len(counts)) == (2, 1)
    assert (total(), len(counts)) == (2, 2 if recounts else 1)
    assert (total(TaskSort.AGE), len(counts)) == (2, 3 if recounts else 1)  # the same listing
    make_task(engine)
    assert total() == 3
    with session_scope(engine) as session:
        claim(session, first.id, REVIEWER)
    assert total() == 2
    settled = len(counts)
    assert total() == 2
    assert len(counts) == settled + (1 if recounts else 0)


# (e) audit trail ------------------------------------------------------------------------------


def test_every_queue_action_is_an_audited_event_and_the_chain_verifies(engine: Engine) -> None:
    ref = make_task(engine)
    with session_scope(engine) as session:
        claimed = claim_next(session, REVIEWER)
        assert claimed is not None and claimed.id == ref.id
    with session_scope(engine) as session:
        release(session, ref.id, REVIEWER)
    with session_scope(engine) as session:
        claim(session, ref.id, OTHER_REVIEWER, if_match=3)
    add_staff(engine, "r-3", Role.REVIEWER)
    with session_scope(engine) as session:
        reassign(session, ref.id, SUPERVISOR, to="r-3")
    with session_scope(engine) as session:
        release(session, ref.id, SUPERVISOR)  # a supervisor may take a task back to the queue

    events = _events(engine, ref.appeal_id)
    assert verify_chain(events) is None
    queue_events = [e for e in events if e.kind.startswith("task_")]
    assert [(e.kind, e.actor, e.details["after"]) for e in queue_events] == [
        ("task_claimed", "reviewer:r-1", {"status": "CLAIMED", "assignee": "r-1"}),
        ("task_released", "reviewer:r-1", {"status": "OPEN", "assignee": None}),
        ("task_claimed", "reviewer:r-2", {"status": "CLAIMED", "assignee": "r-2"}),
        ("task_reassigned", "supervisor:sup-1", {"status": "CLAIMED", "assignee": "r-3"}),
        ("task_released", "supervisor:sup-1", {"status": "OPEN", "assignee": None}),
    ]
    # release and reassign record the state they found (claim: see the test below).
    assert [e.details["before"] for e in queue_events if e.kind != "task_claimed"] == [
        {"status": "CLAIMED", "assignee": "r-1"},
        {"status": "CLAIMED", "assignee": "r-2"},
        {"status": "CLAIMED", "assignee": "r-3"},
    ]
    assert all(e.details["task_id"] == ref.id for e in queue_events)
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert _task(engine, ref.id).version == 6


def test_refused_actions_leave_no_event(engine: Engine) -> None:
    ref = make_task(engine)
    before = len(_events(engine, ref.appeal_id))
    with session_scope(engine) as session, pytest.raises(Conflict):
        release(session, ref.id, REVIEWER)
    with session_scope(engine) as session, pytest.raises(Forbidden):
        reassign(session, ref.id, REVIEWER, to="r-3")
    with session_scope(engine) as session, pytest.raises(PreconditionFailed):
        claim(session, ref.id, REVIEWER, if_match=7)
    assert len(_events(engine, ref.appeal_id)) == before


def test_a_claim_records_the_state_it_found(engine: Engine) -> None:
    ref = make_task(engine)
    with session_scope(engine) as session:
        claim_next(session, REVIEWER)
    with session_scope(engine) as session:
        release(session, ref.id, REVIEWER)
    with session_scope(engine) as session:
        claim(session, ref.id, OTHER_REVIEWER)
    claims = [e for e in _events(engine, ref.appeal_id) if e.kind == "task_claimed"]
    assert [e.details["before"] for e in claims] == [{"status": "OPEN", "assignee": None}] * 2
