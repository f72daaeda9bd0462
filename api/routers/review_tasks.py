"""Reviewer endpoints: the review queue, claims, the case file, decisions."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Body, Header, Query, Response, status

from api import openapi_examples as ex
from api import review_queue, services
from api.deps import EngineDep, GatewayDep, ReadsDep, ReviewerDep, S3Dep, SettingsDep
from api.model_response import model_response
from api.openapi import WITH_ROLE, problems
from api.schemas.review_tasks import (
    DecisionBody,
    DecisionResponse,
    ReassignBody,
    ReviewTaskDetail,
    ReviewTaskPage,
    ReviewTaskPublic,
)
from core.db import read_scope
from core.db.case_tables import TaskStatus
from core.errors import InvalidInput
from core.reviews.queue import TaskFilter, TaskSort, default_status, list_task_rows

router = APIRouter(prefix="/review-tasks", tags=["review"])

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The task\'s ETag, e.g. "3": refused with 412 if the task changed since '
        "(left out: no check).",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string: a retry with the same key gets the first answer "
        "instead of deciding twice.",
    ),
]

# A workflow that must follow a claim (status IN_REVIEW, the AppealReviewer attribute).
_TELLS_WORKFLOW = ("appeal_closed", "temporal_unavailable")
# A caller the staff directory refuses (core/staff.py): inactive, or without their token's role.
_STAFF = ("staff_inactive", "staff_role_not_held")


# The columns of a task that the queue page shows (ReviewTaskPublic, as review_queue.public).
_TASK_FIELDS = tuple(ReviewTaskPublic.model_fields)


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


@router.get(
    "",
    response_model=ReviewTaskPage,
    summary="List review tasks (the queue, or someone's tasks)",
    responses=problems(*WITH_ROLE, "validation_failed", "invalid_cursor"),
)
async def list_review_tasks(
    principal: ReviewerDep,
    engine: EngineDep,
    reads: ReadsDep,
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
) -> Response:
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

    def _page() -> ReviewTaskPage:
        with read_scope(engine) as connection:
            rows, next_cursor, total = list_task_rows(
                connection, task_filter, columns=_TASK_FIELDS, sort=sort, cursor=cursor, limit=limit
            )
        return ReviewTaskPage.model_validate(
            {"items": services.dicts(rows), "next_cursor": next_cursor, "total": total}
        )

    return model_response(await reads.run(_page))


@router.post(
    "/claim-next",
    response_model=ReviewTaskPublic,
    summary="Claim the most urgent task you may take",
    responses={
        **ex.ok(200, "REVIEW_TASK", "The task is yours (CLAIMED); `ETag` is its version."),
        204: {"description": "Nothing you may take is waiting."},
        **problems(*WITH_ROLE, *_STAFF, *_TELLS_WORKFLOW),
    },
)
async def claim_next(
    principal: ReviewerDep, engine: EngineDep, gateway: GatewayDep, response: Response
) -> Response | ReviewTaskPublic:
    """Takes the OPEN task with the highest priority, then the earliest due, among those your
    role may work (a senior review needs a senior reviewer or supervisor), skipping your own
    appeals and second reviews of cases you decided first. Two reviewers calling at once never
    get the same task. The appeal moves to IN_REVIEW."""
    task = await review_queue.claim_next(engine, gateway, principal)
    if task is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    _etag(response, task.version)
    return review_queue.public(task)


@router.get(
    "/{task_id}",
    response_model=ReviewTaskDetail,
    summary="The case file of a task: appeal, assessment, documents, what you may do",
    responses={
        **ex.ok(200, "TASK_DETAIL", "The case file; `ETag` is the task's version."),
        **problems(*WITH_ROLE, "task_not_found"),
    },
)
async def get_review_task(
    task_id: str,
    principal: ReviewerDep,
    engine: EngineDep,
    s3: S3Dep,
    settings: SettingsDep,
    response: Response,
) -> ReviewTaskDetail:
    """Everything a reviewer needs to decide: the appeal with its timeline and checklist, the
    full assessment, each document with a short-lived download link, and `allowed_actions`:
    for claim, release, reassign, approve, decline and request_info, whether you may, and if
    not, why."""
    detail = await to_thread.run_sync(review_queue.task_detail, engine, s3, settings, principal, task_id)
    _etag(response, detail.task.version)
    return detail


@router.post(
    "/{task_id}/claim",
    response_model=ReviewTaskPublic,
    summary="Claim a task",
    responses={
        **ex.ok(200, "REVIEW_TASK", "The task is yours (CLAIMED); `ETag` is its new version."),
        **problems(
            *WITH_ROLE,
            *_STAFF,
            "task_not_found",
            "task_not_claimable/403",
            "task_not_claimable/409",
            "stale_version",
            "invalid_if_match",
            *_TELLS_WORKFLOW,
        ),
    },
)
async def claim(
    task_id: str,
    principal: ReviewerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReviewTaskPublic:
    """Takes this OPEN task for yourself; the appeal moves to IN_REVIEW. Send the `ETag` of
    the task you looked at as `If-Match` to be sure nobody changed it meanwhile."""
    task = await review_queue.claim(engine, gateway, principal, task_id, _version(if_match))
    _etag(response, task.version)
    return review_queue.public(task)


@router.post(
    "/{task_id}/release",
    response_model=ReviewTaskPublic,
    summary="Give a claimed task back to the queue",
    responses=problems(
        *WITH_ROLE,
        *_STAFF,
        "task_not_found",
        "not_claim_holder/409",
        "stale_version",
        "invalid_if_match",
        *_TELLS_WORKFLOW,
    ),
)
async def release(
    task_id: str,
    principal: ReviewerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReviewTaskPublic:
    """The claim holder gives the task back to the queue (the appeal returns to pending);
    supervisors and admins may release anyone's claim."""
    task = await review_queue.release(engine, gateway, principal, task_id, _version(if_match))
    _etag(response, task.version)
    return review_queue.public(task)


@router.post(
    "/{task_id}/reassign",
    response_model=ReviewTaskPublic,
    summary="Hand a task to someone (supervisors)",
    responses=problems(
        *WITH_ROLE,
        *_STAFF,
        "task_not_found",
        "task_closed",
        "task_not_assignable",
        "unknown_staff_member",
        "staff_member_inactive",
        "stale_version",
        "invalid_if_match",
        "validation_failed",
        *_TELLS_WORKFLOW,
    ),
)
async def reassign(
    task_id: str,
    body: ReassignBody,
    principal: ReviewerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    response: Response,
    if_match: IfMatch = None,
) -> ReviewTaskPublic:
    """Supervisors and admins hand an open or claimed task to `to`, who then holds the claim.
    Whether they may take it is decided by the staff directory (`GET /admin/staff`): someone
    unknown (422) or inactive (409), or whose roles there do not satisfy the task's
    `required_role` (409 `task_not_assignable`: a second review needs a senior reviewer or
    supervisor), is refused. The body names no role."""
    task = await review_queue.reassign(
        engine, gateway, principal, task_id, to=body.to, if_match=_version(if_match)
    )
    _etag(response, task.version)
    return review_queue.public(task)


@router.post(
    "/{task_id}/decision",
    response_model=DecisionResponse,
    summary="Decide a claimed task: approve (in full or part), decline, or ask for documents",
    responses={
        **ex.ok(200, "DECISION_RESPONSE", "Recorded; `status` is where the appeal goes next."),
        **problems(
            *WITH_ROLE,
            *_STAFF,
            "role_not_sufficient",
            "not_claim_holder/403",
            "task_not_found",
            "appeal_not_running",
            "decision_rejected",
            "stale_version",
            "validation_failed",
            "invalid_if_match",
            "unknown_reason_code",
            "decision_invalid",
            "temporal_unavailable",
            "decision_timeout",
        ),
    },
)
async def decide(
    task_id: str,
    body: Annotated[DecisionBody, Body(openapi_examples=ex.DECISION)],
    principal: ReviewerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    idempotency_key: IdempotencyKey = None,
    if_match: IfMatch = None,
) -> DecisionResponse:
    """Only the reviewer holding the claim decides, and only with a role that may work the task
    as the staff directory has it now (a second review: a senior reviewer or supervisor; 403
    `role_not_sufficient` otherwise, whoever handed them the claim). APPROVE needs
    `approved_limit_minor` (at most the original limit; below the requested limit it is a
    partial approval), DECLINE at
    least one of the policy's reason codes, REQUEST_INFO the `requested_documents` (first review
    only). A large or high-risk approval goes to a second reviewer (four eyes): `status` is then
    PENDING_SECOND_REVIEW.

    The answer comes once the workflow has recorded the decision. Send an `Idempotency-Key`:
    a retry with the same key (after a timeout, say) gets the same answer and never decides
    twice."""
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
