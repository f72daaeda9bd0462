"""AppealWorkflow: one appeal from submission to a closed case (DESIGN.md section 4).

Deterministic only: no I/O, clocks or randomness here. Every step with side effects is an
activity; the DB projection of each status change is written by a local activity.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationError

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
        VerifyDocumentInput,
    )
    from core.status import WITHDRAWABLE_STATUSES, AppealStatus
    from workflows.messages import (
        AppealInput,
        AppealResult,
        AppealState,
        DecisionAccepted,
        DocumentUploaded,
        HumanReviewRequest,
        ReviewDecision,
        ReviewOutcome,
        WithdrawRequest,
    )
    from workflows.search_attributes import APPEAL_STATUS

S = AppealStatus

# Business refusals that no retry can fix.
NON_RETRYABLE = ["NotFound", "Conflict", "InvalidInput", "ValueError"]
STEP_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    non_retryable_error_types=NON_RETRYABLE,
)
STEP_TIMEOUT = timedelta(seconds=30)
VERIFY_TIMEOUT = timedelta(minutes=2)


class Withdrawn(Exception):
    """Raised inside the run to unwind to the withdrawal path from any wait."""


@workflow.defn
class AppealWorkflow:
    @workflow.init
    def __init__(self, inp: AppealInput) -> None:
        self._inp = inp
        self._status = S.SUBMITTED
        self._transition_seq = 0
        self._notice_seq = 0
        self._pending_documents: list[str] = []
        self._accepted_documents: list[str] = []
        self._missing: list[str] = []
        self._open_task_id: str | None = None
        self._deciding = False
        self._decision: ReviewDecision | None = None
        self._withdraw: WithdrawRequest | None = None
        self._original_limit_minor: int | None = None
        self._human_review_open = False
        self._human_review: HumanReviewRequest | None = None

    # -- the main path ------------------------------------------------------------------

    @workflow.run
    async def run(self, inp: AppealInput) -> AppealResult:
        try:
            result = await self._decide_case(inp)
        except Withdrawn:
            result = await self._close_withdrawn()
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
                reason=eligibility.reason,
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
            await self._transition(S.EXPIRED, reason="The document deadline passed.")
            await self._notify("expired")
            return self._result()

        await self._transition(S.CHECKING)
        assessment: AssessmentResult = await self._activity(
            AppealActivities.assess_appeal, AssessInput(appeal_id=inp.appeal_id, run=1)
        )
        self._raise_if_withdrawn()
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
                human_review_days=inp.human_review_window.days,
            )
            if not await self._await_human_review_request(inp.human_review_window):
                await self._transition(S.CLOSED)
                return self._result()
            await self._notify("human_review_requested")

        decision = await self._manual_review(inp, round_no=1)
        if decision.outcome is ReviewOutcome.DECLINE:
            await self._notify(
                "declined",
                reasons=[{"code": r, "en": r, "zh-CN": r} for r in decision.reasons],
                automated=False,
                score=None,
                human_review_days=0,
            )
            await self._transition(S.CLOSED)
            return self._result()
        assert decision.approved_limit_minor is not None
        return await self._apply_and_close(decision.approved_limit_minor)

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

    async def _manual_review(self, inp: AppealInput, round_no: int) -> ReviewDecision:
        # The task id is chosen here, before the task row exists, so a reviewer who sees the
        # task in the queue can never be told by the validator that it is not open.
        task_id = str(workflow.uuid4())
        self._open_task_id = task_id
        await self._activity(
            AppealActivities.create_review_task,
            CreateReviewTaskInput(
                task_id=task_id,
                appeal_id=inp.appeal_id,
                round=round_no,
                due_at=workflow.now() + inp.review_due,
            ),
        )
        await self._transition(S.PENDING_REVIEW)
        await workflow.wait_condition(lambda: self._decision is not None or self._withdraw is not None)
        if self._decision is None:
            self._raise_if_withdrawn()
        assert self._decision is not None
        return self._decision

    async def _apply_and_close(self, new_limit_minor: int) -> AppealResult:
        # Past a decision the customer can no longer withdraw: the outcome is announced.
        await self._activity(
            AppealActivities.apply_limit,
            ApplyLimitInput(appeal_id=self._inp.appeal_id, new_limit_minor=new_limit_minor),
        )
        await self._transition(S.LIMIT_APPLIED, details={"new_limit_minor": new_limit_minor})
        await self._notify(
            "limit_restored",
            new_limit_minor=new_limit_minor,
            partial=new_limit_minor < self._inp.requested_limit_minor,
        )
        await self._transition(S.CLOSED)
        return self._result(new_limit_minor)

    async def _close_withdrawn(self) -> AppealResult:
        assert self._withdraw is not None
        await self._activity(AppealActivities.cancel_review_tasks, AppealRef(appeal_id=self._inp.appeal_id))
        self._open_task_id = None
        await self._transition(
            S.WITHDRAWN, actor=self._withdraw.requested_by, reason=self._withdraw.reason or None
        )
        await self._notify("withdrawn")
        return self._result()

    # -- messages -----------------------------------------------------------------------

    @workflow.signal
    def document_uploaded(self, upload: DocumentUploaded) -> None:
        if upload.document_id not in self._pending_documents + self._accepted_documents:
            self._pending_documents.append(upload.document_id)

    @workflow.signal
    def withdraw(self, request: WithdrawRequest) -> None:
        # Once a decision is being recorded the outcome stands; a late withdrawal is ignored.
        if self._withdraw is None and not self._deciding and self._status in WITHDRAWABLE_STATUSES:
            self._withdraw = request

    @workflow.update
    async def decide(self, decision: ReviewDecision) -> DecisionAccepted:
        self._deciding = True
        try:
            return await self._record_decision(decision)
        finally:
            self._deciding = False

    async def _record_decision(self, decision: ReviewDecision) -> DecisionAccepted:
        # The task row can be seen a moment before the main path has recorded PENDING_REVIEW.
        await workflow.wait_condition(lambda: self._status in (S.PENDING_REVIEW, S.IN_REVIEW))
        outcome_status = self._status_for(decision)
        # Deciding an unclaimed task claims it implicitly (explicit claims come with the queue).
        await self._transition(
            S.IN_REVIEW,
            actor=f"reviewer:{decision.reviewer}",
            details={"task_id": decision.task_id},
        )
        await self._activity(
            AppealActivities.record_decision,
            RecordDecisionInput(
                appeal_id=self._inp.appeal_id,
                task_id=decision.task_id,
                decided_by=decision.reviewer,
                outcome=decision.outcome.value,
                approved_limit_minor=decision.approved_limit_minor,
                reasons=decision.reasons,
                note=decision.note,
                idempotency_key=workflow.current_update_info().id,  # type: ignore[union-attr]
            ),
        )
        await self._transition(
            outcome_status,
            actor=f"reviewer:{decision.reviewer}",
            reason="; ".join(decision.reasons) or None,
            details={"task_id": decision.task_id},
            fields={"decided_limit_minor": decision.approved_limit_minor},
        )
        self._open_task_id = None
        self._decision = decision
        return DecisionAccepted(status=outcome_status, approved_limit_minor=decision.approved_limit_minor)

    @decide.validator
    def _validate_decision(self, decision: ReviewDecision) -> None:
        if self._withdraw is not None:
            raise ApplicationError("The appeal has been withdrawn.", type="TaskNotOpen")
        if self._deciding or self._open_task_id is None or decision.task_id != self._open_task_id:
            raise ApplicationError(
                f"Review task {decision.task_id} is not open on this appeal.", type="TaskNotOpen"
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
        elif not [reason for reason in decision.reasons if reason.strip()]:
            raise ApplicationError("A decline needs at least one reason.", type="InvalidDecision")

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
            open_task_id=self._open_task_id,
            pending_documents=list(self._pending_documents),
            accepted_documents=list(self._accepted_documents),
        )

    # -- helpers ------------------------------------------------------------------------

    def _status_for(self, decision: ReviewDecision) -> AppealStatus:
        if decision.outcome is ReviewOutcome.DECLINE:
            return S.DECLINED
        assert decision.approved_limit_minor is not None
        if decision.approved_limit_minor < self._inp.requested_limit_minor:
            return S.PARTIALLY_APPROVED
        return S.APPROVED

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
    ) -> None:
        await workflow.execute_local_activity_method(
            AppealActivities.project_transition,
            ProjectTransitionInput(
                appeal_id=self._inp.appeal_id,
                to_status=to_status,
                at=workflow.now(),
                actor=actor,
                reason=reason,
                details=details or {},
                fields=fields or {},
            ),
            start_to_close_timeout=timedelta(seconds=15),
            retry_policy=STEP_RETRY,
        )
        self._status = to_status
        workflow.upsert_search_attributes([APPEAL_STATUS.value_set(to_status.value)])
        workflow.set_current_details(
            f"**{to_status.value}** · appeal `{self._inp.appeal_id}` · account "
            f"`{self._inp.account_id}`" + (f"\n\n{reason}" if reason else "")
        )

    async def _notify(self, event: str, **context: Any) -> None:
        self._notice_seq += 1
        await self._activity(
            AppealActivities.notify_customer,
            NotifyInput(
                appeal_id=self._inp.appeal_id,
                event=event,
                sequence=self._notice_seq,
                context=context,
            ),
        )
