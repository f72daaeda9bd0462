"""Customer endpoints: submit, read, list, withdraw. Documents: api/routers/documents.py."""

from __future__ import annotations

import functools
from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Body, Header, Query, Request, Response, status

from api import openapi_examples as ex
from api import services
from api.deps import ClockDep, CustomerDep, EngineDep, GatewayDep, PrincipalDep, ReadsDep
from api.model_response import model_response
from api.openapi import AUTHENTICATED, WITH_ROLE, problems
from api.schemas.appeals import (
    AppealCreate,
    AppealDetail,
    AppealPage,
    AppealSummary,
    WithdrawBody,
)
from core.appeals.service import NewAppeal, list_appeals
from core.auth import Role
from core.db import session_scope
from core.status import AppealStatus

router = APIRouter(prefix="/appeals", tags=["appeals"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=200,
        description="Any unique string (a UUID): a retry with the same key returns the appeal the "
        "first request created (200) instead of creating another.",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=AppealDetail,
    summary="Submit an appeal to restore a frozen or reduced limit",
    responses={
        **ex.ok(201, "APPEAL_DETAIL", "Created; `Location` names it, `ETag` is its version."),
        200: {
            "description": "A retry with an `Idempotency-Key` used before: the appeal that request "
            "created, unchanged.",
            "model": AppealDetail,
        },
        **problems(
            *WITH_ROLE,
            "account_not_found",
            "open_appeal_exists",
            "decline_cooldown",
            "validation_failed",
            "requested_limit_above_original",
        ),
    },
)
async def submit_appeal(
    body: Annotated[AppealCreate, Body(openapi_examples=ex.APPEAL_CREATE)],
    principal: CustomerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    request: Request,
    response: Response,
    clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> AppealDetail:
    """The customer asks for the limit of one of their accounts to be restored, in full or in
    part (never above the original limit). One appeal per account may be open at a time.

    The appeal starts as SUBMITTED; its workflow checks eligibility (the overdue balance must be
    repaid, no recent decline), then asks for documents (AWAITING_DOCUMENTS; `checklist` says
    which). Follow it with `GET /appeals/{appeal_id}`."""
    appeal, created = await services.submit_appeal(
        engine,
        gateway,
        principal,
        NewAppeal(
            customer_id=principal.subject,
            account_id=body.account_id,
            requested_limit_minor=body.requested_limit_minor,
            customer_statement=body.statement,
            idempotency_key=idempotency_key,
        ),
        today=clock.today(),
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = str(request.url_for("get_appeal", appeal_id=appeal.id))
    detail = await to_thread.run_sync(services.appeal_detail, engine, appeal.id, principal.subject)
    response.headers["ETag"] = f'"{detail.version}"'
    return detail


@router.get(
    "",
    response_model=AppealPage,
    summary="List your appeals, newest first",
    responses=problems(*WITH_ROLE, "validation_failed", "invalid_cursor"),
)
def list_own_appeals(
    principal: CustomerDep,
    engine: EngineDep,
    status_filter: Annotated[AppealStatus | None, Query(alias="status")] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> AppealPage:
    with session_scope(engine, read_only=True) as session:
        rows, next_cursor = list_appeals(
            session, customer_id=principal.subject, status=status_filter, cursor=cursor, limit=limit
        )
        items = [AppealSummary.model_validate(row, from_attributes=True) for row in rows]
    return AppealPage(items=items, next_cursor=next_cursor)


@router.get(
    "/{appeal_id}",
    response_model=AppealDetail,
    name="get_appeal",
    summary="Read an appeal: status, checklist, timeline, decision",
    responses={
        **ex.ok(200, "APPEAL_DETAIL", "The appeal; `ETag` is its version."),
        **problems(*AUTHENTICATED, "appeal_not_found", "validation_failed"),
    },
)
async def get_appeal(
    appeal_id: str,
    principal: PrincipalDep,
    engine: EngineDep,
    reads: ReadsDep,
    accept_language: Annotated[str | None, Header(alias="Accept-Language", max_length=200)] = None,
) -> Response:
    """The case file as it stands: `status` (and `status_reason` once decided), the document
    `checklist` with each item's state, the `timeline` of everything that happened, the
    `decision`, and each notice's delivery per channel.

    Customers read their own appeals only (another's is 404, like one that does not exist);
    staff read any. Served from the database, so it is cheap to poll."""
    # Reviewers and admins read any appeal; a customer only their own (others are 404).
    owner = principal.subject if principal.role is Role.CUSTOMER else None
    detail = await reads.run(
        functools.partial(services.appeal_detail, engine, appeal_id, owner, accept_language=accept_language)
    )
    return model_response(detail, headers={"ETag": f'"{detail.version}"'})


@router.post(
    "/{appeal_id}/withdraw",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AppealSummary,
    summary="Withdraw an open appeal",
    responses={
        **ex.ok(202, "APPEAL_SUMMARY", "Accepted: the appeal as it was; it becomes WITHDRAWN shortly."),
        **problems(
            *WITH_ROLE,
            "appeal_not_found",
            "not_withdrawable",
            "appeal_closed",
            "validation_failed",
            "temporal_unavailable",
        ),
    },
)
async def withdraw_appeal(
    appeal_id: str,
    principal: CustomerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    body: Annotated[WithdrawBody | None, Body(openapi_examples=ex.WITHDRAW)] = None,
) -> AppealSummary:
    """The customer withdraws an appeal that is not decided yet; any open review task is
    cancelled. The answer is the appeal before the withdrawal took effect: the workflow moves it
    to WITHDRAWN a moment later (watch `GET /appeals/{appeal_id}`). A decided or closed appeal
    can no longer be withdrawn (409 `not_withdrawable`)."""
    appeal = await services.withdraw_appeal(
        engine, gateway, principal, appeal_id, body.reason if body else ""
    )
    return AppealSummary.model_validate(appeal, from_attributes=True)
