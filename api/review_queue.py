"""Use cases of the review queue: the database decides claims (no two reviewers ever get the
same task); the workflow is told afterwards and follows (status, search attribute)."""

from __future__ import annotations

import logging
import uuid
from typing import Any

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import select

from api import services
from api.document_uploads import list_documents
from api.schemas.review_tasks import (
    AllowedAction,
    DecisionBody,
    ReviewTaskDetail,
    ReviewTaskPublic,
)
from api.temporal_gateway import TemporalGateway
from core.appeals.assessment import latest_assessment
from core.auth import Principal, Role
from core.db import session_scope
from core.db.case_tables import Decision, ReviewTask, TaskStatus
from core.errors import InvalidInput, PreconditionFailed
from core.policy.loader import load_default_policy
from core.reviews import queue
from core.reviews.service import get_task
from core.settings import Settings
from workflows.messages import DecisionAccepted, ReviewClaim, ReviewDecision, ReviewOutcome

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
    await gateway.review_claim_changed(f"appeal-{task.appeal_id}", claim)


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
    role: Role,
    if_match: int | None,
) -> ReviewTask:
    def _reassign() -> ReviewTask:
        with session_scope(engine) as session:
            return queue.reassign(session, task_id, principal, to=to, to_role=role, if_match=if_match)

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

    def _load() -> str:
        with session_scope(engine, read_only=True) as session:
            task = get_task(session, task_id)
            answered = session.exec(
                select(Decision.id).where(
                    Decision.appeal_id == task.appeal_id, Decision.idempotency_key == update_id
                )
            ).first()
            # A retried request is answered as the first was, even though the task moved on.
            if answered is None and if_match is not None and if_match != task.version:
                raise PreconditionFailed(
                    f"The task changed (version {task.version}, you had {if_match}); reload it.",
                    code="stale_version",
                    current_version=task.version,
                )
            return task.appeal_id

    appeal_id = await to_thread.run_sync(_load)
    _check_reason_codes(body)
    decision = ReviewDecision(
        task_id=task_id,
        reviewer=principal.subject,
        outcome=body.outcome,
        approved_limit_minor=body.approved_limit_minor,
        reasons=[reason.strip() for reason in body.reasons if reason.strip()],
        requested_documents=[d.value for d in body.requested_documents],
        note=body.note,
    )
    accepted = await gateway.decide(f"appeal-{appeal_id}", decision, update_id=update_id)
    return appeal_id, accepted


def _allowed_actions(task: ReviewTask, principal: Principal) -> dict[str, AllowedAction]:
    claim_reason = queue.why_not_claimable(task, principal)
    holds = task.status == TaskStatus.CLAIMED and task.assignee == principal.subject
    supervisor = principal.role in (Role.SUPERVISOR, Role.ADMIN)
    not_holder = (
        "you do not hold the claim on this task"
        if task.status == TaskStatus.CLAIMED
        else (
            f"the task is {task.status.value}; claim it first"
            if task.status == TaskStatus.OPEN
            else f"the task is {task.status.value}"
        )
    )
    decide_reason = None if holds else not_holder
    return {
        "claim": AllowedAction(allowed=claim_reason is None, reason=claim_reason),
        "release": AllowedAction(
            allowed=holds or (supervisor and task.status == TaskStatus.CLAIMED),
            reason=None if holds else not_holder,
        ),
        "reassign": AllowedAction(
            allowed=supervisor and task.status in (TaskStatus.OPEN, TaskStatus.CLAIMED),
            reason=None if supervisor else "only supervisors reassign tasks",
        ),
        "approve": AllowedAction(allowed=holds, reason=decide_reason),
        "decline": AllowedAction(allowed=holds, reason=decide_reason),
        "request_info": AllowedAction(
            allowed=holds and task.stage == 1,
            reason=decide_reason
            or ("the second review approves or declines only" if task.stage == 2 else None),
        ),
    }


def task_detail(
    engine: Engine, s3: Any, settings: Settings, principal: Principal, task_id: str
) -> ReviewTaskDetail:
    with session_scope(engine, read_only=True) as session:
        task = get_task(session, task_id)
        assessment = latest_assessment(session, task.appeal_id)
    return ReviewTaskDetail(
        task=public(task),
        appeal=services.appeal_detail(engine, task.appeal_id, None),
        assessment=assessment.result if assessment else None,
        documents=list_documents(engine, s3, settings, principal, task.appeal_id).items,
        allowed_actions=_allowed_actions(task, principal),
    )
