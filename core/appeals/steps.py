"""The appeal's steps: each does its work and writes the status it produces in one transaction,
with the customer's notice planned in the outbox of that same transaction.

AppealWorkflow runs each as one activity (activities/appeal.py), which delivers the planned
notice after the commit. Every step is idempotent under activity retry: its key is the appeal
and the step's own input (the workflow's notice sequence number, the assessment run, the
review task id, the decision's update id), and a step that finds its work already done returns
what it did instead of doing it again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.appeals.assessment import latest_assessment, run_assessment
from core.appeals.service import Transition, apply_transition, get_appeal
from core.db import session_scope
from core.db.case_tables import (
    Appeal,
    Assessment,
    DecisionOutcome,
    Document,
    DocumentState,
    Recommendation,
    ReviewTask,
    TaskStatus,
)
from core.db.ledger_tables import CreditAccount
from core.documents.checklist import missing_types, prepare_checklist, request_items
from core.documents.evidence import recheck_kept_documents
from core.documents.verification import settle_document
from core.ledger.eligibility import INELIGIBILITY_TEXTS, check_eligibility, ineligibility_text
from core.ledger.limits import apply_restore
from core.notifications.outbox import CUSTOMER_CHANNELS, plan_and_claim
from core.policy.loader import LoadedPolicy
from core.reviews.queue import follow_task
from core.reviews.rules import Outcome, Stage, needs_four_eyes, outcome_status
from core.reviews.service import NewDecision, NewTask, cancel_open_tasks, create_task, record_decision
from core.settings import Settings
from core.status import AppealStatus

S = AppealStatus
WORKFLOW = "workflow"
SYSTEM = "system"


@dataclass(frozen=True)
class Notices:
    """Where a step's notice goes: the customer's channels, the partners' webhooks."""

    webhook_urls: list[str]
    policy: LoadedPolicy
    # A deployed challenger scores each assessed snapshot in shadow; it never decides.
    challenger: LoadedPolicy | None = None


@dataclass
class StepResult:
    status: AppealStatus
    to_deliver: list[int] = field(default_factory=list)  # outbox rows to send after the commit


def _lock(session: Session, appeal_id: str) -> Appeal:
    """The appeal's row, locked for this transaction (uploads lock it too: a file is either in
    before a step reads the documents or refused after the status moved on)."""
    appeal = session.exec(select(Appeal).where(Appeal.id == appeal_id).with_for_update()).first()
    if appeal is None:
        get_appeal(session, appeal_id)  # raises NotFound
    assert appeal is not None
    return appeal


def _move(
    session: Session,
    appeal: Appeal,
    to_status: AppealStatus,
    at: datetime,
    *,
    actor: str = WORKFLOW,
    reason: str | None = None,
    details: dict[str, Any] | None = None,
    fields: dict[str, Any] | None = None,
) -> None:
    apply_transition(
        session,
        Transition(
            appeal_id=appeal.id,
            to_status=to_status,
            at=at,
            actor=actor,
            reason=reason,
            details=details,
            fields=fields,
        ),
    )


def _notify(
    session: Session,
    appeal: Appeal,
    notices: Notices,
    event: str,
    sequence: int,
    context: dict[str, Any],
) -> list[int]:
    """Plans the customer's notice and claims its rows for the step to send after its commit
    (the ids returned); rows a previous attempt planned are left to it, or to the relay."""
    _, claimed = plan_and_claim(
        session,
        appeal=appeal,
        event=event,
        sequence=sequence,
        context=_with_reason_texts(notices.policy, context),
        channels=CUSTOMER_CHANNELS,
        webhook_urls=notices.webhook_urls,
    )
    return [row.id for row in claimed if row.id is not None]


def _with_reason_texts(policy: LoadedPolicy, context: dict[str, Any]) -> dict[str, Any]:
    """Reviewers decline with policy reason codes; the customer reads the policy's words."""
    codes = context.get("reason_codes")
    if codes is None:
        return context
    texts = policy.policy.reasons
    reasons = [
        {"code": code, "en": texts[code].en, "zh-CN": texts[code].zh_cn}
        if code in texts
        else {"code": code, "en": code, "zh-CN": code}
        for code in codes
    ]
    return {**{k: v for k, v in context.items() if k != "reason_codes"}, "reasons": reasons}


# -- opening: eligibility and the checklist ---------------------------------------------------


@dataclass
class Opened(StepResult):
    eligible: bool = True
    original_limit_minor: int = 0
    missing: list[str] = field(default_factory=list)
    uploads_waiting: int = 0


def open_appeal(
    session: Session,
    appeal_id: str,
    *,
    today: date,
    at: datetime,
    notice_seq: int,
    deadline_days: int,
    notices: Notices,
) -> Opened:
    """SUBMITTED -> INELIGIBLE (with the amount still owed) or AWAITING_DOCUMENTS (the
    checklist written), with the customer's notice."""
    appeal = _lock(session, appeal_id)
    account = session.get(CreditAccount, appeal.account_id)
    original = account.original_limit_minor if account else 0
    if appeal.status == S.SUBMITTED:
        eligibility = check_eligibility(session, appeal.account_id, today)
        if not eligibility.eligible:
            _move(
                session,
                appeal,
                S.INELIGIBLE,
                at,
                reason=eligibility.reason_code,  # the reader gets its text in their language
                fields={"amount_owed_minor": eligibility.amount_owed_minor},
            )
        else:
            items = prepare_checklist(session, appeal, notices.policy, today)
            required = [item.doc_type for item in items if item.required]
            _move(session, appeal, S.AWAITING_DOCUMENTS, at, details={"required": required})
    if appeal.status == S.INELIGIBLE:
        deliver = _notify(
            session,
            appeal,
            notices,
            "ineligible",
            notice_seq,
            {
                "reason_code": appeal.status_reason,
                "reason": ineligibility_text(
                    appeal.status_reason or "", "en", amount_owed_minor=appeal.amount_owed_minor
                )
                if appeal.status_reason in INELIGIBILITY_TEXTS
                else appeal.status_reason,
                "amount_owed_minor": appeal.amount_owed_minor,
            },
        )
        return Opened(S.INELIGIBLE, deliver, eligible=False, original_limit_minor=original)
    required = missing_types(session, appeal.id)
    deliver = _notify(
        session,
        appeal,
        notices,
        "appeal_received",
        notice_seq,
        {"deadline_days": deadline_days, "required": required},
    )
    waiting = len(_to_verify(session, appeal.id))
    return Opened(
        S(appeal.status), deliver, original_limit_minor=original, missing=required, uploads_waiting=waiting
    )


# -- documents, checks and routing ------------------------------------------------------------


@dataclass
class ReviewTaskPlan:
    """The first review task to open if the checks route the appeal to people."""

    task_id: str
    due_at: datetime
    round: int
    preferred_assignee: str | None = None


@dataclass
class Checked(StepResult):
    missing: list[str] = field(default_factory=list)
    assessment_id: int | None = None
    recommendation: Recommendation | None = None
    suggested_limit_minor: int | None = None
    risk_tier: str | None = None
    reasons: list[dict[str, Any]] = field(default_factory=list)
    task_id: str | None = None
    task_due_at: datetime | None = None
    task_assignee: str | None = None
    task_version: int = 0


def _to_verify(session: Session, appeal_id: str) -> list[str]:
    return list(
        session.exec(
            select(Document.id)
            .where(
                Document.appeal_id == appeal_id,
                col(Document.state).in_([DocumentState.UPLOADED, DocumentState.VERIFYING]),
            )
            .order_by(col(Document.created_at), col(Document.id))
        ).all()
    )


def _refusal_notices(session: Session, appeal: Appeal, notices: Notices) -> list[int]:
    """A notice for every refused file, keyed by the file's place among the appeal's files
    (stable forever: files are never deleted), so a file is never announced twice."""
    documents = session.exec(
        select(Document)
        .where(Document.appeal_id == appeal.id)
        .order_by(col(Document.created_at), col(Document.id))
    ).all()
    deliver: list[int] = []
    for ordinal, document in enumerate(documents, start=1):
        if document.state != DocumentState.REJECTED:
            continue
        deliver += _notify(
            session,
            appeal,
            notices,
            "document_rejected",
            ordinal,
            {
                "doc_type": document.doc_type,
                "reason_en": document.rejection_reason,
                "reason_zh": document.rejection_reason_zh,
                "document_id": document.id,
            },
        )
    return deliver


def check_documents(
    engine: Engine,
    s3: Any,
    settings: Settings,
    appeal_id: str,
    *,
    today: date,
    at: datetime,
    run: int,
    notice_seq: int,
    human_review_days: int,
    review_task: ReviewTaskPlan,
    notices: Notices,
    force_review: bool = False,
    before_each_file: Callable[[], None] | None = None,
) -> Checked:
    """Verifies every file not verified yet (the database, not the signals, says which), tells
    the customer about refused ones, and once nothing is missing runs the checks and routes the
    appeal in one transaction: AUTO_APPROVED, AUTO_DECLINED (with the decline notice), or
    PENDING_REVIEW with its first review task. Still missing: stays AWAITING_DOCUMENTS.
    `before_each_file` is called before each file is verified (the activity's heartbeat)."""
    verified: set[str] = set()
    while True:
        with session_scope(engine, read_only=True) as session:
            pending = _to_verify(session, appeal_id)
        for document_id in pending:
            if before_each_file is not None:
                before_each_file()
            settle_document(engine, s3, settings, appeal_id=appeal_id, document_id=document_id, today=today)
            verified.add(document_id)
        if _assesses(engine, appeal_id):
            # The files kept since an earlier check are read again before they are assessed: a
            # copy that no longer matches its SHA-256 becomes a red flag (and an audit event).
            recheck_kept_documents(
                engine, s3, settings, appeal_id, at=at, actor=SYSTEM, skip=frozenset(verified)
            )
        with session_scope(engine) as session:
            appeal = _lock(session, appeal_id)
            if appeal.status == S.AWAITING_DOCUMENTS and _to_verify(session, appeal_id):
                continue  # a file came in after the list was read: verify it first
            deliver = _refusal_notices(session, appeal, notices)
            missing = missing_types(session, appeal_id)
            if appeal.status == S.AWAITING_DOCUMENTS and missing:
                return Checked(S.AWAITING_DOCUMENTS, deliver, missing=missing)
            if appeal.status == S.AWAITING_DOCUMENTS:
                _move(session, appeal, S.CHECKING, at)
            assessment = run_assessment(
                session, appeal_id, run, notices.policy, today, challenger=notices.challenger
            )
            result = _route(
                session,
                appeal,
                assessment,
                at,
                review_task,
                notice_seq,
                human_review_days,
                notices,
                force_review,
            )
            result.to_deliver = deliver + result.to_deliver
            return result


def _assesses(engine: Engine, appeal_id: str) -> bool:
    """Whether check_documents is about to assess (its transaction decides for good)."""
    with session_scope(engine, read_only=True) as session:
        appeal = get_appeal(session, appeal_id)
        return appeal.status != S.AWAITING_DOCUMENTS or not missing_types(session, appeal_id)


def _route(
    session: Session,
    appeal: Appeal,
    assessment: Assessment,
    at: datetime,
    review_task: ReviewTaskPlan,
    notice_seq: int,
    human_review_days: int,
    notices: Notices,
    force_review: bool,
) -> Checked:
    checked = Checked(
        S(appeal.status),
        assessment_id=assessment.id,
        recommendation=Recommendation(assessment.recommendation),
        suggested_limit_minor=assessment.suggested_limit_minor,
        risk_tier=assessment.risk_tier,
        reasons=list(assessment.reasons),
    )
    details = {"assessment_id": assessment.id}
    if force_review:
        _to_review(session, appeal, checked, review_task, assessment.risk_tier, at)
    elif checked.recommendation is Recommendation.AUTO_APPROVE:
        if appeal.status == S.CHECKING:
            _move(
                session,
                appeal,
                S.AUTO_APPROVED,
                at,
                actor=SYSTEM,
                details=details,
                fields={"decided_limit_minor": assessment.suggested_limit_minor},
            )
    elif checked.recommendation is Recommendation.AUTO_DECLINE:
        if appeal.status == S.CHECKING:
            _move(
                session,
                appeal,
                S.AUTO_DECLINED,
                at,
                actor=SYSTEM,
                reason="; ".join(reason["code"] for reason in assessment.reasons) or None,
                details={**details, "score": assessment.score},
            )
        checked.to_deliver = _notify(
            session,
            appeal,
            notices,
            "declined",
            notice_seq,
            {
                "reasons": list(assessment.reasons),
                "automated": True,
                "score": assessment.score,
                "score_min": assessment.result.get("score_min"),
                "score_max": assessment.result.get("score_max"),
                "human_review_days": human_review_days,
                "decided_on": at.date().isoformat(),
                "cooldown_days": notices.policy.policy.appeals.decline_cooldown_days,
            },
        )
    else:
        _to_review(session, appeal, checked, review_task, assessment.risk_tier, at)
    checked.status = S(appeal.status)
    return checked


def _to_review(
    session: Session, appeal: Appeal, checked: Checked, plan: ReviewTaskPlan, tier: str | None, at: datetime
) -> None:
    task = _open_task(session, appeal, plan, Stage.FIRST, tier, at, excluded=None)
    checked.task_id, checked.task_due_at = task.id, task.due_at
    checked.task_assignee, checked.task_version = task.assignee, task.version


def _open_task(
    session: Session,
    appeal: Appeal,
    plan: ReviewTaskPlan,
    stage: Stage,
    risk_tier: str | None,
    at: datetime,
    *,
    excluded: str | None,
) -> ReviewTask:
    """The review task (idempotent per appeal, round and stage) and the appeal's status with
    it: pending, or in review when handed straight back to the reviewer who asked for more."""
    task = create_task(
        session,
        NewTask(
            task_id=plan.task_id,
            appeal_id=appeal.id,
            round=plan.round,
            stage=stage,
            due_at=plan.due_at,
            required_role=stage.required_role,
            excluded_reviewer=excluded,
            preferred_assignee=plan.preferred_assignee,
            risk_tier=risk_tier,
        ),
    )
    if TaskStatus(task.status) not in (TaskStatus.OPEN, TaskStatus.CLAIMED):
        return task  # a retry after the task was already decided
    if appeal.status not in (stage.pending_status, stage.in_review_status):
        _move(session, appeal, stage.pending_status, at, details={"task_id": task.id, "stage": int(stage)})
    follow_task(session, task, actor=WORKFLOW, at=at)
    return task


# -- after an automatic decline ---------------------------------------------------------------


def start_human_review(
    session: Session,
    appeal_id: str,
    *,
    at: datetime,
    notice_seq: int,
    review_task: ReviewTaskPlan,
    requested_by: str,
    notices: Notices,
) -> Checked:
    """AUTO_DECLINED -> PENDING_REVIEW: a person will look at the case (the notice says so)."""
    appeal = _lock(session, appeal_id)
    assessment = latest_assessment(session, appeal_id)
    tier = assessment.risk_tier if assessment else None
    if appeal.status == S.AUTO_DECLINED:
        _move(session, appeal, S.PENDING_REVIEW, at, actor=requested_by, details={"human_review": True})
    checked = Checked(S(appeal.status), risk_tier=tier)
    _to_review(session, appeal, checked, review_task, tier, at)
    checked.to_deliver = _notify(session, appeal, notices, "human_review_requested", notice_seq, {})
    checked.status = S(appeal.status)
    return checked


def close_after_decline(session: Session, appeal_id: str, *, at: datetime) -> StepResult:
    """The window for a human review closed unused: the automatic decline stands."""
    appeal = _lock(session, appeal_id)
    if appeal.status == S.AUTO_DECLINED:
        _move(session, appeal, S.CLOSED, at)
    return StepResult(S(appeal.status))


# -- reviewers' decisions ---------------------------------------------------------------------


@dataclass(frozen=True)
class ReviewerDecision:
    task_id: str
    stage: Stage
    decided_by: str
    outcome: Outcome
    approved_limit_minor: int | None
    reasons: list[str]
    requested_documents: list[str]
    note: str
    idempotency_key: str


@dataclass(frozen=True)
class FourEyesRule:
    min_amount_minor: int
    risk_tiers: list[str]


@dataclass
class Decided(StepResult):
    missing: list[str] = field(default_factory=list)  # a request for information
    second_task_id: str | None = None
    second_task_due_at: datetime | None = None
    second_task_version: int = 0


def decide(
    session: Session,
    appeal_id: str,
    decision: ReviewerDecision,
    *,
    at: datetime,
    notice_seq: int,
    four_eyes: FourEyesRule,
    second_task: ReviewTaskPlan,
    notices: Notices,
) -> Decided:
    """Records a reviewer's decision and what it leads to, in one transaction:
    a decline closes the appeal with its notice; a request for information reopens document
    collection with its notice; an approval that needs four eyes opens the second review;
    any other approval is APPROVED or PARTIALLY_APPROVED (the limit is applied next)."""
    appeal = _lock(session, appeal_id)
    record_decision(
        session,
        NewDecision(
            appeal_id=appeal_id,
            task_id=decision.task_id,
            decided_by=decision.decided_by,
            outcome=DecisionOutcome(decision.outcome.value),
            approved_limit_minor=decision.approved_limit_minor,
            reasons=decision.reasons or decision.requested_documents,
            note=decision.note,
            idempotency_key=decision.idempotency_key,
            stage=int(decision.stage),
        ),
    )
    actor = f"reviewer:{decision.decided_by}"
    details: dict[str, Any] = {
        "task_id": decision.task_id,
        "stage": int(decision.stage),
        "outcome": decision.outcome.value,
        "approved_limit_minor": decision.approved_limit_minor,
        "requested_documents": decision.requested_documents,
    }
    reason = "; ".join(decision.reasons) or None
    in_review = decision.stage.in_review_status
    if decision.outcome is Outcome.DECLINE:
        if appeal.status == in_review:
            _move(session, appeal, S.DECLINED, at, actor=actor, reason=reason, details=details)
        deliver = _notify(
            session,
            appeal,
            notices,
            "declined",
            notice_seq,
            {
                "reason_codes": decision.reasons,
                "automated": False,
                "score": None,
                "human_review_days": 0,
                "decided_on": at.date().isoformat(),
                "cooldown_days": notices.policy.policy.appeals.decline_cooldown_days,
            },
        )
        if appeal.status == S.DECLINED:
            _move(session, appeal, S.CLOSED, at)
        return Decided(S(appeal.status), deliver)
    if decision.outcome is Outcome.REQUEST_INFO:
        if appeal.status == in_review:
            _move(session, appeal, S.INFO_REQUESTED, at, actor=actor, reason=reason, details=details)
            missing = request_items(session, appeal_id, decision.requested_documents)
            _move(session, appeal, S.AWAITING_DOCUMENTS, at, details={"requested": missing})
        missing = missing_types(session, appeal_id)
        deliver = _notify(
            session,
            appeal,
            notices,
            "information_requested",
            notice_seq,
            {"missing": missing, "message": decision.note},
        )
        return Decided(S(appeal.status), deliver, missing=missing)
    assert decision.approved_limit_minor is not None
    fields = {"decided_limit_minor": decision.approved_limit_minor}
    if decision.stage is Stage.FIRST and needs_four_eyes(
        decision.approved_limit_minor,
        _risk_tier(session, appeal_id),
        four_eyes.min_amount_minor,
        four_eyes.risk_tiers,
    ):
        if appeal.status == in_review:
            _move(session, appeal, S.PENDING_SECOND_REVIEW, at, actor=actor, reason=reason, details=details)
        task = _open_task(
            session,
            appeal,
            second_task,
            Stage.SECOND,
            _risk_tier(session, appeal_id),
            at,
            excluded=decision.decided_by,
        )
        # What this step did, not where the appeal stands now: a retry after a senior reviewer
        # claimed the second task finds IN_SECOND_REVIEW, and the workflow must still hear
        # "second review", never an approval to apply.
        return Decided(
            S.PENDING_SECOND_REVIEW,
            second_task_id=task.id,
            second_task_due_at=task.due_at,
            second_task_version=task.version,
        )
    status = outcome_status(decision.outcome, decision.approved_limit_minor, appeal.requested_limit_minor)
    if appeal.status == in_review:
        _move(session, appeal, status, at, actor=actor, reason=reason, details=details, fields=fields)
    return Decided(S(appeal.status))


def _risk_tier(session: Session, appeal_id: str) -> str | None:
    assessment = latest_assessment(session, appeal_id)
    return assessment.risk_tier if assessment else None


# -- the limit, withdrawal, expiry ------------------------------------------------------------


def apply_limit_and_close(
    session: Session,
    appeal_id: str,
    *,
    new_limit_minor: int,
    at: datetime,
    notice_seq: int,
    source: str,
    reasons: list[dict[str, Any]],
    notices: Notices,
) -> StepResult:
    """Applies the decided limit to the ledger once (keyed by the appeal), then LIMIT_APPLIED
    -> CLOSED with the customer's notice."""
    appeal = _lock(session, appeal_id)
    apply_restore(
        session,
        appeal_id=appeal.id,
        account_id=appeal.account_id,
        new_limit_minor=new_limit_minor,
        source=source,
    )
    if appeal.status in (S.AUTO_APPROVED, S.APPROVED, S.PARTIALLY_APPROVED, S.LIMIT_APPLY_FAILED):
        _move(session, appeal, S.LIMIT_APPLIED, at, details={"new_limit_minor": new_limit_minor})
    partial = new_limit_minor < appeal.requested_limit_minor
    deliver = _notify(
        session,
        appeal,
        notices,
        "limit_restored",
        notice_seq,
        {
            "new_limit_minor": new_limit_minor,
            "partial": partial,
            # Why not the full amount: the principal reasons of the latest assessment.
            "partial_reasons": reasons if partial else None,
        },
    )
    if appeal.status == S.LIMIT_APPLIED:
        _move(session, appeal, S.CLOSED, at)
    return StepResult(S(appeal.status), deliver)


def record_limit_refusal(
    session: Session, appeal_id: str, *, at: datetime, refusal: str, details: dict[str, Any]
) -> StepResult:
    """The credit-line API refused the decided limit: the appeal stays open, visibly, for an
    operator (never a silent success)."""
    appeal = _lock(session, appeal_id)
    if appeal.status in (S.AUTO_APPROVED, S.APPROVED, S.PARTIALLY_APPROVED):
        _move(session, appeal, S.LIMIT_APPLY_FAILED, at, reason=refusal[:500], details=details)
    return StepResult(S(appeal.status))


def withdraw(
    session: Session,
    appeal_id: str,
    *,
    at: datetime,
    notice_seq: int,
    requested_by: str,
    reason: str,
    notices: Notices,
) -> StepResult:
    """Any open review task is cancelled, the appeal is WITHDRAWN, and the customer told."""
    appeal = _lock(session, appeal_id)
    cancel_open_tasks(session, appeal_id)
    if appeal.status != S.WITHDRAWN:
        _move(session, appeal, S.WITHDRAWN, at, actor=requested_by, reason=reason or None)
    deliver = _notify(session, appeal, notices, "withdrawn", notice_seq, {})
    return StepResult(S(appeal.status), deliver)


def expire(
    session: Session, appeal_id: str, *, at: datetime, notice_seq: int, notices: Notices
) -> StepResult:
    """The document deadline passed with items still missing."""
    appeal = _lock(session, appeal_id)
    if appeal.status == S.AWAITING_DOCUMENTS:
        _move(session, appeal, S.EXPIRED, at, reason="document_deadline_passed")
    deliver = _notify(session, appeal, notices, "expired", notice_seq, {})
    return StepResult(S(appeal.status), deliver)


def remind(
    session: Session, appeal_id: str, *, notice_seq: int, days_left: int, notices: Notices
) -> StepResult:
    """A reminder of what is still missing before the deadline."""
    appeal = _lock(session, appeal_id)
    missing = missing_types(session, appeal_id)
    if appeal.status != S.AWAITING_DOCUMENTS or not missing:
        return StepResult(S(appeal.status))
    deliver = _notify(
        session,
        appeal,
        notices,
        "documents_reminder",
        notice_seq,
        {"missing": missing, "days_left": days_left},
    )
    return StepResult(S(appeal.status), deliver)
