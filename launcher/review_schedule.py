"""The Temporal Schedule of the nightly portfolio review (workflows/portfolio_review.py),
created or brought up to date each time a worker starts (launcher/worker.py) and by `appeals
schedule deploy`, as the document sweep's is (launcher/sweep_schedule.py). Listed in the Web UI
under Schedules.

One schedule per task queue (`portfolio-review-{queue}`); it starts a run every night at
REVIEW_AT (01:00 UTC, the business date's zone), and a run still going when the next is due is
skipped. Each run reviews the date it was scheduled for (the `TemporalScheduledStartTime` search
attribute), so a backfill over past dates reviews each of those dates, one after another.
"""

from __future__ import annotations

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleCalendarSpec,
    ScheduleHandle,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
)

from core.settings import Settings
from launcher.sweep_schedule import ensure_schedule
from workflows.portfolio_review import PortfolioReviewInput, PortfolioReviewWorkflow

# 01:00:00 UTC every day (cron "0 1 * * *").
REVIEW_AT = ScheduleCalendarSpec(
    hour=(ScheduleRange(1),), minute=(ScheduleRange(0),), second=(ScheduleRange(0),)
)


def review_schedule_id(settings: Settings) -> str:
    return f"portfolio-review-{settings.temporal_task_queue}"


def review_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(
            PortfolioReviewWorkflow.run,
            PortfolioReviewInput(),
            id=review_schedule_id(settings),  # each run: this id plus its scheduled time
            task_queue=settings.temporal_task_queue,
            static_summary="Portfolio review: restore, invite or leave each frozen and reduced account",
        ),
        spec=ScheduleSpec(calendars=[REVIEW_AT]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(
            note="Reviews every FROZEN or REDUCED account on its ledger with the policy's "
            "[portfolio_review] thresholds (core/lender/review.py); once per account and date."
        ),
    )


async def ensure_review_schedule(client: Client, settings: Settings) -> ScheduleHandle:
    """Creates the schedule, or updates it to the current code if it exists (a pause kept)."""
    return await ensure_schedule(client, review_schedule_id(settings), review_schedule(settings))
