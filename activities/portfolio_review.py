"""The portfolio review's activities (workflows/portfolio_review.py): one batch of accounts at a
time, and the run's summary.

`review_batch` reviews the next page of FROZEN and REDUCED accounts after a cursor, each account
in its own transaction (core/lender/review.py), and heartbeats after each with the cursor and
the counts so far: a retried attempt (the worker died, the activity failed) resumes after the
last account the server heard of, and an account redone since (also one the lost attempt restored
in full, no longer restricted) finds its `review_action` row: nothing is done twice and it is
counted as what it was. Notices are sent after each account's commit; a channel that fails stays in
the outbox for the relay.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from core.clock import SYSTEM_CLOCK, Clock
from core.db import session_scope
from core.db.review_tables import ReviewOutcome, ReviewRun, StaffNotice
from core.ledger.credit_line_api import CreditLineRefused, CreditLineUnavailable
from core.lender.review import (
    CreditLine,
    ReviewCounts,
    ReviewPolicyMissing,
    batch_account_ids,
    batch_facts,
    review_account,
    review_section,
    send_notices,
)
from core.notifications.channels import senders_from_settings
from core.notifications.rendering import render_notice
from core.policy.loader import load_default_policy
from core.settings import Settings

log = logging.getLogger(__name__)

SUPERVISORS = "supervisors"
SEND_THREADS = 4  # notices of one batch sent at once
RUN_NOTICE_EVENT = "portfolio_review_run"


class BatchInput(BaseModel):
    run_date: date
    workflow_id: str
    after: str | None = None  # the last account id of the previous batch
    batch_size: int | None = Field(default=None, ge=1)  # None: the policy's batch_size


class BatchProgress(BaseModel):
    """A batch's heartbeat details: where a retried attempt resumes, and what it had counted."""

    cursor: str | None
    counts: ReviewCounts


class BatchResult(BaseModel):
    last_account_id: str | None  # the cursor for the next batch
    done: bool  # no account after this batch
    counts: ReviewCounts


class RunSummaryInput(BaseModel):
    run_date: date
    workflow_id: str
    started_at: datetime
    finished_at: datetime
    counts: ReviewCounts


class RunSummary(BaseModel):
    run_date: date
    workflow_id: str
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    policy_id: str
    counts: ReviewCounts


class PortfolioReviewActivities:
    def __init__(
        self,
        *,
        engine: Engine,
        settings: Settings,
        clock: Clock = SYSTEM_CLOCK,
        fail_after: Callable[[int], None] | None = None,
    ) -> None:
        """`fail_after` is called with the number of accounts this attempt has reviewed, after
        each one (tests make an attempt fail part-way through with it)."""
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._senders: dict[str, Any] | None = None
        self._fail_after = fail_after

    def _credit_line(self) -> CreditLine | None:
        url = self._settings.credit_line_api_url
        if not url:
            return None
        return CreditLine(
            url, self._settings.credit_line_api_token, self._settings.credit_line_api_timeout_seconds
        )

    def _send(self, ids: list[int]) -> None:
        if not ids:
            return
        if self._senders is None:
            self._senders = senders_from_settings(self._settings)
        try:
            send_notices(self._engine, ids, self._senders)
        except Exception:  # left in the outbox for the relay
            log.warning("account notices %s not sent yet", ids, exc_info=True)

    @activity.defn(name="review_batch")
    def review_batch(self, inp: BatchInput) -> BatchResult:
        policy = load_default_policy()
        try:
            section = review_section(policy)
        except ReviewPolicyMissing as exc:
            raise ApplicationError(str(exc), type="ReviewPolicyMissing", non_retryable=True) from exc
        size = inp.batch_size or section.batch_size
        cursor, counts = inp.after, ReviewCounts()
        details = activity.info().heartbeat_details
        if details:  # a retried attempt: resume after what the last one reported
            progress = BatchProgress.model_validate(details[0])
            cursor, counts = progress.cursor, progress.counts
        done_before = counts.examined
        with session_scope(self._engine, read_only=True) as session:
            remaining = size - done_before
            ids = batch_account_ids(
                session,
                after=cursor,
                limit=max(remaining, 0) + 1,
                run_date=inp.run_date,
                # A retry also meets what the lost attempt decided since its last heartbeat.
                decided_by=inp.workflow_id if activity.info().attempt > 1 else None,
            )
            page, more = ids[: max(remaining, 0)], len(ids) > max(remaining, 0)
            facts = batch_facts(session, page, inp.run_date)
        credit_line = self._credit_line()
        portal_url = self._settings.portal_url
        started = time.monotonic()
        to_send: list[list[int]] = []
        for number, account_id in enumerate(page, start=1):
            try:
                reviewed = review_account(
                    self._engine,
                    account_id,
                    facts[account_id],
                    run_date=inp.run_date,
                    workflow_id=inp.workflow_id,
                    policy=policy,
                    at=self._clock.now(),
                    portal_url=portal_url,
                    credit_line=credit_line,
                )
            except CreditLineRefused as exc:
                # The API refused this account's restore: recorded nowhere, retried next run.
                log.warning("credit-line API refused the review restore of %s: %s", account_id, exc)
                counts.add(ReviewOutcome.NONE, "credit_line_refused")
                cursor = account_id
                activity.heartbeat(BatchProgress(cursor=cursor, counts=counts).model_dump(mode="json"))
                continue
            except CreditLineUnavailable as exc:
                raise ApplicationError(str(exc), type="CreditLineUnavailable") from exc
            counts.add(reviewed.outcome, reviewed.reason, reviewed.restored_minor)
            cursor = account_id
            activity.heartbeat(BatchProgress(cursor=cursor, counts=counts).model_dump(mode="json"))
            if reviewed.notice_ids:
                to_send.append(reviewed.notice_ids)
            if self._fail_after is not None:
                self._fail_after(number)
        # After the batch, a few at a time: every notice is in the outbox already, so one this
        # attempt does not send (it died, a channel failed) is left to the relay.
        if to_send:
            with ThreadPoolExecutor(max_workers=SEND_THREADS, thread_name_prefix="review-send") as pool:
                list(pool.map(self._send, to_send))
        log.info(
            "review batch run_date=%s after=%s accounts=%d seconds=%.2f",
            inp.run_date,
            inp.after,
            len(page),
            time.monotonic() - started,
        )
        return BatchResult(last_account_id=cursor, done=not more, counts=counts)

    @activity.defn(name="record_review_run")
    def record_review_run(self, inp: RunSummaryInput) -> RunSummary:
        """The run's row (once per run date and workflow) and the supervisors' in-app notice."""
        policy = load_default_policy()
        duration = max((inp.finished_at - inp.started_at) / timedelta(seconds=1), 0.0)
        summary = RunSummary(
            run_date=inp.run_date,
            workflow_id=inp.workflow_id,
            started_at=inp.started_at,
            finished_at=inp.finished_at,
            duration_seconds=round(duration, 3),
            policy_id=policy.policy_id,
            counts=inp.counts,
        )
        with session_scope(self._engine) as session:
            existing = session.exec(
                select(ReviewRun).where(
                    ReviewRun.run_date == inp.run_date, ReviewRun.workflow_id == inp.workflow_id
                )
            ).first()
            if existing is None:
                session.add(
                    ReviewRun(
                        run_date=inp.run_date,
                        workflow_id=inp.workflow_id,
                        started_at=inp.started_at,
                        finished_at=inp.finished_at,
                        duration_seconds=summary.duration_seconds,
                        counts=inp.counts.model_dump(mode="json"),
                        policy_id=policy.policy_id,
                    )
                )
            key = f"review_run:{inp.workflow_id}:{inp.run_date.isoformat()}"
            if session.exec(select(StaffNotice.id).where(StaffNotice.idempotency_key == key)).first() is None:
                counts = inp.counts
                notice = render_notice(
                    "staff",
                    RUN_NOTICE_EVENT,
                    "en",
                    {
                        "run_date": inp.run_date.isoformat(),
                        "workflow_id": inp.workflow_id,
                        "examined": counts.examined,
                        "restored": counts.restored,
                        "invited": counts.invited,
                        "nothing": counts.nothing,
                        "already_decided": counts.already_decided,
                        "restored_minor": counts.restored_minor,
                        "duration_seconds": summary.duration_seconds,
                        "by_reason": dict(sorted(counts.by_reason.items())),
                    },
                )
                session.add(
                    StaffNotice(
                        recipient=SUPERVISORS,
                        event=RUN_NOTICE_EVENT,
                        idempotency_key=key,
                        subject=notice.subject,
                        body=notice.body,
                        created_at=self._clock.now(),
                    )
                )
        return summary

    def all(self) -> list[Any]:
        return [self.review_batch, self.record_review_run]
