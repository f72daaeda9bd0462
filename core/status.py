"""The appeal status machine (docs/architecture.md section 4), shared by the workflow and the projection."""

from __future__ import annotations

from enum import StrEnum


class AppealStatus(StrEnum):
    SUBMITTED = "SUBMITTED"
    INELIGIBLE = "INELIGIBLE"
    AWAITING_DOCUMENTS = "AWAITING_DOCUMENTS"
    EXPIRED = "EXPIRED"
    CHECKING = "CHECKING"
    AUTO_APPROVED = "AUTO_APPROVED"
    AUTO_DECLINED = "AUTO_DECLINED"
    PENDING_REVIEW = "PENDING_REVIEW"
    IN_REVIEW = "IN_REVIEW"
    INFO_REQUESTED = "INFO_REQUESTED"
    PENDING_SECOND_REVIEW = "PENDING_SECOND_REVIEW"
    IN_SECOND_REVIEW = "IN_SECOND_REVIEW"
    APPROVED = "APPROVED"
    PARTIALLY_APPROVED = "PARTIALLY_APPROVED"
    DECLINED = "DECLINED"
    LIMIT_APPLIED = "LIMIT_APPLIED"
    # The credit-line API refused the decided limit: open, for an operator to resolve.
    LIMIT_APPLY_FAILED = "LIMIT_APPLY_FAILED"
    CLOSED = "CLOSED"
    WITHDRAWN = "WITHDRAWN"


S = AppealStatus

# Statuses after which nothing more happens to the appeal.
CLOSED_STATUSES: frozenset[AppealStatus] = frozenset({S.INELIGIBLE, S.EXPIRED, S.CLOSED, S.WITHDRAWN})

# A decision has been taken; the workflow is applying or announcing it (or an operator has to
# apply it by hand, LIMIT_APPLY_FAILED). Not withdrawable.
DECIDED_STATUSES: frozenset[AppealStatus] = frozenset(
    {S.AUTO_APPROVED, S.APPROVED, S.PARTIALLY_APPROVED, S.DECLINED, S.LIMIT_APPLIED, S.LIMIT_APPLY_FAILED}
)

WITHDRAWABLE_STATUSES: frozenset[AppealStatus] = frozenset(
    s for s in AppealStatus if s not in CLOSED_STATUSES | DECIDED_STATUSES
)

ALLOWED_TRANSITIONS: dict[AppealStatus, frozenset[AppealStatus]] = {
    S.SUBMITTED: frozenset({S.INELIGIBLE, S.AWAITING_DOCUMENTS}),
    S.AWAITING_DOCUMENTS: frozenset({S.EXPIRED, S.CHECKING}),
    S.CHECKING: frozenset({S.AUTO_APPROVED, S.AUTO_DECLINED, S.PENDING_REVIEW}),
    S.AUTO_DECLINED: frozenset({S.PENDING_REVIEW, S.CLOSED}),
    S.PENDING_REVIEW: frozenset({S.IN_REVIEW}),
    S.IN_REVIEW: frozenset(
        {S.PENDING_REVIEW, S.INFO_REQUESTED, S.PENDING_SECOND_REVIEW}
        | {S.APPROVED, S.PARTIALLY_APPROVED, S.DECLINED}
    ),
    S.INFO_REQUESTED: frozenset({S.AWAITING_DOCUMENTS}),
    S.PENDING_SECOND_REVIEW: frozenset({S.IN_SECOND_REVIEW}),
    S.IN_SECOND_REVIEW: frozenset({S.PENDING_SECOND_REVIEW, S.APPROVED, S.PARTIALLY_APPROVED, S.DECLINED}),
    S.AUTO_APPROVED: frozenset({S.LIMIT_APPLIED, S.LIMIT_APPLY_FAILED}),
    S.APPROVED: frozenset({S.LIMIT_APPLIED, S.LIMIT_APPLY_FAILED}),
    S.PARTIALLY_APPROVED: frozenset({S.LIMIT_APPLIED, S.LIMIT_APPLY_FAILED}),
    # The workflow ends here; an operator who resolved it out of band records the outcome.
    S.LIMIT_APPLY_FAILED: frozenset({S.LIMIT_APPLIED, S.CLOSED}),
    S.DECLINED: frozenset({S.CLOSED}),
    S.LIMIT_APPLIED: frozenset({S.CLOSED}),
}
for _status in WITHDRAWABLE_STATUSES:
    ALLOWED_TRANSITIONS[_status] = ALLOWED_TRANSITIONS.get(_status, frozenset()) | {S.WITHDRAWN}


def is_open(status: AppealStatus) -> bool:
    return status not in CLOSED_STATUSES


def can_transition(current: AppealStatus, target: AppealStatus) -> bool:
    return target in ALLOWED_TRANSITIONS.get(current, frozenset())
