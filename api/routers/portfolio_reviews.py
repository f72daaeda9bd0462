"""The portfolio review's runs (docs/lender-loop.md, "Portfolio review"), for supervisors and
admins: the last runs with their outcome counts and durations, newest first."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Final

from anyio import to_thread
from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from api.deps import EngineDep, require_role
from api.openapi import WITH_ROLE, problems
from core import staff
from core.auth import Principal, Role
from core.db import session_scope
from core.lender.review import recent_runs

router = APIRouter(prefix="/admin/portfolio-reviews", tags=["portfolio review"])
SupervisingDep = Annotated[Principal, Depends(require_role(Role.SUPERVISOR, Role.ADMIN))]
_STAFF: Final = ("staff_inactive", "staff_role_not_held")


class ReviewRunPublic(BaseModel):
    run_date: date
    workflow_id: str
    started_at: datetime
    finished_at: datetime
    duration_seconds: float
    policy_id: str
    # examined, restored, invited, nothing, already_decided, restored_minor, by_reason
    counts: dict[str, Any]


class ReviewRunPage(BaseModel):
    items: list[ReviewRunPublic]


def _runs(engine: Engine, caller: Principal, limit: int) -> ReviewRunPage:
    with session_scope(engine, read_only=True) as session:
        staff.acting_principal(session, caller)
        return ReviewRunPage(
            items=[
                ReviewRunPublic(
                    run_date=run.run_date,
                    workflow_id=run.workflow_id,
                    started_at=run.started_at,
                    finished_at=run.finished_at,
                    duration_seconds=run.duration_seconds,
                    policy_id=run.policy_id,
                    counts=run.counts,
                )
                for run in recent_runs(session, limit)
            ]
        )


@router.get(
    "",
    response_model=ReviewRunPage,
    summary="The last portfolio review runs",
    responses=problems(*WITH_ROLE, *_STAFF, "validation_failed"),
)
async def list_review_runs(
    caller: SupervisingDep,
    engine: EngineDep,
    limit: Annotated[int, Query(ge=1, le=100, description="How many runs, newest first.")] = 20,
) -> ReviewRunPage:
    """The last runs of the nightly portfolio review (and backfills), newest first: the date each
    reviewed, its workflow, when it ran and for how long, and its counts per outcome and reason."""
    return await to_thread.run_sync(_runs, engine, caller, limit)
