"""AppealWorkflow: one appeal from submission to a closed case (docs/architecture.md section 4).

Deterministic only: no I/O, clocks or randomness here. Every step with side effects is an
activity; the DB projection of each status change is written by a local activity.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.appeal import AppealActivities
    from activities.types import (
        AppealRef,
        ApplyLimitInput,
        AssessInput,
        AssessmentResult,
        ChecklistResult,
        CreateReviewTaskInput,
        DocumentVerdict,
        EligibilityResult,
        NotifyInput,
        ProjectTransitionInput,
        RecordDecisionInput,
        RequestInfoInput,
        ReviewTaskRef,
        SlaEventInput,
        VerifyDocumentInput,
    )
    from core.appeals.status_reason import DEADLINE_PASSED
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
        ReviewOutcome,
        WithdrawRequest,
    )
    from workflows.review import OpenTask, needs_four_eyes, outcome_status, remaining_budget
    from workflows.search_attributes import (
        APPEAL_REVIEWER,
        APPEAL_RISK_TIER,
        APPEAL_SLA_DUE_AT,
        APPEAL_STATUS,
    )

S = AppealStatus

# Business refusals that no retry can fix.
NON_RETRYABLE = ["NotFound", "Conflict", "InvalidInput", "ValueError"]
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=NON_RETRYABLE,
)
# A channel outage is waited out for about a day, then recorded as FAILED on its outbox row.
DELIVERY_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(hours=1),
    maximum_attempts=30,
    non_retryable_error_types=["PermanentSendError"],
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
STEP_TIMEOUT = timedelta(seconds=30)
VERIFY_TIMEOUT = timedelta(minutes=2)


def _refusal_details(error: ApplicationError) -> dict[str, Any]:
    details = error.details[0] if error.details else None
    return details if isinstance(details, dict) else {}


class Withdrawn(Exception):
    """Raised inside the run to unwind to the withdrawal path from any wait."""


@workflow.defn
class AppealWorkflow:
    @workflow.init
    def __init__(self, inp: AppealInput) -> None:
        self._inp = inp
        self._status = S.SUBMITTED
        self._notice_seq = 0
        self._deliveries: list[asyncio.Task[None]] = []
        self._pending_documents: list[str] = []
        self._accepted_documents: list[str] = []
        self._missing: list[str] = []
        # Claims, decisions and withdrawals change the review together: every handler that
        # awaits does its work under this lock, in the order the messages arrived, and reads
        # the state it needs after taking it.
        self._review_lock = asyncio.Lock()
        self._task: OpenTask | None = None
        self._recording_decision: str | None = None  # update id of the decision being recorded
        self._decision: ReviewDecision | None = None
        self._projected_reviewer: str | None = None
        # The day of the latest decline as projected: the notice dates the cool-down from it,
        # as the submission rule does (core/appeals/cooldown.py).
        self._declined_on: str | None = None
        self._withdraw: WithdrawRequest | None = None
        self._original_limit_minor: int | None = None
        self._risk_tier: str | None = None
        self._last_reasons: list[dict[str, Any]] = []
        self._assessment_run = 0
        self._review_time_spent = timedelta(0)
        self._human_review_open = False
        self._human_review: HumanReviewRequest | None = None

    # -- the main path ------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: AppealInput) -> AppealResult:
        try:
            result = await self._decide_case(inp)
        except Withdrawn:
            result = await self._close_withdrawn()
        await asyncio.gather(*self._deliveries)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    async def _decide_case(self, inp: AppealInput) -> AppealResult:
        eligibility: EligibilityResult = await self._activity(
            AppealActivities.check_eligibility, AppealRef(appeal_id=inp.appeal_id)
        )
        self._original_limit_minor = eligibility.original_limit_minor
        if not eligibility.eligible:
            await self._transition(
                S.INELIGIBLE,
                reason=eligibility.reason_code,  # the reader gets its text in their language
                fields={"amount_owed_minor": eligibility.amount_owed_minor},
            )
            await self._notify(
                "ineligible",
                reason=eligibility.reason,
                reason_code=eligibility.reason_code,
                amount_owed_minor=eligibility.amount_owed_minor,
            )
            return self._result()

        self._raise_if_withdrawn()
        checklist: ChecklistResult = await self._activity(
            AppealActivities.prepare_checklist, AppealRef(appeal_id=inp.appeal_id)
        )
        self._missing = checklist.missing
        await self._transition(S.AWAITING_DOCUMENTS, details={"required": checklist.required})
        await self._notify(
            "appeal_received",
            deadline_days=max(inp.document_deadline.days, 1),
            required=checklist.required,
        )
        if not await self._collect_documents(inp.document_deadline, inp.document_reminders):
            return await self._expire()

        assessment = await self._assess()
        if assessment.recommendation == "AUTO_APPROVE":
            await self._transition(
                S.AUTO_APPROVED,
                actor="system",
                details={"assessment_id": assessment.assessment_id},
                fields={"decided_limit_minor": assessment.suggested_limit_minor},
            )
            return await self._apply_and_close(assessment.suggested_limit_minor)

        if assessment.recommendation == "AUTO_DECLINE":
            await self._transition(
                S.AUTO_DECLINED,
                actor="system",
                reason="; ".join(assessment.reason_codes) or None,
                details={"assessment_id": assessment.assessment_id, "score": assessment.score},
            )
            await self._notify(
                "declined",
                reasons=assessment.reasons,
                automated=True,
                score=assessment.score,
                score_min=assessment.score_min,
                score_max=assessment.score_max,
                human_review_days=inp.human_review_window.days,
                decided_on=self._declined_on,
            )
            if not await self._await_human_review_request(inp.human_review_window):
                await self._transition(S.CLOSED)
                return self._result()
            await self._notify("human_review_requested")

        decision = await self._review(inp)
        if decision is None:
            return await self._expire()
        if decision.outcome is ReviewOutcome.DECLINE:
            await self._notify(
                "declined",
                reason_codes=decision.reasons,
                automated=False,
                score=None,
                human_review_days=0,
                decided_on=self._declined_on,
            )
            await self._transition(S.CLOSED)
            return self._result()
        assert decision.approved_limit_minor is not None
        return await self._apply_and_close(decision.approved_limit_minor)

    async def _assess(self) -> AssessmentResult:
        await self._transition(S.CHECKING)
        self._assessment_run += 1
        assessment: AssessmentResult = await self._activity(
            AppealActivities.assess_appeal,
            AssessInput(appeal_id=self._inp.appeal_id, run=self._assessment_run),
        )
        self._raise_if_withdrawn()
        self._last_reasons = assessment.reasons
        if assessment.risk_tier and assessment.risk_tier != self._risk_tier:
            self._risk_tier = assessment.risk_tier
            workflow.upsert_search_attributes([APPEAL_RISK_TIER.value_set(assessment.risk_tier)])
        return assessment

    async def _expire(self) -> AppealResult:
        await self._transition(S.EXPIRED, reason=DEADLINE_PASSED)
        await self._notify("expired")
        return self._result()

    async def _collect_documents(self, deadline: timedelta, reminders: list[timedelta]) -> bool:
        """Verifies each upload until every required item is accepted (True) or the deadline
        passes (False), reminding the customer of what is missing at the reminder points."""
        started = workflow.now()
        deadline_at = started + deadline
        pending_reminders = sorted(started + offset for offset in reminders)
        while self._missing:
            now = workflow.now()
            if now >= deadline_at:
                return False
            wake_at = min([deadline_at, *pending_reminders[:1]])
            try:
                await workflow.wait_condition(
                    lambda: bool(self._pending_documents) or self._withdraw is not None,
                    timeout=max(wake_at - now, timedelta(milliseconds=1)),
                )
            except TimeoutError:
                if pending_reminders and workflow.now() >= pending_reminders[0]:
                    pending_reminders.pop(0)
                    days_left = max(-((workflow.now() - deadline_at) // timedelta(days=1)), 0)  # ceiling
                    await self._notify("documents_reminder", missing=self._missing, days_left=days_left)
                continue
            self._raise_if_withdrawn()
            while self._pending_documents:
                document_id = self._pending_documents.pop(0)
                verdict: DocumentVerdict = await self._activity(
                    AppealActivities.verify_document,
                    VerifyDocumentInput(appeal_id=self._inp.appeal_id, document_id=document_id),
                    timeout=VERIFY_TIMEOUT,
                )
                self._missing = verdict.missing
                if verdict.accepted:
                    self._accepted_documents.append(document_id)
                else:
                    await self._notify(
                        "document_rejected",
                        doc_type=verdict.doc_type,
                        reason_en=verdict.rejection_reason,
                        reason_zh=verdict.rejection_reason_zh,
                        document_id=document_id,
                    )
        return True

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

    async def _review(self, inp: AppealInput) -> ReviewDecision | None:
        """Manual review until a final APPROVE or DECLINE (None: the customer did not send
        requested information in time). An approval that needs four eyes goes to a second,
        different, senior reviewer, whose decision is the final one."""
        round_no, preferred = 1, None
        while True:
            first = await self._review_stage(round_no, stage=1, preferred_assignee=preferred)
            if first.outcome is ReviewOutcome.REQUEST_INFO:
                if not await self._request_information(first):
                    return None
                await self._assess()
                round_no, preferred = round_no + 1, first.reviewer
                continue
            if first.outcome is ReviewOutcome.DECLINE:
                return first
            assert first.approved_limit_minor is not None
            if not needs_four_eyes(
                first.approved_limit_minor,
                self._risk_tier,
                inp.four_eyes_min_amount_minor,
                inp.four_eyes_risk_tiers,
            ):
                return first
            return await self._review_stage(round_no, stage=2, excluded_reviewer=first.reviewer)

    async def _review_stage(
        self,
        round_no: int,
        *,
        stage: int,
        preferred_assignee: str | None = None,
        excluded_reviewer: str | None = None,
    ) -> ReviewDecision:
        self._raise_if_withdrawn()
        # The task id is chosen here, before the task row exists, so a reviewer who sees the
        # task in the queue is never told by the validator that it is not open.
        started = workflow.now()
        budget = remaining_budget(self._inp.review_due, self._review_time_spent)
        task = OpenTask(
            task_id=str(workflow.uuid4()),
            stage=stage,
            created_at=started,
            due_at=started + budget,
            excluded_reviewer=excluded_reviewer,
            preferred_assignee=preferred_assignee,
        )
        async with self._review_lock:
            self._task, self._decision = task, None
            ref: ReviewTaskRef = await self._activity(
                AppealActivities.create_review_task,
                CreateReviewTaskInput(
                    task_id=task.task_id,
                    appeal_id=self._inp.appeal_id,
                    round=round_no,
                    stage=stage,
                    due_at=task.due_at,
                    required_role="reviewer" if stage == 1 else "senior_reviewer",
                    excluded_reviewer=excluded_reviewer,
                    preferred_assignee=preferred_assignee,
                    risk_tier=self._risk_tier,
                ),
            )
            task.row_written = True
            # A claim message that arrived while the row was written is newer than this.
            task.follow_claim(ref.assignee, ref.version)
            sla = [APPEAL_SLA_DUE_AT.value_set(task.due_at)]
            if self._status != task.pending_status:
                await self._transition(
                    task.pending_status, details={"task_id": task.task_id, "stage": stage}, attributes=sla
                )
            else:  # a four-eyes approval already moved the appeal to the second review
                workflow.upsert_search_attributes(sla)
            await self._project_claim(task)
        try:
            return await self._await_decision(task)
        finally:
            self._review_time_spent += workflow.now() - started

    async def _await_decision(self, task: OpenTask) -> ReviewDecision:
        """Runs the SLA timers until the decision is recorded (claims are followed by their
        handler, under the review lock) or the appeal is withdrawn."""
        while self._decision is None:
            self._raise_if_withdrawn()
            sla_point = None
            if not task.warned:
                sla_point = task.warning_at(self._inp.sla_warning_fraction)
            elif not task.breached:
                sla_point = task.due_at
            try:
                await workflow.wait_condition(
                    lambda: self._decision is not None or self._withdraw is not None,
                    timeout=max(sla_point - workflow.now(), timedelta(milliseconds=1)) if sla_point else None,
                )
            except TimeoutError:
                kind = "warning" if not task.warned else "breach"
                if kind == "warning":
                    task.warned = True
                else:
                    task.breached = True
                await self._activity(
                    AppealActivities.record_sla_event,
                    SlaEventInput(appeal_id=self._inp.appeal_id, task_id=task.task_id, kind=kind),
                )
        return self._decision

    async def _project_claim(self, task: OpenTask) -> None:
        """Brings the status and AppealReviewer in line with who holds the task. Called with
        the review lock held; a task that is decided, replaced or withdrawn is left alone."""
        if task is not self._task or self._decision is not None or self._withdraw is not None:
            return
        target = task.in_review_status if task.claimant else task.pending_status
        reviewer = [APPEAL_REVIEWER.value_set(task.claimant or "")]
        if self._status != target:
            await self._transition(
                target,
                actor=f"reviewer:{task.claimant}" if task.claimant else "workflow",
                details={"task_id": task.task_id, "reviewer": task.claimant},
                attributes=reviewer if task.claimant != self._projected_reviewer else [],
            )
        elif task.claimant != self._projected_reviewer:
            workflow.upsert_search_attributes(reviewer)
        self._projected_reviewer = task.claimant

    async def _request_information(self, decision: ReviewDecision) -> bool:
        checklist: ChecklistResult = await self._activity(
            AppealActivities.request_information,
            RequestInfoInput(
                appeal_id=self._inp.appeal_id,
                document_types=decision.requested_documents,
                message=decision.note,
            ),
        )
        self._missing = checklist.missing
        await self._notify("information_requested", missing=checklist.missing, message=decision.note)
        await self._transition(S.AWAITING_DOCUMENTS, details={"requested": checklist.missing})
        return await self._collect_documents(self._inp.document_deadline, self._inp.document_reminders)

    async def _apply_and_close(self, new_limit_minor: int) -> AppealResult:
        # Past a decision the customer can no longer withdraw: the outcome is announced.
        try:
            await workflow.execute_activity_method(
                AppealActivities.apply_limit,
                ApplyLimitInput(appeal_id=self._inp.appeal_id, new_limit_minor=new_limit_minor),
                start_to_close_timeout=STEP_TIMEOUT,
                retry_policy=APPLY_LIMIT_RETRY,
            )
        except ActivityError as err:
            cause = err.cause
            if not (isinstance(cause, ApplicationError) and cause.type == "LimitRefused"):
                raise
            # Never a silent success: the appeal stays open in a visible failed status (search
            # attribute, current details, DB projection) until an operator resolves it.
            await self._transition(
                S.LIMIT_APPLY_FAILED,
                reason=cause.message[:500],
                details={"new_limit_minor": new_limit_minor, "refusal": _refusal_details(cause)},
            )
            return self._result()
        await self._transition(S.LIMIT_APPLIED, details={"new_limit_minor": new_limit_minor})
        await self._notify(
            "limit_restored",
            new_limit_minor=new_limit_minor,
            partial=new_limit_minor < self._inp.requested_limit_minor,
            # Why not the full amount: the principal reasons of the latest assessment.
            partial_reasons=self._last_reasons if new_limit_minor < self._inp.requested_limit_minor else None,
        )
        await self._transition(S.CLOSED)
        return self._result(new_limit_minor)

    async def _close_withdrawn(self) -> AppealResult:
        assert self._withdraw is not None
        async with self._review_lock:
            had_task, self._task = self._task is not None, None
            await self._activity(
                AppealActivities.cancel_review_tasks, AppealRef(appeal_id=self._inp.appeal_id)
            )
            await self._transition(
                S.WITHDRAWN,
                actor=self._withdraw.requested_by,
                reason=self._withdraw.reason or None,
                attributes=[APPEAL_SLA_DUE_AT.value_unset()] if had_task else [],
            )
        await self._notify("withdrawn")
        return self._result()

    # -- messages -----------------------------------------------------------------------

    @workflow.signal
    def document_uploaded(self, upload: DocumentUploaded) -> None:
        if upload.document_id not in self._pending_documents + self._accepted_documents:
            self._pending_documents.append(upload.document_id)

    @workflow.signal
    async def withdraw(self, request: WithdrawRequest) -> None:
        # Under the lock: a decision that arrived earlier is recorded first and then stands (the
        # appeal is no longer withdrawable); one that arrives later finds the appeal withdrawn.
        async with self._review_lock:
            if self._withdraw is None and self._status in WITHDRAWABLE_STATUSES:
                self._withdraw = request

    @workflow.signal
    async def review_claim_changed(self, claim: ReviewClaim) -> None:
        task = self._task
        if (
            task is None
            or claim.task_id != task.task_id
            or self._decision is not None
            or self._recording_decision is not None
        ):
            return
        # Followed at once, so a decision validated after this message sees who holds the task;
        # the status follows under the lock.
        if task.follow_claim(claim.reviewer, claim.version):
            async with self._review_lock:
                await self._project_claim(task)

    @workflow.update
    async def decide(self, decision: ReviewDecision) -> DecisionAccepted:
        async with self._review_lock:
            # Whatever arrived while this waited for the lock (a release, a withdrawal, another
            # decision) is seen here: the checks of the validator are made again.
            self._validate_decision(decision)
            task = self._task
            assert task is not None
            if task.claimant != decision.reviewer:
                raise ApplicationError(
                    "Only the reviewer holding the claim on this task can decide it; claim it first.",
                    type="NotClaimHolder",
                )
            self._recording_decision = workflow.current_update_info().id  # type: ignore[union-attr]
            try:
                await self._project_claim(task)
                return await self._record_decision(task, decision)
            finally:
                self._recording_decision = None

    async def _record_decision(self, task: OpenTask, decision: ReviewDecision) -> DecisionAccepted:
        status = outcome_status(decision, self._inp.requested_limit_minor)
        await self._activity(
            AppealActivities.record_decision,
            RecordDecisionInput(
                appeal_id=self._inp.appeal_id,
                task_id=decision.task_id,
                decided_by=decision.reviewer,
                outcome=decision.outcome.value,
                approved_limit_minor=decision.approved_limit_minor,
                reasons=decision.reasons or decision.requested_documents,
                note=decision.note,
                idempotency_key=workflow.current_update_info().id,  # type: ignore[union-attr]
                stage=task.stage,
            ),
        )
        final = status
        if decision.outcome is ReviewOutcome.APPROVE and task.stage == 1:
            assert decision.approved_limit_minor is not None
            if needs_four_eyes(
                decision.approved_limit_minor,
                self._risk_tier,
                self._inp.four_eyes_min_amount_minor,
                self._inp.four_eyes_risk_tiers,
            ):
                status = S.PENDING_SECOND_REVIEW
        await self._transition(
            status,
            actor=f"reviewer:{decision.reviewer}",
            reason="; ".join(decision.reasons) or None,
            details={
                "task_id": decision.task_id,
                "stage": task.stage,
                "outcome": decision.outcome.value,
                "approved_limit_minor": decision.approved_limit_minor,
                "requested_documents": decision.requested_documents,
            },
            fields={"decided_limit_minor": decision.approved_limit_minor}
            if final != S.INFO_REQUESTED
            else None,
            # The task is done: no open task, no SLA to show (a next stage sets its own).
            attributes=[APPEAL_SLA_DUE_AT.value_unset()],
        )
        self._decision = decision
        return DecisionAccepted(status=status, approved_limit_minor=decision.approved_limit_minor)

    @decide.validator
    def _validate_decision(self, decision: ReviewDecision) -> None:
        task = self._task
        if self._withdraw is not None:
            raise ApplicationError("The appeal has been withdrawn.", type="TaskNotOpen")
        if (
            task is None
            or self._decision is not None
            or self._recording_decision is not None
            or decision.task_id != task.task_id
        ):
            raise ApplicationError(
                f"Review task {decision.task_id} is not open on this appeal.", type="TaskNotOpen"
            )
        if not task.may_decide(decision.reviewer):
            raise ApplicationError(
                "Only the reviewer holding the claim on this task can decide it; claim it first.",
                type="NotClaimHolder",
            )
        if task.excluded_reviewer == decision.reviewer:
            raise ApplicationError(
                "The second review must be done by someone other than the first reviewer.",
                type="NotClaimHolder",
            )
        if decision.outcome is ReviewOutcome.APPROVE:
            amount = decision.approved_limit_minor
            if amount is None or amount <= 0:
                raise ApplicationError(
                    "An approval needs a positive approved_limit_minor.", type="InvalidDecision"
                )
            if self._original_limit_minor is not None and amount > self._original_limit_minor:
                raise ApplicationError(
                    f"The approved limit {amount} is above the account's original limit "
                    f"{self._original_limit_minor}.",
                    type="InvalidDecision",
                )
        elif decision.outcome is ReviewOutcome.DECLINE:
            if not [reason for reason in decision.reasons if reason.strip()]:
                raise ApplicationError("A decline needs at least one reason.", type="InvalidDecision")
        else:
            if task.stage == 2:
                raise ApplicationError(
                    "The second review approves or declines; it does not request information.",
                    type="InvalidDecision",
                )
            if not decision.requested_documents:
                raise ApplicationError(
                    "A request for information needs at least one document type.", type="InvalidDecision"
                )

    @workflow.update
    def request_human_review(self, request: HumanReviewRequest) -> AppealStatus:
        self._human_review = request
        return self._status

    @request_human_review.validator
    def _validate_human_review(self, request: HumanReviewRequest) -> None:
        if not self._human_review_open or self._human_review is not None or self._withdraw is not None:
            raise ApplicationError(
                "A human review can only be asked for once, within the window after an automatic decline.",
                type="HumanReviewNotAvailable",
            )

    @workflow.query
    def state(self) -> AppealState:
        return AppealState(
            status=self._status,
            open_task_id=self._task.task_id if self._task else None,
            pending_documents=list(self._pending_documents),
            accepted_documents=list(self._accepted_documents),
        )

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

    async def _activity(self, fn: Any, arg: Any, *, timeout: timedelta = STEP_TIMEOUT) -> Any:
        return await workflow.execute_activity_method(
            fn, arg, start_to_close_timeout=timeout, retry_policy=STEP_RETRY
        )

    async def _transition(
        self,
        to_status: AppealStatus,
        *,
        actor: str = "workflow",
        reason: str | None = None,
        details: dict[str, Any] | None = None,
        fields: dict[str, Any] | None = None,
        attributes: list[SearchAttributeUpdate[Any]] | None = None,
    ) -> None:
        """Projects a status change, then upserts AppealStatus together with the other search
        attributes that change with it (one upsert per transition)."""
        at = workflow.now()
        await workflow.execute_local_activity_method(
            AppealActivities.project_transition,
            ProjectTransitionInput(
                appeal_id=self._inp.appeal_id,
                to_status=to_status,
                at=at,
                actor=actor,
                reason=reason,
                details=details or {},
                fields=fields or {},
            ),
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=STEP_RETRY,
        )
        self._status = to_status
        if to_status in (S.AUTO_DECLINED, S.DECLINED):
            self._declined_on = at.date().isoformat()
        workflow.upsert_search_attributes([APPEAL_STATUS.value_set(to_status.value), *(attributes or [])])
        workflow.set_current_details(
            f"**{to_status.value}** · appeal `{self._inp.appeal_id}` · account "
            f"`{self._inp.account_id}`" + (f"\n\n{reason}" if reason else "")
        )

    async def _notify(self, event: str, **context: Any) -> None:
        self._notice_seq += 1
        pending: list[int] = await self._activity(
            AppealActivities.notify_customer,
            NotifyInput(
                appeal_id=self._inp.appeal_id,
                event=event,
                sequence=self._notice_seq,
                context=context,
            ),
        )
        # Each channel is delivered on its own, in the background: a slow or failing channel
        # never holds up the appeal or the other channels.
        for notification_id in pending:
            self._deliveries.append(asyncio.create_task(self._deliver(notification_id)))

    async def _deliver(self, notification_id: int) -> None:
        try:
            await workflow.execute_activity_method(
                AppealActivities.deliver_notification,
                notification_id,
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=DELIVERY_RETRY,
            )
        except ActivityError:
            workflow.logger.warning("notification %s was not delivered", notification_id)
