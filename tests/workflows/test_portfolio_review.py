"""PortfolioReviewWorkflow on the dev server with a worker built as the real one: a seeded book
reviewed in batches across continue-as-new, the result matching what the database holds; a
batch that fails part-way is retried and resumes without acting twice; a re-run of the date
changes nothing; the schedule exists after a worker start and `trigger` runs it."""

from __future__ import annotations

import threading
import uuid
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, ScheduleActionExecutionStartWorkflow, ScheduleActionStartWorkflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from activities.appeal import AppealActivities
from activities.portfolio_review import PortfolioReviewActivities, RunSummary
from core.db import session_scope
from core.db.ledger_tables import LimitEvent
from core.db.lender_tables import AccountNotice
from core.db.review_tables import ReviewAction, ReviewOutcome, ReviewRun, StaffNotice
from core.ledger.eligibility import REVIEW_SOURCE
from core.ledger.generator import seed_population
from core.lender.review import restricted_account_ids
from core.settings import Settings
from launcher.review_schedule import REVIEW_AT, review_schedule_id
from launcher.schedule_cli import backfill_window
from launcher.worker import build_worker, start_review_schedule
from tests.eventually import eventually
from workflows.portfolio_review import PortfolioReviewInput, PortfolioReviewWorkflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

TODAY = date(2026, 6, 15)


@asynccontextmanager
async def review_worker(
    client: Client, settings: Settings, engine: Engine, *, fail_after: Callable[[int], None] | None = None
) -> AsyncIterator[Worker]:
    with ThreadPoolExecutor(max_workers=4) as executor:
        appeal = AppealActivities(engine=engine, s3_client=None, settings=settings)
        review = PortfolioReviewActivities(engine=engine, settings=settings, fail_after=fail_after)
        async with build_worker(client, settings, appeal, executor, review=review) as worker:
            yield worker


def _seed(engine: Engine, today: date, n: int = 40) -> int:
    with session_scope(engine) as session:
        seed_population(session, n, 3, today=today)
    with session_scope(engine, read_only=True) as session:
        return len(restricted_account_ids(session, after=None, limit=10_000))


def _db(engine: Engine, run_date: date) -> dict[str, int]:
    with session_scope(engine, read_only=True) as session:
        by_outcome = dict(
            session.exec(
                select(ReviewAction.outcome, func.count())
                .where(ReviewAction.run_date == run_date)
                .group_by(col(ReviewAction.outcome))
            ).all()
        )
        restores = session.exec(
            select(func.count()).select_from(LimitEvent).where(LimitEvent.source == REVIEW_SOURCE)
        ).one()
        notices = session.exec(select(func.count()).select_from(AccountNotice)).one()
    return {**by_outcome, "restore_events": int(restores), "notices": int(notices)}


async def _run(client: Client, settings: Settings, inp: PortfolioReviewInput) -> tuple[RunSummary, int]:
    """Runs a review to its end: its summary and how many runs the chain had."""
    workflow_id = f"portfolio-review-test-{uuid.uuid4().hex[:8]}"
    handle = await client.start_workflow(
        PortfolioReviewWorkflow.run, inp, id=workflow_id, task_queue=settings.temporal_task_queue
    )
    summary = await client.get_workflow_handle(workflow_id, result_type=RunSummary).result()
    runs, run_id = 1, handle.first_execution_run_id
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return summary, runs
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        runs += 1


async def test_a_seeded_book_is_reviewed_in_batches_across_continue_as_new(
    temporal_client: Client, settings: Settings, sqlite_engine: Engine
) -> None:
    restricted = _seed(sqlite_engine, TODAY)
    async with review_worker(temporal_client, settings, sqlite_engine):
        summary, runs = await _run(
            temporal_client, settings, PortfolioReviewInput(run_date=TODAY, batch_size=4, batches_per_run=3)
        )
        counts = summary.counts
        assert runs == -(-restricted // (4 * 3)) or runs == -(-restricted // (4 * 3)) + 1
        assert counts.examined == restricted and counts.already_decided == 0
        assert counts.restored > 0 and counts.invited > 0 and counts.nothing > 0
        db = _db(sqlite_engine, TODAY)
        assert db[ReviewOutcome.RESTORE] == counts.restored == db["restore_events"]
        assert db[ReviewOutcome.INVITE] == counts.invited
        assert db[ReviewOutcome.NONE] == counts.nothing
        with session_scope(sqlite_engine, read_only=True) as session:
            [run] = session.exec(select(ReviewRun).where(ReviewRun.workflow_id == summary.workflow_id)).all()
            assert run.run_date == TODAY and run.counts["restored"] == counts.restored
            [notice] = session.exec(select(StaffNotice)).all()
            assert notice.recipient == "supervisors" and f"{counts.restored} restored" in notice.subject

        # The same date again: every account still restricted (those restored in full are
        # ACTIVE now) found decided, nothing done twice.
        with session_scope(sqlite_engine, read_only=True) as session:
            still = len(restricted_account_ids(session, after=None, limit=10_000))
        assert 0 < still < restricted
        again, _ = await _run(temporal_client, settings, PortfolioReviewInput(run_date=TODAY, batch_size=50))
        assert again.counts.already_decided == again.counts.examined == still
        assert again.counts.restored == again.counts.invited == again.counts.nothing == 0
        assert _db(sqlite_engine, TODAY) == db


async def test_a_batch_failing_part_way_is_retried_without_double_actions(
    temporal_client: Client, settings: Settings, sqlite_engine: Engine
) -> None:
    restricted = _seed(sqlite_engine, TODAY)
    failed = threading.Event()

    def fail_once(done_in_attempt: int) -> None:
        """The first attempt to reach its 7th account dies there (after committing it)."""
        if done_in_attempt == 7 and not failed.is_set():
            failed.set()
            raise ApplicationError("worker lost mid-batch (test)")

    async with review_worker(temporal_client, settings, sqlite_engine, fail_after=fail_once):
        summary, _ = await _run(
            temporal_client, settings, PortfolioReviewInput(run_date=TODAY, batch_size=10, batches_per_run=2)
        )
    assert failed.is_set()
    counts = summary.counts
    assert counts.examined == restricted and counts.already_decided == 0
    db = _db(sqlite_engine, TODAY)
    assert db[ReviewOutcome.RESTORE] == counts.restored == db["restore_events"]
    assert db[ReviewOutcome.INVITE] == counts.invited and db[ReviewOutcome.NONE] == counts.nothing
    with session_scope(sqlite_engine, read_only=True) as session:
        keys = session.exec(select(AccountNotice.idempotency_key)).all()
    assert len(keys) == len(set(keys)) == db["notices"]


async def test_the_schedule_exists_after_a_worker_start_and_trigger_runs_it(
    temporal_client: Client, settings: Settings, sqlite_engine: Engine
) -> None:
    today = datetime.now(UTC).date()  # the dev server's clock: the scheduled time's date
    restricted = _seed(sqlite_engine, today, n=12)
    await start_review_schedule(temporal_client, settings)
    handle = temporal_client.get_schedule_handle(review_schedule_id(settings))
    try:
        described = await handle.describe()
        assert described.id == f"portfolio-review-{settings.temporal_task_queue}"
        [calendar] = described.schedule.spec.calendars
        assert (calendar.hour, calendar.minute) == (REVIEW_AT.hour, REVIEW_AT.minute)
        action = described.schedule.action
        assert isinstance(action, ScheduleActionStartWorkflow) and action.workflow == "PortfolioReview"
        assert handle.id in [s.id async for s in await temporal_client.list_schedules()]

        async with review_worker(temporal_client, settings, sqlite_engine):
            await handle.trigger()

            async def started() -> tuple[str, datetime]:
                recent = (await handle.describe()).info.recent_actions[-1]
                assert isinstance(recent.action, ScheduleActionExecutionStartWorkflow)
                return recent.action.workflow_id, recent.scheduled_at

            workflow_id, scheduled_at = await eventually(started, what="the schedule to start a review")
            summary = await temporal_client.get_workflow_handle(workflow_id, result_type=RunSummary).result()
        assert summary.counts.examined == restricted
        # The run reviewed the day it was scheduled for (UTC), by the server's clock.
        assert summary.run_date == scheduled_at.astimezone(UTC).date()
    finally:
        await handle.delete()


async def test_a_backfill_covers_whole_days() -> None:
    window = backfill_window(date(2026, 11, 1), date(2026, 11, 3))
    assert window.start_at == datetime(2026, 11, 1, tzinfo=UTC)
    assert window.end_at == datetime(2026, 11, 3, 23, 59, 59, tzinfo=UTC)
