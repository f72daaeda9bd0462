"""Who may do what with a review task, and when an approval needs four eyes: written once,
read by the workflow's decision validator, the JSON API's allowed actions and the console.

Pure functions of small values (no I/O), so deterministic workflow code may call them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from enum import IntEnum, StrEnum
from typing import Final

from core.status import AppealStatus

# The share of a review's time after which the assignee is warned (the SLA warning).
SLA_WARNING_FRACTION = 0.8


def sla_warning_at(
    created_at: datetime, due_at: datetime, fraction: float = SLA_WARNING_FRACTION
) -> datetime:
    """When a review's SLA warning is due: `fraction` of the way from the task's creation to
    its due time (the workflow's timer, the console's countdown and the dashboard agree)."""
    return created_at + (due_at - created_at) * fraction


def remaining_budget(review_due: timedelta, spent: timedelta) -> timedelta:
    """The SLA clock runs only while the appeal waits on reviewers, not on the customer."""
    return max(review_due - spent, timedelta(minutes=1))


class Stage(IntEnum):
    """Which review a task is: the first, or the second pair of eyes on an approval."""

    FIRST = 1
    SECOND = 2

    @property
    def pending_status(self) -> AppealStatus:
        return AppealStatus.PENDING_REVIEW if self is Stage.FIRST else AppealStatus.PENDING_SECOND_REVIEW

    @property
    def in_review_status(self) -> AppealStatus:
        return AppealStatus.IN_REVIEW if self is Stage.FIRST else AppealStatus.IN_SECOND_REVIEW

    @property
    def required_role(self) -> str:
        return "reviewer" if self is Stage.FIRST else "senior_reviewer"


class Outcome(StrEnum):
    """What a reviewer decides."""

    APPROVE = "APPROVE"
    REQUEST_INFO = "REQUEST_INFO"
    DECLINE = "DECLINE"


class Refusal(str):
    """Why something may not be done: the English text (the string itself, as the JSON API and
    error messages give it) and the same in Chinese (`zh`) for the web pages."""

    zh: str

    def __new__(cls, en: str, zh: str) -> Refusal:
        refusal = super().__new__(cls, en)
        refusal.zh = zh
        return refusal

    @property
    def en(self) -> str:
        return str.__str__(self)

    def text(self, locale: str) -> str:
        return self.zh if locale.lower().startswith("zh") else self.en


NOT_CLAIM_HOLDER = Refusal("you do not hold the claim on this task", "您未认领此任务")
CLAIM_FIRST = Refusal("the task is OPEN; claim it first", "任务尚未认领，请先认领")
SECOND_REVIEW_APPROVES_OR_DECLINES = Refusal(
    "the second review approves or declines only", "第二次审核只能批准或拒绝"
)
NOT_THE_FIRST_REVIEWER = Refusal(
    "the second review must be done by someone other than the first reviewer",
    "第二次审核须由第一次审核人以外的人员进行",
)

# Who may work a task that requires a role (ReviewTask.required_role, Stage.required_role):
# senior reviewers and supervisors can take any review; an admin takes none.
ROLES_FOR_TASK: Final[Mapping[str, frozenset[str]]] = {
    "reviewer": frozenset({"reviewer", "senior_reviewer", "supervisor"}),
    "senior_reviewer": frozenset({"senior_reviewer", "supervisor"}),
}


def role_satisfies(role: str | None, required_role: str) -> bool:
    """Whether someone acting with `role` may claim and decide a task that needs `required_role`."""
    return role is not None and role in ROLES_FOR_TASK.get(required_role, frozenset())


def why_not_role(required_role: str, role: str | None) -> Refusal | None:
    """The four-eyes rule's other half: a second review needs a senior reviewer or supervisor,
    whoever holds the claim (the role is the decider's own, from a trusted source)."""
    if role_satisfies(role, required_role):
        return None
    return Refusal(f"the task needs the {required_role} role", f"该任务需要 {required_role} 角色")


def needs_four_eyes(
    amount_minor: int, risk_tier: str | None, min_amount_minor: int, risk_tiers: Sequence[str]
) -> bool:
    """An approval at or above the amount, or for one of the risk tiers, needs a second,
    senior reviewer (the policy's `four_eyes` section)."""
    return amount_minor >= min_amount_minor or (risk_tier is not None and risk_tier in risk_tiers)


def why_not_deciding(*, claimed: bool, claimant: str | None, decider: str) -> Refusal | None:
    """Only the person holding the claim decides."""
    if not claimed:
        return CLAIM_FIRST
    if claimant != decider:
        return NOT_CLAIM_HOLDER
    return None


def why_not_outcome(stage: Stage, outcome: Outcome) -> Refusal | None:
    """What a stage may decide: the second review approves or declines."""
    if stage is Stage.SECOND and outcome is Outcome.REQUEST_INFO:
        return SECOND_REVIEW_APPROVES_OR_DECLINES
    return None


def decision_problem(
    outcome: Outcome,
    *,
    approved_limit_minor: int | None,
    reasons: Sequence[str],
    requested_documents: Sequence[str],
    original_limit_minor: int | None,
    requested_limit_minor: int | None = None,
) -> str | None:
    """What is wrong with a decision's content, or None. An approval gives at most what the
    customer asked for, and never more than the account's original limit."""
    if outcome is Outcome.APPROVE:
        if approved_limit_minor is None or approved_limit_minor <= 0:
            return "An approval needs a positive approved_limit_minor."
        if original_limit_minor is not None and approved_limit_minor > original_limit_minor:
            return (
                f"The approved limit {approved_limit_minor} is above the account's original limit "
                f"{original_limit_minor}."
            )
        if requested_limit_minor is not None and approved_limit_minor > requested_limit_minor:
            return (
                f"The approved limit {approved_limit_minor} is above the limit the customer asked "
                f"for, {requested_limit_minor}."
            )
        return None
    if outcome is Outcome.DECLINE:
        if not [reason for reason in reasons if reason.strip()]:
            return "A decline needs at least one reason."
        return None
    if not requested_documents:
        return "A request for information needs at least one document type."
    return None


def outcome_status(
    outcome: Outcome, approved_limit_minor: int | None, requested_limit_minor: int
) -> AppealStatus:
    """The appeal's status after a final decision."""
    if outcome is Outcome.DECLINE:
        return AppealStatus.DECLINED
    if outcome is Outcome.REQUEST_INFO:
        return AppealStatus.INFO_REQUESTED
    assert approved_limit_minor is not None
    if approved_limit_minor < requested_limit_minor:
        return AppealStatus.PARTIALLY_APPROVED
    return AppealStatus.APPROVED
