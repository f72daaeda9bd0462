"""Use cases of the review queue: the database decides claims (no two reviewers ever get the
same task); the workflow is told afterwards and follows (status, search attribute)."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from anyio import to_thread
from sqlalchemy.engine import Engine

from api import services
from api.document_uploads import list_documents
from api.schemas.review_tasks import (
    AllowedAction,
    DecisionBody,
    ReviewTaskDetail,
    ReviewTaskPublic,
)
from core import staff
from core.appeals.assessment import latest_assessment
from core.auth import Principal, Role
from core.db import session_scope
from core.db.case_tables import ReviewTask, TaskStatus
from core.db.staff_tables import StaffMember
from core.errors import Conflict, DomainError, Forbidden, InvalidInput, PreconditionFailed
from core.policy.loader import load_default_policy
from core.reviews import queue, rules
from core.reviews.rules import SLA_WARNING_FRACTION, Refusal, sla_warning_at
from core.reviews.service import (
    answered_decision,
    check_decision_key,
    decision_fingerprint,
    get_task,
    give_back_decision_key,
    take_decision_key,
)
from core.settings import Settings
from gateway.temporal import TemporalGateway
from workflows.messages import (
    DecisionAccepted,
    ReviewClaim,
    ReviewDecision,
    ReviewOutcome,
)

log = logging.getLogger(__name__)


def public(task: ReviewTask) -> ReviewTaskPublic:
    return ReviewTaskPublic.model_validate(task, from_attributes=True)


async def _tell_workflow(gateway: TemporalGateway, task: ReviewTask, actor: str) -> None:
    claim = ReviewClaim(
        task_id=task.id,
        reviewer=task.assignee if task.status == TaskStatus.CLAIMED else None,
        actor=actor,
        version=task.version,
    )
    await gateway.review_claim_changed(task.appeal_id, claim)


async def claim_next(engine: Engine, gateway: TemporalGateway, principal: Principal) -> ReviewTask | None:
    def _claim() -> ReviewTask | None:
        with session_scope(engine) as session:
            return queue.claim_next(session, principal)

    task = await to_thread.run_sync(_claim)
    if task is not None:
        await _tell_or_undo(engine, gateway, task, principal)
    return task


async def claim(
    engine: Engine, gateway: TemporalGateway, principal: Principal, task_id: str, if_match: int | None
) -> ReviewTask:
    def _claim() -> ReviewTask:
        with session_scope(engine) as session:
            return queue.claim(session, task_id, principal, if_match=if_match)

    task = await to_thread.run_sync(_claim)
    await _tell_or_undo(engine, gateway, task, principal)
    return task


async def _tell_or_undo(
    engine: Engine, gateway: TemporalGateway, task: ReviewTask, principal: Principal
) -> None:
    try:
        await _tell_workflow(gateway, task, principal.actor)
    except Exception:
        # The workflow must know who may decide; without it, give the task back to the queue.
        def _undo() -> None:
            with session_scope(engine) as session:
                queue.release(session, task.id, principal)

        await to_thread.run_sync(_undo)
        raise


async def release(
    engine: Engine, gateway: TemporalGateway, principal: Principal, task_id: str, if_match: int | None
) -> ReviewTask:
    def _release() -> ReviewTask:
        with session_scope(engine) as session:
            return queue.release(session, task_id, principal, if_match=if_match)

    task = await to_thread.run_sync(_release)
    await _tell_workflow(gateway, task, principal.actor)
    return task


async def reassign(
    engine: Engine,
    gateway: TemporalGateway,
    principal: Principal,
    task_id: str,
    *,
    to: str,
    if_match: int | None,
) -> ReviewTask:
    """Hands the task to `to`; their role is the staff directory's (core/staff.py)."""

    def _reassign() -> ReviewTask:
        with session_scope(engine) as session:
            return queue.reassign(session, task_id, principal, to=to, if_match=if_match)

    task = await to_thread.run_sync(_reassign)
    await _tell_workflow(gateway, task, principal.actor)
    return task


def _check_reason_codes(body: DecisionBody) -> None:
    if body.outcome is not ReviewOutcome.DECLINE:
        return
    known = set(load_default_policy().policy.reasons)
    unknown = [code for code in body.reasons if code not in known]
    if unknown:
        raise InvalidInput(
            f"Unknown reason codes {unknown}; use the policy's codes (e.g. {sorted(known)[:3]}).",
            code="unknown_reason_code",
        )


async def decide(
    engine: Engine,
    gateway: TemporalGateway,
    principal: Principal,
    task_id: str,
    body: DecisionBody,
    *,
    idempotency_key: str | None,
    if_match: int | None,
) -> tuple[str, DecisionAccepted]:
    update_id = idempotency_key or f"decision-{uuid.uuid4()}"
    role: Role = principal.role
    request_fingerprint = decision_fingerprint(principal.actor, task_id, body.model_dump(mode="json"))

    def _load() -> tuple[str, DecisionAccepted | None]:
        nonlocal role
        with session_scope(engine, read_only=True) as session:
            task = get_task(session, task_id)
            if idempotency_key is not None:  # 422 for a key another request used
                check_decision_key(session, task.appeal_id, idempotency_key, request_fingerprint)
            answered = answered_decision(session, task.appeal_id, update_id)
            # A retried request is answered as the first was, even though the task moved on
            # (and the appeal's workflow may have ended).
            if answered is not None:
                decision, status = answered
                return task.appeal_id, DecisionAccepted(
                    status=status, approved_limit_minor=decision.approved_limit_minor
                )
            if if_match is not None and if_match != task.version:
                raise PreconditionFailed(
                    f"The task changed (version {task.version}, you had {if_match}); reload it.",
                    code="stale_version",
                    current_version=task.version,
                )
            if TaskStatus(task.status) not in (TaskStatus.OPEN, TaskStatus.CLAIMED):
                raise Conflict(
                    f"Review task {task_id} is {task.status.value}: it was decided or cancelled.",
                    code="decision_rejected",
                )
            # The decider's role now, as the staff directory has it: holding the claim is not
            # enough (the workflow's validator checks the same role again).
            role = staff.acting_principal(session, principal).role
            not_role = rules.why_not_role(task.required_role, role.value)
            if not_role is not None:
                raise Forbidden(
                    f"You act as {role.value}, and {not_role}: the decision was not recorded.",
                    code="role_not_sufficient",
                )
            return task.appeal_id, None

    appeal_id, replayed = await to_thread.run_sync(_load)
    if replayed is not None:
        return appeal_id, replayed
    _check_reason_codes(body)
    decision = ReviewDecision(
        task_id=task_id,
        reviewer=principal.subject,
        outcome=body.outcome,
        approved_limit_minor=body.approved_limit_minor,
        reasons=[reason.strip() for reason in body.reasons if reason.strip()],
        requested_documents=[d.value for d in body.requested_documents],
        note=body.note,
        role=role.value,
    )
    if idempotency_key is not None:
        await to_thread.run_sync(take_decision_key, engine, appeal_id, idempotency_key, request_fingerprint)
    try:
        accepted = await gateway.decide(appeal_id, decision, update_id=update_id)
    except DomainError as exc:
        if idempotency_key is not None and exc.status_code < 500:  # refused: nothing recorded
            await to_thread.run_sync(
                give_back_decision_key, engine, appeal_id, idempotency_key, request_fingerprint
            )
        raise
    return appeal_id, accepted


@dataclass(frozen=True)
class Permission:
    allowed: bool
    reason: Refusal | None = None  # why not, when it is not allowed (English; `.zh` in Chinese)


def _permission(refusal: Refusal | None) -> Permission:
    return Permission(allowed=refusal is None, reason=refusal)


def allowed_actions(
    task: ReviewTask, principal: Principal, entry: StaffMember | None = None
) -> dict[str, Permission]:
    """What this person may do with this task now, and why not: the one rule the JSON case
    file (`allowed_actions`) and the reviewer console's buttons both show, made of the same
    checks the use cases make (core/reviews/queue.py, the decision's role check), with the
    caller's staff directory `entry` as they read it."""
    me = staff.acting(principal, entry)
    if me.refusal is not None:
        refused = _permission(me.refusal)
        return dict.fromkeys(ACTIONS, refused)
    status = TaskStatus(task.status)
    not_deciding: Refusal | None
    if status in (TaskStatus.OPEN, TaskStatus.CLAIMED):
        not_deciding = rules.why_not_deciding(
            claimed=status == TaskStatus.CLAIMED, claimant=task.assignee, decider=principal.subject
        ) or rules.why_not_role(task.required_role, principal.role.value)
    else:
        not_deciding = queue.task_in_state(status)
    return {
        "claim": _permission(queue.why_not_claimable(task, principal)),
        "release": _permission(queue.why_not_releasable(task, principal)),
        "reassign": _permission(queue.why_not_reassigning(task, principal)),
        "approve": _permission(not_deciding),
        "decline": _permission(not_deciding),
        "request_info": _permission(
            not_deciding or rules.why_not_outcome(rules.Stage(task.stage), rules.Outcome.REQUEST_INFO)
        ),
    }


ACTIONS = ("claim", "release", "reassign", "approve", "decline", "request_info")


def sla_clock(task: ReviewTask, now: datetime) -> SlaClock:
    """Where a task stands against its review SLA, by the workflow's own warning rule."""
    remaining = task.due_at - now
    if task.status not in (TaskStatus.OPEN, TaskStatus.CLAIMED):
        return SlaClock(SlaState.CLOSED, task.due_at, remaining)
    if remaining <= timedelta(0):
        return SlaClock(SlaState.BREACHED, task.due_at, remaining)
    if now >= sla_warning_at(task.created_at, task.due_at, SLA_WARNING_FRACTION):
        return SlaClock(SlaState.WARNING, task.due_at, remaining)
    return SlaClock(SlaState.ON_TIME, task.due_at, remaining)


class SlaState(StrEnum):
    ON_TIME = "on_time"
    WARNING = "warning"  # past the point the workflow warns the assignee
    BREACHED = "breached"  # past due: the workflow escalates
    CLOSED = "closed"  # completed or cancelled: no clock


@dataclass(frozen=True)
class SlaClock:
    state: SlaState
    due_at: datetime
    remaining: timedelta  # negative once past due


def task_detail(
    engine: Engine, s3: Any, settings: Settings, principal: Principal, task_id: str
) -> ReviewTaskDetail:
    with session_scope(engine, read_only=True) as session:
        task = get_task(session, task_id)
        entry = session.get(StaffMember, principal.subject)
        assessment = latest_assessment(session, task.appeal_id)
    return ReviewTaskDetail(
        task=public(task),
        appeal=services.appeal_detail(engine, task.appeal_id, None),
        assessment=assessment.result if assessment else None,
        documents=list_documents(engine, s3, settings, principal, task.appeal_id).items,
        allowed_actions={
            name: AllowedAction(allowed=permission.allowed, reason=permission.reason)
            for name, permission in allowed_actions(task, principal, entry).items()
        },
    )
