"""PortfolioReviewWorkflow: one run of the nightly portfolio review (docs/lender-loop.md),
started by a Temporal Schedule (launcher/review_schedule.py) or by hand for a date.

The run date is the input's, else the schedule's scheduled time (the `TemporalScheduledStartTime`
search attribute a schedule sets on what it starts, so a backfill reviews the dates it covers),
else the workflow's own start. Accounts are paged by id, one `review_batch` activity per batch
(it heartbeats per account and resumes from its cursor when retried); every
`batches_per_run` batches, or when the server suggests it, the run continues as new with the
cursor and the counts, so the history stays small however large the book. A last activity
records the run (its row and the supervisors' notice) and its summary is the result.

Deterministic only: no I/O, no clock but workflow.now() (README, "Changing the workflow").
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from pydantic import BaseModel, Field
from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey

with workflow.unsafe.imports_passed_through():
    from activities.portfolio_review import (
        BatchInput,
        PortfolioReviewActivities,
        RunSummary,
        RunSummaryInput,
    )
    from core.lender.review import ReviewCounts

SCHEDULED_START_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")

# A batch reviews up to the policy's batch_size accounts, one transaction each; heartbeats let a
# lost worker's batch be retried after HEARTBEAT_TIMEOUT rather than BATCH_TIMEOUT.
BATCH_TIMEOUT = timedelta(minutes=10)
HEARTBEAT_TIMEOUT = timedelta(seconds=30)
SUMMARY_TIMEOUT = timedelta(seconds=30)
BATCH_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), backoff_coefficient=2.0, maximum_interval=timedelta(minutes=1)
)
DEFAULT_BATCHES_PER_RUN = 25


class PortfolioReviewInput(BaseModel):
    """What a schedule starts a run with (all defaults), or a person for a date; what the run
    carries into the next when it continues as new."""

    run_date: date | None = None
    batch_size: int | None = Field(default=None, ge=1)  # None: the policy's batch_size
    batches_per_run: int = Field(default=DEFAULT_BATCHES_PER_RUN, ge=1)
    heartbeat_timeout: timedelta = HEARTBEAT_TIMEOUT
    # Carried across continue-as-new:
    cursor: str | None = None
    counts: ReviewCounts = Field(default_factory=ReviewCounts)
    started_at: datetime | None = None
    runs: int = 1  # this run's number in the chain


def run_date_of(inp: PortfolioReviewInput, scheduled: datetime | None, now: datetime) -> date:
    """The explicit date, else the scheduled time's day in UTC, else today's (UTC)."""
    if inp.run_date is not None:
        return inp.run_date
    moment = scheduled if scheduled is not None else now
    return moment.astimezone(UTC).date()


@workflow.defn(name="PortfolioReview")
class PortfolioReviewWorkflow:
    @workflow.run
    async def run(self, inp: PortfolioReviewInput) -> RunSummary:
        info = workflow.info()
        scheduled = info.typed_search_attributes.get(SCHEDULED_START_TIME)
        run_date = run_date_of(inp, scheduled, workflow.now())
        started_at = inp.started_at or workflow.now()
        cursor, counts = inp.cursor, inp.counts
        batches = 0
        while True:
            result = await workflow.execute_activity_method(
                PortfolioReviewActivities.review_batch,
                BatchInput(
                    run_date=run_date, workflow_id=info.workflow_id, after=cursor, batch_size=inp.batch_size
                ),
                start_to_close_timeout=BATCH_TIMEOUT,
                heartbeat_timeout=inp.heartbeat_timeout,
                retry_policy=BATCH_RETRY,
                summary=f"accounts after {cursor or 'the first'}",
            )
            counts = counts.merged(result.counts)
            cursor = result.last_account_id
            batches += 1
            if result.done:
                break
            if batches >= inp.batches_per_run or info.is_continue_as_new_suggested():
                workflow.continue_as_new(
                    inp.model_copy(
                        update={
                            "run_date": run_date,
                            "cursor": cursor,
                            "counts": counts,
                            "started_at": started_at,
                            "runs": inp.runs + 1,
                        }
                    )
                )
        return await workflow.execute_activity_method(
            PortfolioReviewActivities.record_review_run,
            RunSummaryInput(
                run_date=run_date,
                workflow_id=info.workflow_id,
                started_at=started_at,
                finished_at=workflow.now(),
                counts=counts,
            ),
            start_to_close_timeout=SUMMARY_TIMEOUT,
            retry_policy=RetryPolicy(
                initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30)
            ),
        )
