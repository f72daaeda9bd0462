"""Customer endpoints: submit, read, list, withdraw. Documents: api/routers/documents.py."""

from __future__ import annotations

from typing import Annotated

from anyio import to_thread
from fastapi import APIRouter, Header, Query, Request, Response, status

from api import services
from api.deps import CustomerDep, EngineDep, GatewayDep, PrincipalDep
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

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


@router.post("", status_code=status.HTTP_201_CREATED, response_model=AppealDetail)
async def submit_appeal(
    body: AppealCreate,
    principal: CustomerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    request: Request,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> AppealDetail:
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
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    response.headers["Location"] = str(request.url_for("get_appeal", appeal_id=appeal.id))
    detail = await to_thread.run_sync(services.appeal_detail, engine, appeal.id, principal.subject)
    response.headers["ETag"] = f'"{detail.version}"'
    return detail


@router.get("", response_model=AppealPage)
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


@router.get("/{appeal_id}", response_model=AppealDetail, name="get_appeal")
def get_appeal(
    appeal_id: str,
    principal: PrincipalDep,
    engine: EngineDep,
    response: Response,
    accept_language: Annotated[str | None, Header(alias="Accept-Language", max_length=200)] = None,
) -> AppealDetail:
    # Reviewers and admins read any appeal; a customer only their own (others are 404).
    owner = principal.subject if principal.role is Role.CUSTOMER else None
    detail = services.appeal_detail(engine, appeal_id, owner, accept_language=accept_language)
    response.headers["ETag"] = f'"{detail.version}"'
    return detail


@router.post("/{appeal_id}/withdraw", status_code=status.HTTP_202_ACCEPTED, response_model=AppealSummary)
async def withdraw_appeal(
    appeal_id: str,
    principal: CustomerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    body: WithdrawBody | None = None,
) -> AppealSummary:
    appeal = await services.withdraw_appeal(
        engine, gateway, principal, appeal_id, body.reason if body else ""
    )
    return AppealSummary.model_validate(appeal, from_attributes=True)
