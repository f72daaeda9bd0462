"""Inputs and outputs of the appeal activities: IDs and small values only, never documents.

Every step input carries the workflow's time of the step (`at`, stamped on what the step
records) and, where the step tells the customer something, the notice's sequence number: with
the appeal id they are the step's idempotency key, so a retried activity records and sends
nothing twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from core.db.case_tables import Recommendation
from core.reviews.rules import Outcome, Stage
from core.status import AppealStatus


class StepInput(BaseModel):
    appeal_id: str
    at: datetime


class NoticeStepInput(StepInput):
    notice_seq: int


class StepResult(BaseModel):
    """The status the step left the appeal in."""

    status: AppealStatus


class OpenInput(NoticeStepInput):
    deadline_days: int


class Opened(StepResult):
    eligible: bool
    original_limit_minor: int
    missing: list[str] = Field(default_factory=list)
    uploads_waiting: int = 0  # files uploaded before the workflow asked (not verified yet)


class TaskPlan(BaseModel):
    """A review task the step opens if it routes the appeal to people (its id is chosen by the
    workflow, so a reviewer who sees it in the queue is never told it is not open)."""

    task_id: str
    due_at: datetime
    round: int
    preferred_assignee: str | None = None


class CheckInput(NoticeStepInput):
    run: int  # the assessment run: 1, then one more per request for information
    human_review_days: int
    review_task: TaskPlan
    # After a reviewer asked for more, the case goes back to people whatever the score says.
    force_review: bool = False


class Checked(StepResult):
    missing: list[str] = Field(default_factory=list)
    recommendation: Recommendation | None = None
    suggested_limit_minor: int | None = None
    risk_tier: str | None = None
    reasons: list[dict[str, Any]] = Field(default_factory=list)
    task_id: str | None = None
    task_due_at: datetime | None = None
    task_assignee: str | None = None
    task_version: int = 0


class HumanReviewInput(NoticeStepInput):
    review_task: TaskPlan
    requested_by: str


class DecideInput(NoticeStepInput):
    task_id: str
    stage: Stage
    decided_by: str
    outcome: Outcome
    approved_limit_minor: int | None
    reasons: list[str]
    requested_documents: list[str]
    note: str
    idempotency_key: str
    four_eyes_min_amount_minor: int
    four_eyes_risk_tiers: list[str]
    second_task: TaskPlan


class Decided(StepResult):
    missing: list[str] = Field(default_factory=list)
    second_task_id: str | None = None
    second_task_due_at: datetime | None = None
    second_task_version: int = 0


class ApplyLimitInput(NoticeStepInput):
    new_limit_minor: int
    reasons: list[dict[str, Any]] = Field(default_factory=list)  # why not the full amount


class LimitRefusalInput(StepInput):
    refusal: str
    details: dict[str, Any] = Field(default_factory=dict)


class WithdrawInput(NoticeStepInput):
    requested_by: str
    reason: str = ""


class RemindInput(StepInput):
    notice_seq: int
    days_left: int


class SlaEventInput(BaseModel):
    appeal_id: str
    task_id: str
    kind: str  # "warning" or "breach"
