"""Reviewer endpoints: the review queue and decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query

from api import services
from api.deps import EngineDep, GatewayDep, ReviewerDep
from api.schemas.review_tasks import (
    DecisionBody,
    DecisionResponse,
    ReviewTaskPage,
    ReviewTaskPublic,
)
from core.db import session_scope
from core.db.case_tables import TaskStatus
from core.reviews.service import list_tasks
from workflows.messages import ReviewDecision

router = APIRouter(prefix="/review-tasks", tags=["review"])


@router.get("", response_model=ReviewTaskPage)
def list_review_tasks(
    principal: ReviewerDep,
    engine: EngineDep,
    status: Annotated[TaskStatus | None, Query()] = TaskStatus.OPEN,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> ReviewTaskPage:
    with session_scope(engine, read_only=True) as session:
        rows, next_cursor = list_tasks(session, status=status, cursor=cursor, limit=limit)
        items = [ReviewTaskPublic.model_validate(row, from_attributes=True) for row in rows]
    return ReviewTaskPage(items=items, next_cursor=next_cursor)


@router.post("/{task_id}/decision", response_model=DecisionResponse)
async def decide(
    task_id: str,
    body: DecisionBody,
    principal: ReviewerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)] = None,
) -> DecisionResponse:
    appeal_id, accepted = await services.decide_task(
        engine,
        gateway,
        principal,
        task_id=task_id,
        decision=ReviewDecision(
            task_id=task_id,
            reviewer=principal.subject,
            outcome=body.outcome,
            approved_limit_minor=body.approved_limit_minor,
            reasons=[reason.strip() for reason in body.reasons if reason.strip()],
            note=body.note,
        ),
        idempotency_key=idempotency_key,
    )
    return DecisionResponse(
        appeal_id=appeal_id,
        task_id=task_id,
        status=accepted.status,
        approved_limit_minor=accepted.approved_limit_minor,
    )
