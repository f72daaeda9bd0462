"""AppealWorkflow: one appeal from submission to a closed case (docs/architecture.md section 4).

Deterministic only: no I/O, clocks or randomness here. Each step is one activity that does its
work, writes the status it produces and plans the customer's notice in one transaction
(core/appeals/steps.py), so the workflow only decides what comes next. It keeps its history
lean (docs/architecture.md section 7): one activity per step, one timer per wait, one search
attribute upsert per step and only for statuses operators filter on.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.appeal import AppealActivities
    from activities.types import (
        ApplyLimitInput,
        Checked,
        CheckInput,
        Decided,
        DecideInput,
        HumanReviewInput,
        LimitRefusalInput,
        NoticeStepInput,
        OpenInput,
        RemindInput,
        SlaEventInput,
        StepInput,
        TaskPlan,
        WithdrawInput,
    )
    from core.db.case_tables import Recommendation
    from core.reviews.rules import Outcome, Stage, outcome_status, remaining_budget
    from core.status import WITHDRAWABLE_STATUSES, AppealStatus
    from workflows.messages import (
        AppealInput,
        AppealResult,
        AppealState,
        DecisionAccepted,
        DocumentUploaded,
        HumanReviewRequest,
        ReviewClaim,
        ReviewDecision,
        WithdrawRequest,
    )
    from workflows.review import OpenTask, ReviewDesk
    from workflows.search_attributes import (
        APPEAL_REVIEWER,
        APPEAL_RISK_TIER,
        APPEAL_SLA_DUE_AT,
        APPEAL_STATUS,
    )

S = AppealStatus
In = TypeVar("In")
Out = TypeVar("Out")

# Business refusals that no retry can fix.
NON_RETRYABLE = ["NotFound", "Conflict", "InvalidInput", "ValueError"]
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=NON_RETRYABLE,
)
# Applying a decided limit: an outage of the ledger or the credit-line API is waited out for as
# long as it lasts (no attempt cap); only the API's refusal (LimitRefused) stops the retries.
APPLY_LIMIT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=0,
    non_retryable_error_types=[*NON_RETRYABLE, "LimitRefused"],
)
# Sized to the work, so a step lost with its worker is retried within seconds: a database
# transaction and a notice (SMTP and webhooks have 10 s limits of their own).
STEP_TIMEOUT = timedelta(seconds=15)
# Applying the limit also calls the credit-line API (15 s limit per call).
APPLY_TIMEOUT = timedelta(seconds=25)
# Checking documents reads each from S3 and inspects PDFs in a child process (5 s per file):
# bounded per file, not in all. A check still running after a few seconds heartbeats before
# each file (activities/appeal.py), so a check lost with its worker is retried after
# CHECK_HEARTBEAT_TIMEOUT, while a long one may run its course; a quick check sends none.
CHECK_TIMEOUT = timedelta(minutes=5)
CHECK_HEARTBEAT_TIMEOUT = timedelta(seconds=15)

# The statuses operators find appeals by in the Web UI (AppealStatus is upserted for these);
# the others last a moment inside one step and are only in the case store's audit trail.
WATCHED_STATUSES = frozenset(
    {
        S.AWAITING_DOCUMENTS,
        S.PENDING_REVIEW,
        S.IN_REVIEW,
        S.PENDING_SECOND_REVIEW,
        S.IN_SECOND_REVIEW,
        S.AUTO_DECLINED,
        S.LIMIT_APPLY_FAILED,
        S.INELIGIBLE,
        S.EXPIRED,
        S.WITHDRAWN,
        S.CLOSED,
    }
)


class Withdrawn(Exception):
    """Raised inside the run to unwind to the withdrawal path from any wait."""


@workflow.defn
class AppealWorkflow:
    @workflow.init
    def __init__(self, inp: AppealInput) -> None:
        self._inp = inp
        self._status = S.SUBMITTED
        self._notice_seq = 0
        self._uploads_signalled = 0
        self._uploads_checked = 0
        self._missing: list[str] = []
        self._withdraw: WithdrawRequest | None = None
        self._human_review: HumanReviewRequest | None = None
        self._human_review_open = False
        # While the checks run: their activity may already have recorded AUTO_DECLINED (what the
        # customer sees) before this run has its result and opens the human-review window.
        self._checking = False
        self._original_limit_minor: int | None = None
        self._reasons: list[dict[str, Any]] = []
        self._round = 1
        self._review_time_spent = timedelta(0)
        # Decisions and withdrawals change the review together: their handlers do their work
        # under this lock, in the order the workflow received them.
        self._lock = asyncio.Lock()
        self._desk = ReviewDesk()
        self._sla_clock: asyncio.Task[None] | None = None
        self._decided: Decided | None = None
        self._last_decision: ReviewDecision | None = None
        self._shown: dict[str, Any] = {APPEAL_STATUS.name: S.SUBMITTED.value}
        self._unshown: dict[str, Any] = {}  # changes kept for the next status worth an upsert

    # -- the main path ------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: AppealInput) -> AppealResult:
        try:
            result = await self._decide_case()
        except Withdrawn:
            result = await self._close_withdrawn()
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _decide_case(self) -> AppealResult:
        opened = await self._step(
            AppealActivities.open_appeal,
            OpenInput(
                **self._notice_step(),
                deadline_days=max(self._inp.document_deadline.days, 1),
            ),
        )
        self._original_limit_minor = opened.original_limit_minor
        self._show(opened.status)
        if not opened.eligible:
            return self._result()
        self._missing = opened.missing
        checked = await self._collect_documents(check_first=opened.uploads_waiting > 0)
        if checked is None:
            return await self._expire()

        if checked.recommendation is Recommendation.AUTO_APPROVE and checked.status is S.AUTO_APPROVED:
            assert checked.suggested_limit_minor is not None
            return await self._apply_and_close(checked.suggested_limit_minor)
        if checked.status is S.AUTO_DECLINED:
            if not await self._await_human_review_request(self._inp.human_review_window):
                closed = await self._step(AppealActivities.close_after_decline, StepInput(**self._at()))
                self._show(closed.status)
                return self._result()
            assert self._human_review is not None
            async with self._lock:
                checked = await self._step(
                    AppealActivities.start_human_review,
                    HumanReviewInput(
                        **self._notice_step(),
                        review_task=self._plan_task(Stage.FIRST),
                        requested_by=self._human_review.requested_by,
                    ),
                )
                self._show(checked.status, task=self._open_task(checked))
        return await self._review()

    # -- documents ----------------------------------------------------------------------

    async def _collect_documents(self, *, check_first: bool = False) -> Checked | None:
        """Until nothing is missing and the checks have routed the appeal (the result), or
        the deadline passes (None). One timer at a time: to the next reminder, then the
        deadline. The database says which files to verify; a signal only says when."""
        started = workflow.now()
        points = sorted(started + offset for offset in self._inp.document_reminders)
        deadline_at = started + self._inp.document_deadline
        points.append(deadline_at)
        timer = self._timer(points[0])
        try:
            check_now = check_first or self._uploads_signalled > self._uploads_checked
            while True:
                if check_now:
                    checked = await self._check()
                    if checked.status is not S.AWAITING_DOCUMENTS:
                        return checked
                await workflow.wait_condition(functools.partial(self._collection_woken, timer))
                self._raise_if_withdrawn()
                check_now = self._uploads_signalled > self._uploads_checked
                if timer.done() and not check_now:
                    point = points.pop(0)
                    if point == deadline_at:
                        return None
                    days_left = max(-((workflow.now() - deadline_at) // timedelta(days=1)), 0)  # ceiling
                    await self._step(
                        AppealActivities.remind,
                        RemindInput(**self._at(), notice_seq=self._next_notice(), days_left=days_left),
                    )
                    timer = self._timer(points[0])
        finally:
            timer.cancel()

    def _collection_woken(self, timer: asyncio.Task[None]) -> bool:
        return self._uploads_signalled > self._uploads_checked or self._withdraw is not None or timer.done()

    async def _check(self) -> Checked:
        # Under the lock: a decision on the task this step may open waits for its result.
        async with self._lock:
            self._uploads_checked = self._uploads_signalled
            plan = self._plan_task(Stage.FIRST)
            self._checking = True
            try:
                checked = await self._step(
                    AppealActivities.check_documents,
                    CheckInput(
                        **self._notice_step(),
                        run=self._round,
                        human_review_days=self._inp.human_review_window.days,
                        review_task=plan,
                        force_review=self._round > 1,
                    ),
                    timeout=CHECK_TIMEOUT,
                    heartbeat_timeout=CHECK_HEARTBEAT_TIMEOUT,
                )
            finally:
                # From here to the window opening (after an automatic decline) nothing awaits,
                # so a request waiting on this flag sees the window open or never.
                self._checking = False
            self._missing = checked.missing
            if checked.reasons:
                self._reasons = checked.reasons
            self._show(checked.status, risk_tier=checked.risk_tier, task=self._open_task(checked))
            return checked

    async def _expire(self) -> AppealResult:
        expired = await self._step(AppealActivities.expire, NoticeStepInput(**self._notice_step()))
        self._show(expired.status)
        return self._result()

    # -- review -------------------------------------------------------------------------

    async def _review(self) -> AppealResult:
        """Decisions until one is final: a decline (closed by its step), or an approval whose
        limit is applied; a request for information goes back to document collection and the
        next round returns to the same reviewer."""
        while True:
            decision, decided = await self._await_decision()
            if decided.status is S.CLOSED:
                return self._result()
            if decided.second_task_id is not None:  # four eyes: the second review is open
                continue
            if decision.outcome is Outcome.REQUEST_INFO:
                self._round += 1
                self._missing = decided.missing
                if await self._collect_documents() is None:
                    return await self._expire()
                continue
            assert decision.approved_limit_minor is not None
            return await self._apply_and_close(decision.approved_limit_minor)

    async def _await_decision(self) -> tuple[ReviewDecision, Decided]:
        """The SLA clock runs while the task is open; the decision is recorded by its Update."""
        task = self._desk.task
        assert task is not None
        started = workflow.now()
        self._sla_clock = asyncio.create_task(self._run_sla_clock(task))
        try:
            await workflow.wait_condition(lambda: self._decided is not None or self._withdraw is not None)
        finally:
            # No clock here: a run dropped from the worker's cache is closed outside its event
            # loop, where workflow.now() raises (the time only plans a later task of this run).
            self._sla_clock.cancel()
        self._review_time_spent += workflow.now() - started
        self._raise_if_withdrawn()
        decision, decided = self._last_decision, self._decided
        assert decision is not None and decided is not None
        self._decided = None
        return decision, decided

    async def _run_sla_clock(self, task: OpenTask) -> None:
        """Armed once per task: a timer to the warning point, then one to the due time."""
        for kind, at in (("warning", task.warning_at), ("breach", task.due_at)):
            await workflow.sleep(max(at - workflow.now(), timedelta(milliseconds=1)))
            await self._step(
                AppealActivities.record_sla_event,
                SlaEventInput(appeal_id=self._inp.appeal_id, task_id=task.task_id, kind=kind),
            )

    def _plan_task(self, stage: Stage, *, excluded_reviewer: str | None = None) -> TaskPlan:
        """The next review task's id and due time, for the step that may open it; the desk
        follows claims on it from now on."""
        budget = remaining_budget(self._inp.review_due, self._review_time_spent)
        preferred = None
        decision = self._last_decision
        if stage is Stage.FIRST and self._round > 1 and decision is not None:
            preferred = decision.reviewer  # handed back to the reviewer who asked for more
        plan = TaskPlan(
            task_id=str(workflow.uuid4()),
            due_at=workflow.now() + budget,
            round=self._round,
            preferred_assignee=preferred,
        )
        self._desk.plan(
            OpenTask(
                task_id=plan.task_id,
                stage=stage,
                created_at=workflow.now(),
                due_at=plan.due_at,
                excluded_reviewer=excluded_reviewer,
            )
        )
        return plan

    def _open_task(self, routed: Checked) -> OpenTask | None:
        """The task the step opened, if it routed the appeal to people."""
        if routed.task_id is None or routed.status not in (S.PENDING_REVIEW, S.IN_REVIEW):
            self._desk.drop_plan()
            return None
        assert routed.task_due_at is not None
        return self._desk.open(routed.task_id, routed.task_due_at, routed.task_assignee, routed.task_version)

    # -- the limit, withdrawal -------------------------------------------------------------

    async def _apply_and_close(self, new_limit_minor: int) -> AppealResult:
        # Past a decision the customer can no longer withdraw: the outcome is announced.
        try:
            applied = await workflow.execute_activity_method(
                AppealActivities.apply_limit,
                ApplyLimitInput(
                    **self._notice_step(), new_limit_minor=new_limit_minor, reasons=self._reasons
                ),
                start_to_close_timeout=APPLY_TIMEOUT,
                retry_policy=APPLY_LIMIT_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            if not (isinstance(cause, ApplicationError) and cause.type == "LimitRefused"):
                raise
            # Never a silent success: the appeal stays open in a visible failed status (search
            # attribute, current details, DB projection) until an operator resolves it.
            details = cause.details[0] if cause.details and isinstance(cause.details[0], dict) else {}
            refused = await self._step(
                AppealActivities.record_limit_refusal,
                LimitRefusalInput(
                    **self._at(),
                    refusal=cause.message,
                    details={"new_limit_minor": new_limit_minor, "refusal": details},
                ),
            )
            self._show(refused.status)
            return self._result()
        self._show(applied.status)
        return self._result(new_limit_minor)

    async def _close_withdrawn(self) -> AppealResult:
        assert self._withdraw is not None
        async with self._lock:
            if self._sla_clock is not None:
                self._sla_clock.cancel()
            had_task = self._desk.task is not None
            self._desk.close()
            withdrawn = await self._step(
                AppealActivities.withdraw,
                WithdrawInput(
                    **self._notice_step(),
                    requested_by=self._withdraw.requested_by,
                    reason=self._withdraw.reason,
                ),
            )
            self._show(withdrawn.status, clear_sla=had_task)
        return self._result()

    # -- messages -----------------------------------------------------------------------

    @workflow.signal
    def document_uploaded(self, upload: DocumentUploaded) -> None:
        # The database holds the upload; this only says when to look (a repeat is harmless).
        self._uploads_signalled += 1

    @workflow.signal
    async def withdraw(self, request: WithdrawRequest) -> None:
        # Under the lock: a decision that arrived earlier is recorded first and then stands (the
        # appeal is no longer withdrawable); one that arrives later finds the appeal withdrawn.
        async with self._lock:
            if self._withdraw is None and self._status in WITHDRAWABLE_STATUSES:
                self._withdraw = request

    @workflow.signal
    def review_claim_changed(self, claim: ReviewClaim) -> None:
        # The queue already moved the appeal's status with the claim; the workflow follows who
        # may decide, at once, so a decision validated after this message sees it.
        task = self._desk.follow(claim)
        # A claim on the task a step is still opening is shown when the step's result opens it.
        if task is not None and task is self._desk.task:
            self._show(task.status, reviewer=task.claimant or "")

    @workflow.update
    async def decide(self, decision: ReviewDecision) -> DecisionAccepted:
        async with self._lock:
            # Whatever arrived while this waited for the lock (a release, a withdrawal, another
            # decision) is seen here: the checks of the validator are made again.
            self._validate_decision(decision)
            task = self._desk.task
            assert task is not None
            self._desk.recording = workflow.current_update_info().id  # type: ignore[union-attr]
            try:
                decided = await self._step(
                    AppealActivities.decide,
                    DecideInput(
                        **self._notice_step(),
                        task_id=task.task_id,
                        stage=task.stage,
                        decided_by=decision.reviewer,
                        outcome=Outcome(decision.outcome),
                        approved_limit_minor=decision.approved_limit_minor,
                        reasons=decision.reasons,
                        requested_documents=decision.requested_documents,
                        note=decision.note,
                        idempotency_key=self._desk.recording,
                        four_eyes_min_amount_minor=self._inp.four_eyes_min_amount_minor,
                        four_eyes_risk_tiers=self._inp.four_eyes_risk_tiers,
                        # Used only if this approval needs four eyes.
                        second_task=self._plan_task(Stage.SECOND, excluded_reviewer=decision.reviewer),
                    ),
                )
            finally:
                self._desk.recording = None
            self._desk.decision, self._last_decision, self._decided = decision, decision, decided
            second = None
            if decided.second_task_id is not None:
                assert decided.second_task_due_at is not None
                second = self._desk.open(
                    decided.second_task_id, decided.second_task_due_at, None, decided.second_task_version
                )
            else:
                self._desk.drop_plan()
            # The task is done: no SLA to show unless a second review opens its own.
            self._show(decided.status, task=second, clear_sla=second is None)
            shown = (
                S.PENDING_SECOND_REVIEW
                if second is not None
                else outcome_status(
                    Outcome(decision.outcome), decision.approved_limit_minor, self._inp.requested_limit_minor
                )
            )
            return DecisionAccepted(status=shown, approved_limit_minor=decision.approved_limit_minor)

    @decide.validator
    def _validate_decision(self, decision: ReviewDecision) -> None:
        if self._withdraw is not None:
            raise ApplicationError("The appeal has been withdrawn.", type="TaskNotOpen")
        refusal = self._desk.refusal(decision, self._original_limit_minor, self._inp.requested_limit_minor)
        if refusal is not None:
            raise refusal

    @workflow.update
    async def request_human_review(self, request: HumanReviewRequest) -> AppealStatus:
        # A customer who saw the decline the moment the checks recorded it may ask before this
        # run has their result: the request waits for it instead of being refused.
        await workflow.wait_condition(lambda: not self._checking)
        self._refuse_human_review_unless_open()
        self._human_review = request
        return self._status

    @request_human_review.validator
    def _validate_human_review(self, request: HumanReviewRequest) -> None:
        if not self._checking:
            self._refuse_human_review_unless_open()

    def _refuse_human_review_unless_open(self) -> None:
        if not self._human_review_open or self._human_review is not None or self._withdraw is not None:
            raise ApplicationError(
                "A human review can only be asked for once, within the window after an automatic decline.",
                type="HumanReviewNotAvailable",
            )

    @workflow.query
    def state(self) -> AppealState:
        task = self._desk.task
        return AppealState(
            status=self._status,
            open_task_id=task.task_id if task else None,
            pending_documents=[],
            accepted_documents=[],
        )

    async def _await_human_review_request(self, window: timedelta) -> bool:
        """The customer's right to have an automated decline looked at by a person."""
        self._human_review_open = True
        try:
            await workflow.wait_condition(
                lambda: self._human_review is not None or self._withdraw is not None, timeout=window
            )
        except TimeoutError:
            return False
        finally:
            self._human_review_open = False
        self._raise_if_withdrawn()
        return True

    # -- helpers ------------------------------------------------------------------------

    def _raise_if_withdrawn(self) -> None:
        if self._withdraw is not None:
            raise Withdrawn()

    def _result(self, decided_limit_minor: int | None = None) -> AppealResult:
        return AppealResult(
            appeal_id=self._inp.appeal_id,
            status=self._status,
            decided_limit_minor=decided_limit_minor,
        )

    def _at(self) -> dict[str, Any]:
        return {"appeal_id": self._inp.appeal_id, "at": workflow.now()}

    def _next_notice(self) -> int:
        self._notice_seq += 1
        return self._notice_seq

    def _notice_step(self) -> dict[str, Any]:
        return {**self._at(), "notice_seq": self._next_notice()}

    def _timer(self, at: datetime) -> asyncio.Task[None]:
        return asyncio.create_task(workflow.sleep(max(at - workflow.now(), timedelta(milliseconds=1))))

    async def _step(
        self,
        fn: Callable[[AppealActivities, In], Out],
        arg: In,
        *,
        timeout: timedelta = STEP_TIMEOUT,
        heartbeat_timeout: timedelta | None = None,
    ) -> Out:
        return await workflow.execute_activity_method(
            fn,
            arg,
            start_to_close_timeout=timeout,
            heartbeat_timeout=heartbeat_timeout,
            retry_policy=STEP_RETRY,
        )

    def _show(
        self,
        status: AppealStatus,
        *,
        risk_tier: str | None = None,
        reviewer: str | None = None,
        task: OpenTask | None = None,
        clear_sla: bool = False,
    ) -> None:
        """Records where the appeal is: the current details, and the search attributes that
        changed, in one upsert. Only a status operators filter on is worth an upsert; other
        changes wait for the next one (a status that lasts a moment is never upserted)."""
        self._status = status
        workflow.set_current_details(
            f"**{status.value}** · appeal `{self._inp.appeal_id}` · account `{self._inp.account_id}`"
        )
        if status in WATCHED_STATUSES:
            self._unshown[APPEAL_STATUS.name] = status.value
        if risk_tier:
            self._unshown[APPEAL_RISK_TIER.name] = risk_tier
        if task is not None:
            self._unshown[APPEAL_SLA_DUE_AT.name] = task.due_at
            reviewer = task.claimant or ""
        if reviewer is not None:
            self._unshown[APPEAL_REVIEWER.name] = reviewer
        if clear_sla:
            self._unshown[APPEAL_SLA_DUE_AT.name] = None
        if status not in WATCHED_STATUSES:
            return
        updates: list[SearchAttributeUpdate[Any]] = []
        for key in (APPEAL_STATUS, APPEAL_RISK_TIER, APPEAL_SLA_DUE_AT, APPEAL_REVIEWER):
            if key.name not in self._unshown:
                continue
            value = self._unshown.pop(key.name)
            if self._shown.get(key.name) == value:
                continue
            self._shown[key.name] = value
            updates.append(key.value_unset() if value is None else key.value_set(value))
        if updates:
            workflow.upsert_search_attributes(updates)
