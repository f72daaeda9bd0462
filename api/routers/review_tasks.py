"""Reviewer endpoints: the review queue, claims, the case file, decisions."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Response, status

from api import review_queue
from api.deps import EngineDep, GatewayDep, ReviewerDep, S3Dep, SettingsDep
from api.schemas.review_tasks import (
    DecisionBody,
    DecisionResponse,
    ReassignBody,
    ReviewTaskDetail,
    ReviewTaskPage,
    ReviewTaskPublic,
)
from core.db import session_scope
from core.db.case_tables import TaskStatus
from core.errors import InvalidInput
from core.reviews.queue import TaskFilter, TaskSort, default_status, list_tasks

router = APIRouter(prefix="/review-tasks", tags=["review"])

IfMatch = Annotated[str | None, Header(alias="If-Match", description='The task\'s ETag, e.g. "3".')]
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def _version(if_match: str | None) -> int | None:
    if if_match is None or if_match.strip() == "*":
        return None
    try:
        return int(if_match.strip().removeprefix("W/").strip('"'))
    except ValueError as exc:
        raise InvalidInput(
            'If-Match must be an ETag from this API, e.g. "3".', code="invalid_if_match"
        ) from exc


def _etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


@router.get("", response_model=ReviewTaskPage, summary="List review tasks (the queue, or someone's tasks)")
def list_review_tasks(
    principal: ReviewerDep,
    engine: EngineDep,
    status_filter: Annotated[
        TaskStatus | None,
        Query(
            alias="status",
            description="Only tasks in this state. Left out: `OPEN` (the queue to pick from), "
            "or `CLAIMED` when `assignee` is given (that person's work in hand).",
        ),
    ] = None,
    queue: Annotated[str | None, Query(max_length=40)] = None,
    assignee: Annotated[
        str | None,
        Query(
            max_length=100,
            description="Only tasks held by this staff id; `me` for your own. Without `status`, "
            "their CLAIMED tasks; add `status=COMPLETED` for the ones they finished.",
        ),
    ] = None,
    overdue: Annotated[bool | None, Query()] = None,
    risk_tier: Annotated[str | None, Query(max_length=20)] = None,
    sort: Annotated[TaskSort, Query()] = TaskSort.DUE,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> ReviewTaskPage:
    """The review queue, most urgent first (`sort`), 50 to a page with a keyset `cursor`.

    Without filters it is the queue of OPEN tasks. `assignee=me` lists the tasks you hold
    (CLAIMED); `status` overrides either default."""
    who = principal.subject if assignee == "me" else assignee
    task_filter = TaskFilter(
        status=status_filter or default_status(who),
        queue=queue,
        assignee=who,
        overdue=overdue,
        risk_tier=risk_tier,
    )
    with session_scope(engine, read_only=True) as session:
        rows, next_cursor, total = list_tasks(session, task_filter, sort=sort, cursor=cursor, limit=limit)
        items = [review_queue.public(row) for row in rows]
    return ReviewTaskPage(items=items, next_cursor=next_cursor, total=total)


@router.post(
    "/claim-next",
    response_model=ReviewTaskPublic,
    responses={204: {"description": "Nothing you may take is waiting."}},
)
async def claim_next(
    principal: ReviewerDep, engine: EngineDep, gateway: GatewayDep, response: Response
) -> Response | ReviewTaskPublic:
    task = await review_queue.claim_next(engine, gateway, principal)
    if task is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    _etag(response, task.version)
    return review_queue.public(task)


@router.get("/{task_id}", response_model=ReviewTaskDetail)
async def get_review_task(
    task_id: str,
    principal: ReviewerDep,
    engine: EngineDep,
    s3: S3Dep,
    settings: SettingsDep,
    response: Response,
) -> ReviewTaskDetail:
    detail = await to_thread.run_sync(review_queue.task_detail, engine, s3, settings, principal, task_id)
    _etag(response, detail.task.version)
    return detail


@router.post("/{task_id}/claim", response_model=ReviewTaskPublic)
async def claim(
    task_id: str,
    principal: ReviewerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReviewTaskPublic:
    task = await review_queue.claim(engine, gateway, principal, task_id, _version(if_match))
    _etag(response, task.version)
    return review_queue.public(task)


@router.post("/{task_id}/release", response_model=ReviewTaskPublic)
async def release(
    task_id: str,
    principal: ReviewerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReviewTaskPublic:
    task = await review_queue.release(engine, gateway, principal, task_id, _version(if_match))
    _etag(response, task.version)
    return review_queue.public(task)


@router.post("/{task_id}/reassign", response_model=ReviewTaskPublic)
async def reassign(
    task_id: str,
    body: ReassignBody,
    principal: ReviewerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReviewTaskPublic:
    task = await review_queue.reassign(
        engine, gateway, principal, task_id, to=body.to, role=body.role, if_match=_version(if_match)
    )
    _etag(response, task.version)
    return review_queue.public(task)


@router.post("/{task_id}/decision", response_model=DecisionResponse)
async def decide(
    task_id: str,
    body: DecisionBody,
    principal: ReviewerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> DecisionResponse:
    appeal_id, accepted = await review_queue.decide(
        engine,
        gateway,
        principal,
        task_id,
        body,
        idempotency_key=idempotency_key,
        if_match=_version(if_match),
    )
    return DecisionResponse(
        appeal_id=appeal_id,
        task_id=task_id,
        status=accepted.status,
        approved_limit_minor=accepted.approved_limit_minor,
    )
