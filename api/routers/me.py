"""The customer's own notifications (in-app channel): about their appeals, and about their
accounts (a limit frozen or reduced by a limit action, restored by the portfolio review)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel

from api.deps import CustomerDep, EngineDep
from api.openapi import WITH_ROLE, problems
from core.db import session_scope
from core.notifications.account_notices import list_account_notices
from core.notifications.service import list_for_customer

router = APIRouter(prefix="/me", tags=["me"])


class NotificationPublic(BaseModel):
    id: int
    appeal_id: str
    event: str
    locale: str
    subject: str
    body: str
    created_at: datetime


@router.get(
    "/notifications",
    response_model=list[NotificationPublic],
    summary="Your in-app notices, newest first",
    responses=problems(*WITH_ROLE),
)
def my_notifications(principal: CustomerDep, engine: EngineDep) -> list[NotificationPublic]:
    with session_scope(engine, read_only=True) as session:
        rows = list_for_customer(session, principal.subject)
        return [NotificationPublic.model_validate(row, from_attributes=True) for row in rows]


class AccountNoticePublic(BaseModel):
    id: int
    account_id: str
    event: str
    locale: str
    subject: str
    body: str
    created_at: datetime


@router.get(
    "/account-notices",
    response_model=list[AccountNoticePublic],
    summary="Your in-app notices about your accounts (limit frozen, reduced, restored), newest first",
    responses=problems(*WITH_ROLE),
)
def my_account_notices(principal: CustomerDep, engine: EngineDep) -> list[AccountNoticePublic]:
    with session_scope(engine, read_only=True) as session:
        rows = list_account_notices(session, principal.subject)
        return [AccountNoticePublic.model_validate(row, from_attributes=True) for row in rows]
