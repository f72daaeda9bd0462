"""The automated assessment of an appeal, and the customer's right to a human review."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field

from api import services
from api.deps import CustomerDep, EngineDep, GatewayDep, PrincipalDep
from api.openapi import AUTHENTICATED, WITH_ROLE, problems
from core.appeals.assessment import latest_assessment
from core.appeals.service import get_appeal
from core.auth import Principal, Role
from core.db import session_scope
from core.errors import NotFound
from core.status import AppealStatus

router = APIRouter(prefix="/appeals", tags=["assessment"])


class ReasonPublic(BaseModel):
    code: str
    en: str
    zh_cn: Annotated[str, Field(alias="zh-CN")]

    model_config = ConfigDict(populate_by_name=True)


class AssessmentPublic(BaseModel):
    """What a customer sees: the outcome and its reasons, not the input snapshot."""

    appeal_id: str
    run: int
    recommendation: str
    score: int | None
    risk_tier: str | None
    suggested_limit_minor: int
    reasons: list[ReasonPublic]
    policy_id: str
    policy_hash: str


class AssessmentDetail(AssessmentPublic):
    """For reviewers: the whole result, point by point, and the snapshot it was computed from."""

    four_eyes_required: bool
    route: str | None
    result: dict[str, Any]


def _load(engine: Any, appeal_id: str, principal: Principal) -> AssessmentPublic:
    owner = principal.subject if principal.role is Role.CUSTOMER else None
    with session_scope(engine, read_only=True) as session:
        get_appeal(session, appeal_id, customer_id=owner)
        row = latest_assessment(session, appeal_id)
        if row is None:
            raise NotFound("This appeal has not been assessed yet.", code="assessment_not_found")
        public = AssessmentPublic(
            appeal_id=appeal_id,
            run=row.run,
            recommendation=row.recommendation,
            score=row.score,
            risk_tier=row.risk_tier,
            suggested_limit_minor=row.suggested_limit_minor,
            reasons=[ReasonPublic.model_validate(r) for r in row.reasons],
            policy_id=row.rule_id,
            policy_hash=row.rule_hash,
        )
        if owner is not None:
            return public
        return AssessmentDetail(
            **public.model_dump(),
            four_eyes_required=row.four_eyes_required,
            route=row.route,
            result=row.result,
        )


@router.get(
    "/{appeal_id}/assessment",
    response_model=AssessmentDetail | AssessmentPublic,
    summary="The automated assessment: score, risk tier, reasons",
    responses=problems(*AUTHENTICATED, "appeal_not_found", "assessment_not_found"),
)
def get_assessment(appeal_id: str, principal: PrincipalDep, engine: EngineDep) -> AssessmentPublic:
    """The latest assessment of the appeal. Customers get the outcome and its principal reasons
    (in zh-CN and en); staff also get the point-by-point result and its input snapshot."""
    return _load(engine, appeal_id, principal)


class HumanReviewBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=1000)


class HumanReviewAccepted(BaseModel):
    appeal_id: str
    status: AppealStatus


@router.post(
    "/{appeal_id}/human-review",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=HumanReviewAccepted,
    summary="Ask for a person to review an automatic decline",
    responses=problems(
        *WITH_ROLE,
        "appeal_not_found",
        "human_review_not_available",
        "appeal_closed",
        "validation_failed",
        "temporal_unavailable",
    ),
)
async def request_human_review(
    appeal_id: str,
    principal: CustomerDep,
    engine: EngineDep,
    gateway: GatewayDep,
    body: HumanReviewBody | None = None,
) -> HumanReviewAccepted:
    """After an AUTO_DECLINED outcome, within the policy's window, the customer may ask once for
    a reviewer to look at the case; it goes to the review queue (PENDING_REVIEW)."""
    await services.request_human_review(engine, gateway, principal, appeal_id, body.reason if body else "")
    return HumanReviewAccepted(appeal_id=appeal_id, status=AppealStatus.AUTO_DECLINED)
