"""The review part of AppealWorkflow: the open task, who holds it, and what a decision must
satisfy before it is accepted (deterministic: no I/O).

Claims are decided by the database (core/reviews/queue.py), which also moves the appeal's
status with them; the workflow follows the claimant only to know who may decide. The rules
about who may decide what are core's (core/reviews/rules.py), shared with the API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from temporalio.exceptions import ApplicationError

from core.reviews.rules import (
    NOT_THE_FIRST_REVIEWER,
    Outcome,
    Stage,
    decision_problem,
    sla_warning_at,
    why_not_deciding,
    why_not_outcome,
    why_not_role,
)
from core.status import AppealStatus
from workflows.messages import ReviewClaim, ReviewDecision


@dataclass
class OpenTask:
    task_id: str
    stage: Stage
    created_at: datetime
    due_at: datetime
    excluded_reviewer: str | None = None
    claimant: str | None = None
    # The task row's version that `claimant` comes from: the queue (the DB) decides claims,
    # and a message about an older version than the one followed changes nothing.
    claim_version: int = -1

    def follow_claim(self, reviewer: str | None, version: int | None) -> bool:
        """Takes a claim, release or reassignment recorded in the queue; False if stale."""
        if version is not None:
            if version <= self.claim_version:
                return False
            self.claim_version = version
        self.claimant = reviewer
        return True

    @property
    def status(self) -> AppealStatus:
        """The appeal's status while this task is open, as the queue projects it."""
        return self.stage.in_review_status if self.claimant else self.stage.pending_status

    @property
    def warning_at(self) -> datetime:
        return sla_warning_at(self.created_at, self.due_at)


class ReviewDesk:
    """The task under review and the decision being recorded; one per appeal.

    A task the workflow asks a step to open is `planned` until the step's result arrives: the
    step writes the row, and a reviewer may claim it (and the claim's message arrive) before
    the workflow has the result, so claims for the planned task are followed too."""

    def __init__(self) -> None:
        self.task: OpenTask | None = None
        self.planned: OpenTask | None = None
        self.recording: str | None = None  # update id of the decision being recorded
        self.decision: ReviewDecision | None = None  # recorded on the current task

    def plan(self, task: OpenTask) -> None:
        self.planned = task

    def open(self, task_id: str, due_at: datetime, assignee: str | None, version: int) -> OpenTask:
        """The task a step opened (the planned one, with what its claims said meanwhile)."""
        planned, self.planned = self.planned, None
        if planned is None or planned.task_id != task_id:
            raise ValueError(f"task {task_id} was not planned")
        planned.due_at = due_at
        if planned.claim_version == -1 and planned.claimant is None:
            planned.follow_claim(assignee, version)
        else:
            # A claim message arrived while the step was opening the task: the queue changed
            # the row after the step wrote it, so the message is the newer news, versioned
            # or not.
            planned.claim_version = max(planned.claim_version, version)
        self.task, self.decision = planned, None
        return planned

    def drop_plan(self) -> None:
        self.planned = None

    def close(self) -> None:
        self.task = None
        self.planned = None

    def _about(self, task_id: str) -> OpenTask | None:
        for task in (self.task, self.planned):
            if task is not None and task.task_id == task_id:
                return task
        return None

    def follow(self, claim: ReviewClaim) -> OpenTask | None:
        """The open (or planned), undecided task a claim message is about, once it has taken
        the claim; None when the message is about no such task or older than the last one."""
        task = self._about(claim.task_id)
        if task is None or (task is self.task and (self.decision is not None or self.recording)):
            return None
        return task if task.follow_claim(claim.reviewer, claim.version) else None

    def refusal(
        self, decision: ReviewDecision, original_limit_minor: int | None, requested_limit_minor: int
    ) -> ApplicationError | None:
        """Why this decision may not be recorded now, as the API's caller should hear it."""
        task = self._about(decision.task_id)
        # A planned task is decidable once claimed: its row exists (the claim was made on it);
        # the decision is recorded after the step that opened it (both hold the workflow's lock).
        if task is None or (task is self.task and (self.decision is not None or self.recording is not None)):
            return ApplicationError(
                f"Review task {decision.task_id} is not open on this appeal.", type="TaskNotOpen"
            )
        holder = why_not_deciding(
            claimed=task.claimant is not None, claimant=task.claimant, decider=decision.reviewer
        )
        if holder is not None:
            return ApplicationError(
                "Only the reviewer holding the claim on this task can decide it; claim it first.",
                type="NotClaimHolder",
            )
        if task.excluded_reviewer == decision.reviewer:
            return ApplicationError(f"The {NOT_THE_FIRST_REVIEWER}.", type="NotClaimHolder")
        # Holding the claim is not enough: the decider's role must satisfy the task's, now (a
        # claim handed over by a reassignment, or a role taken away since, does not carry it).
        if decision.role is not None:
            not_role = why_not_role(task.stage.required_role, decision.role)
            if not_role is not None:
                return ApplicationError(
                    f"You act as {decision.role}, and {not_role}: the decision was not recorded.",
                    type="NotClaimHolder",
                )
        outcome = Outcome(decision.outcome)
        not_here = why_not_outcome(task.stage, outcome)
        if not_here is not None:
            return ApplicationError(
                "The second review approves or declines; it does not request information.",
                type="InvalidDecision",
            )
        problem = decision_problem(
            outcome,
            approved_limit_minor=decision.approved_limit_minor,
            reasons=decision.reasons,
            requested_documents=decision.requested_documents,
            original_limit_minor=original_limit_minor,
            requested_limit_minor=requested_limit_minor,
        )
        if problem is not None:
            return ApplicationError(problem, type="InvalidDecision")
        return None
