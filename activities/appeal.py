"""Appeal activities: thin wrappers that open a unit of work and call core/.

They are synchronous (SQLAlchemy sessions, boto3) and run in the worker's thread pool.
Every side effect is idempotent per appeal and step, so Temporal's retries are safe.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.activity_log import log_event, transition_log
from activities.types import (
    AppealRef,
    AppliedLimitResult,
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
from core.appeals.assessment import run_assessment
from core.appeals.service import Transition, apply_transition, get_appeal
from core.clock import SYSTEM_CLOCK, Clock
from core.db import session_scope
from core.db.case_tables import DecisionOutcome
from core.db.ledger_tables import CreditAccount, LimitEvent
from core.documents.checklist import missing_types, prepare_checklist, request_items
from core.documents.verification import verify_document
from core.ledger.credit_line_api import CreditLineRefused, CreditLineUnavailable, apply_limit_externally
from core.ledger.eligibility import check_eligibility
from core.ledger.limits import apply_restore
from core.notifications.channels import EMAIL, SMS, WEBHOOK, senders_from_settings
from core.notifications.channels.base import PermanentSendError
from core.notifications.outbox import deliver, plan_notifications
from core.notifications.service import IN_APP
from core.policy.loader import load_default_policy
from core.reviews.service import NewDecision, NewTask, cancel_open_tasks, create_task, record_decision
from core.reviews.sla import record_sla_event
from core.settings import Settings

CUSTOMER_CHANNELS = (IN_APP, EMAIL, SMS, WEBHOOK)


class AppealActivities:
    def __init__(
        self, *, engine: Engine, s3_client: Any, settings: Settings, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self._engine = engine
        self._s3 = s3_client
        self._settings = settings
        self._clock = clock  # the business date every check is made on
        self._senders: dict[str, Any] | None = None

    @activity.defn(name="check_eligibility")
    def check_eligibility(self, ref: AppealRef) -> EligibilityResult:
        with session_scope(self._engine, read_only=True) as session:
            appeal = get_appeal(session, ref.appeal_id)
            result = check_eligibility(session, appeal.account_id, self._clock.today())
        return EligibilityResult(
            eligible=result.eligible,
            reason_code=result.reason_code,
            reason=result.reason,
            original_limit_minor=result.original_limit_minor,
            current_limit_minor=result.current_limit_minor,
            amount_owed_minor=result.amount_owed_minor,
        )

    @activity.defn(name="project_transition")
    def project_transition(self, inp: ProjectTransitionInput) -> None:
        with session_scope(self._engine) as session:
            from_status = get_appeal(session, inp.appeal_id).status
            applied = apply_transition(
                session,
                Transition(
                    appeal_id=inp.appeal_id,
                    to_status=inp.to_status,
                    at=inp.at,
                    actor=inp.actor,
                    reason=inp.reason,
                    details=inp.details,
                    fields=inp.fields,
                ),
            )
        # One line per status change, once committed. IDs and codes only: the reason may
        # quote the customer, so it stays in the case store.
        log_event(
            transition_log,
            logging.INFO,
            "appeal_transition",
            appeal_id=inp.appeal_id,
            from_status=str(from_status),
            to_status=str(inp.to_status),
            actor=inp.actor,
            applied=applied,  # false: a retry found it already projected
        )

    @activity.defn(name="prepare_checklist")
    def prepare_checklist(self, ref: AppealRef) -> ChecklistResult:
        with session_scope(self._engine) as session:
            appeal = get_appeal(session, ref.appeal_id)
            items = prepare_checklist(session, appeal, load_default_policy(), self._clock.today())
            return ChecklistResult(
                required=[item.doc_type for item in items if item.required],
                missing=missing_types(session, ref.appeal_id),
            )

    @activity.defn(name="verify_document")
    def verify_document(self, inp: VerifyDocumentInput) -> DocumentVerdict:
        # Slow (S3 read, PDF child process): heartbeat so a dead worker is noticed quickly.
        activity.heartbeat(inp.document_id)
        outcome = verify_document(
            self._engine,
            self._s3,
            self._settings,
            appeal_id=inp.appeal_id,
            document_id=inp.document_id,
            today=self._clock.today(),
        )
        return DocumentVerdict(
            document_id=outcome.document_id,
            doc_type=outcome.doc_type,
            accepted=outcome.accepted,
            rejection_code=outcome.rejection_code,
            rejection_reason=outcome.rejection_reason,
            rejection_reason_zh=outcome.rejection_reason_zh,
            flags=outcome.flags,
            checklist_complete=outcome.checklist_complete,
            missing=outcome.missing,
        )

    @activity.defn(name="assess_appeal")
    def assess_appeal(self, inp: AssessInput) -> AssessmentResult:
        with session_scope(self._engine) as session:
            assessment = run_assessment(
                session, inp.appeal_id, inp.run, load_default_policy(), self._clock.today()
            )
            assert assessment.id is not None
            return AssessmentResult(
                assessment_id=assessment.id,
                recommendation=assessment.recommendation,
                suggested_limit_minor=assessment.suggested_limit_minor,
                reason_codes=[reason["code"] for reason in assessment.reasons],
                reasons=assessment.reasons,
                score=assessment.score,
                score_min=assessment.result.get("score_min"),
                score_max=assessment.result.get("score_max"),
                risk_tier=assessment.risk_tier,
                four_eyes_required=assessment.four_eyes_required,
            )

    @activity.defn(name="create_review_task")
    def create_review_task(self, inp: CreateReviewTaskInput) -> ReviewTaskRef:
        with session_scope(self._engine) as session:
            task = create_task(
                session,
                NewTask(
                    task_id=inp.task_id,
                    appeal_id=inp.appeal_id,
                    round=inp.round,
                    stage=inp.stage,
                    due_at=inp.due_at,
                    required_role=inp.required_role,
                    excluded_reviewer=inp.excluded_reviewer,
                    preferred_assignee=inp.preferred_assignee,
                    risk_tier=inp.risk_tier,
                ),
            )
            return ReviewTaskRef(
                task_id=task.id, due_at=task.due_at, assignee=task.assignee, version=task.version
            )

    @activity.defn(name="record_sla_event")
    def record_sla_event(self, inp: SlaEventInput) -> None:
        with session_scope(self._engine) as session:
            record_sla_event(session, appeal_id=inp.appeal_id, task_id=inp.task_id, kind=inp.kind)

    @activity.defn(name="request_information")
    def request_information(self, inp: RequestInfoInput) -> ChecklistResult:
        with session_scope(self._engine) as session:
            missing = request_items(session, inp.appeal_id, inp.document_types)
            return ChecklistResult(required=missing, missing=missing)

    @activity.defn(name="record_decision")
    def record_decision(self, inp: RecordDecisionInput) -> None:
        with session_scope(self._engine) as session:
            record_decision(
                session,
                NewDecision(
                    appeal_id=inp.appeal_id,
                    task_id=inp.task_id,
                    decided_by=inp.decided_by,
                    outcome=DecisionOutcome(inp.outcome),
                    approved_limit_minor=inp.approved_limit_minor,
                    reasons=inp.reasons,
                    note=inp.note,
                    idempotency_key=inp.idempotency_key,
                    stage=inp.stage,
                ),
            )

    @activity.defn(name="cancel_review_tasks")
    def cancel_review_tasks(self, ref: AppealRef) -> int:
        with session_scope(self._engine) as session:
            return cancel_open_tasks(session, ref.appeal_id)

    @activity.defn(name="apply_limit")
    def apply_limit(self, inp: ApplyLimitInput) -> AppliedLimitResult:
        """To the ledger, or (when configured) to the external credit-line API first, keyed by
        the appeal so a retry is applied once there; the ledger then mirrors it once."""
        source = "appeals"
        if self._settings.credit_line_api_url:
            source = "credit-line-api"
            self._apply_externally(self._settings.credit_line_api_url, inp)
        with session_scope(self._engine) as session:
            appeal = get_appeal(session, inp.appeal_id)
            applied = apply_restore(
                session,
                appeal_id=appeal.id,
                account_id=appeal.account_id,
                new_limit_minor=inp.new_limit_minor,
                source=source,
            )
        return AppliedLimitResult(
            limit_event_id=applied.limit_event_id,
            from_limit_minor=applied.from_limit_minor,
            to_limit_minor=applied.to_limit_minor,
            newly_applied=applied.newly_applied,
        )

    def _apply_externally(self, url: str, inp: ApplyLimitInput) -> None:
        with session_scope(self._engine, read_only=True) as session:
            appeal = get_appeal(session, inp.appeal_id)
            account = session.get(CreditAccount, appeal.account_id)
            currency = account.currency if account else "CNY"
            # The mirror is written only after the API accepted: once it exists, a retry of this
            # activity (say after a crash before it completed) calls no one.
            if session.exec(select(LimitEvent.id).where(LimitEvent.appeal_id == appeal.id)).first():
                return
        try:
            apply_limit_externally(
                url,
                self._settings.credit_line_api_token,
                appeal_id=appeal.id,
                account_id=appeal.account_id,
                new_limit_minor=inp.new_limit_minor,
                currency=currency,
                timeout=self._settings.credit_line_api_timeout_seconds,
            )
        except CreditLineRefused as exc:
            raise ApplicationError(
                str(exc),
                {"status_code": exc.status_code, "body": exc.body[:2000]},
                type="LimitRefused",
                non_retryable=True,
            ) from exc
        except CreditLineUnavailable as exc:
            raise ApplicationError(str(exc), type="CreditLineUnavailable") from exc

    @activity.defn(name="notify_customer")
    def notify_customer(self, inp: NotifyInput) -> list[int]:
        """Plans the notice on every channel (the in-app row is delivered by being written);
        returns the outbox rows still to send, each delivered by its own activity."""
        with session_scope(self._engine) as session:
            appeal = get_appeal(session, inp.appeal_id)
            rows = plan_notifications(
                session,
                appeal=appeal,
                event=inp.event,
                sequence=inp.sequence,
                context=_with_policy_windows(inp.event, _with_reason_texts(inp.context)),
                channels=CUSTOMER_CHANNELS,
                webhook_urls=self._settings.webhook_urls,
            )
            return [row.id for row in rows if row.channel != IN_APP and row.status != "SENT" and row.id]

    @activity.defn(name="deliver_notification")
    def deliver_notification(self, notification_id: int) -> str:
        if self._senders is None:
            self._senders = senders_from_settings(self._settings)
        try:
            row = deliver(self._engine, notification_id, self._senders, raise_errors=True)
        except PermanentSendError as exc:
            # Recorded as FAILED on the row; retrying cannot help.
            raise ApplicationError(str(exc), type="PermanentSendError", non_retryable=True) from exc
        return row.status

    def all(self) -> list[Any]:
        return [
            self.check_eligibility,
            self.prepare_checklist,
            self.project_transition,
            self.verify_document,
            self.assess_appeal,
            self.create_review_task,
            self.record_sla_event,
            self.request_information,
            self.record_decision,
            self.cancel_review_tasks,
            self.apply_limit,
            self.notify_customer,
            self.deliver_notification,
        ]


def _with_policy_windows(event: str, context: dict[str, Any]) -> dict[str, Any]:
    """A decline notice names the day a new appeal is accepted: the policy's cool-down, the
    rule submission enforces (core/appeals/cooldown.py)."""
    if event != "declined" or context.get("cooldown_days") is not None:
        return context
    return {**context, "cooldown_days": load_default_policy().policy.appeals.decline_cooldown_days}


def _with_reason_texts(context: dict[str, Any]) -> dict[str, Any]:
    """Reviewers decline with policy reason codes; the customer reads the policy's words."""
    codes = context.get("reason_codes")
    if codes is None:
        return context
    texts = load_default_policy().policy.reasons
    reasons = [
        {"code": code, "en": texts[code].en, "zh-CN": texts[code].zh_cn}
        if code in texts
        else {"code": code, "en": code, "zh-CN": code}
        for code in codes
    ]
    return {**{k: v for k, v in context.items() if k != "reason_codes"}, "reasons": reasons}
