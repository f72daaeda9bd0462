"""Limit actions (docs/lender-loop.md, "Limit actions"): after a risk event is applied to the
ledger, the policy's `[[limit_actions]]` listening for its kind are evaluated in file order on the
account's ledger-only snapshot; the first that fires and would lower the limit acts.

Acting is one transaction under the account's row lock: a `limit_event` (FREEZE or REDUCE,
source `limit-action`, reason `<action id>: <reason code>`), the account's new limit and status,
an account audit event and the adverse-action notice planned (kinds `limit_frozen`,
`limit_reduced`; the notice's key `limit-action:<account>:<event id>`).

Exactly once per risk event: the result is stored on the event's `risk_event` row
(`action_result`) in the same transaction, so the key is the event id (one event, one account).
A retried activity, a redelivered event or a second workflow finds the stored result and does
nothing again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal, localcontext

from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session, select

from core.db.ledger_tables import AccountStatus, CreditAccount, LimitEvent, LimitEventKind
from core.db.lender_tables import RiskEvent
from core.ledger.account_audit import lock_account, record_account_event
from core.ledger.eligibility import overdue_balance_minor
from core.lender.snapshot import ledger_snapshot
from core.notifications.account_notices import plan_account_notices
from core.policy.characteristics import DECIMAL_CONTEXT, compute_characteristics, numeric
from core.policy.inputs import AssessmentInput
from core.policy.model import LimitAction, LimitActionKind, Policy

SOURCE = "limit-action"
ACTOR = "system:limit-action"
FROZEN_KIND = "limit_frozen"
REDUCED_KIND = "limit_reduced"


@dataclass(frozen=True)
class Firing:
    """The action that acts, the feature value that fired it and the limit it sets."""

    action: LimitAction
    value: Decimal
    new_limit_minor: int


class LimitActionResult(BaseModel):
    """What the limit action for one risk event did: `outcome` is `frozen`, `reduced`,
    `nothing` (no action fired, or none would lower the limit), `account_closed` or `stale`
    (the event was recorded, not applied). Stored on the event (`risk_event.action_result`) and
    returned by the workflow's activity."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    account_id: str
    outcome: str
    action_id: str | None = None
    reason_code: str | None = None
    characteristic: str | None = None
    value: str | None = None
    from_limit_minor: int | None = None
    to_limit_minor: int | None = None
    limit_event_id: int | None = None
    notice_ids: list[int] = Field(default_factory=list)
    newly_applied: bool = True


def limit_after(action: LimitAction, account: CreditAccount) -> int:
    """The limit `action` sets: 0 for a freeze; for a reduce `reduce_to_share` x the original
    limit (whole minor units, rounded down), never above the current limit."""
    if action.action is LimitActionKind.FREEZE:
        return 0
    assert action.reduce_to_share is not None  # the policy's validation requires it
    with localcontext(DECIMAL_CONTEXT):
        reduced = int((action.reduce_to_share * account.original_limit_minor).to_integral_value(ROUND_FLOOR))
    return min(reduced, account.current_limit_minor)


def evaluate(policy: Policy, inp: AssessmentInput, event_kind: str, account: CreditAccount) -> Firing | None:
    """The first action listening for `event_kind` that fires on `inp` and whose new limit is
    below the account's current one; None if there is none."""
    listening = [a for a in policy.limit_actions if event_kind in {str(kind) for kind in a.on}]
    if not listening:
        return None
    features = compute_characteristics(inp, policy)
    for action in listening:
        value = numeric(features.value(action.characteristic))
        if value is None or not action.fires(value):
            continue
        new_limit = limit_after(action, account)
        if new_limit < account.current_limit_minor:
            return Firing(action, value, new_limit)
    return None


def _reason(policy: Policy, code: str) -> dict[str, str]:
    text = policy.reasons.get(code)
    if text is None:  # a deployable policy has every code's text; fall back to the code
        return {"code": code, "en": code, "zh-CN": code}
    return {"code": code, "en": text.en, "zh-CN": text.zh_cn}


def act_on_event(
    session: Session, *, event_id: str, policy: Policy, today: date, now: datetime
) -> LimitActionResult:
    """Evaluates the limit actions for a recorded risk event and applies the one that acts, in
    the caller's transaction, once per event (see the module's docstring)."""
    risk = session.get(RiskEvent, event_id)
    if risk is None:
        raise LookupError(f"risk event {event_id} was not recorded")
    account = lock_account(session, risk.account_id)
    session.refresh(risk)  # read again under the lock: a concurrent run may have acted
    if risk.action_result is not None:
        done = LimitActionResult.model_validate(risk.action_result)
        return done.model_copy(update={"newly_applied": False})
    result = _act(session, risk, account, policy, today, now)
    risk.action_result = result.model_dump(mode="json")
    session.add(risk)
    session.flush()
    return result


def _act(
    session: Session, risk: RiskEvent, account: CreditAccount, policy: Policy, today: date, now: datetime
) -> LimitActionResult:
    event_id, account_id = risk.id, account.id
    if risk.outcome != "applied":
        return LimitActionResult(event_id=event_id, account_id=account_id, outcome="stale")
    if account.status is AccountStatus.CLOSED:
        return LimitActionResult(event_id=event_id, account_id=account_id, outcome="account_closed")
    firing = evaluate(policy, ledger_snapshot(session, account.id, today), risk.kind, account)
    if firing is None:
        return LimitActionResult(event_id=event_id, account_id=account_id, outcome="nothing")
    action = firing.action
    freeze = action.action is LimitActionKind.FREEZE
    from_limit = account.current_limit_minor
    limit_event = LimitEvent(
        account_id=account.id,
        kind=LimitEventKind.FREEZE if freeze else LimitEventKind.REDUCE,
        from_limit_minor=from_limit,
        to_limit_minor=firing.new_limit_minor,
        reason=f"{action.id}: {action.reason}",
        source=SOURCE,
        created_at=now,
    )
    account.current_limit_minor = firing.new_limit_minor
    account.status = AccountStatus.FROZEN if freeze else AccountStatus.REDUCED
    session.add(limit_event)
    session.add(account)
    session.flush()
    assert limit_event.id is not None
    kind = FROZEN_KIND if freeze else REDUCED_KIND
    reason = _reason(policy, action.reason)
    details = {
        "risk_event_id": risk.id,
        "risk_event_kind": risk.kind,
        "action_id": action.id,
        "reason_code": action.reason,
        "characteristic": action.characteristic,
        "value": str(firing.value),
        "condition": action.condition,
        "from_limit_minor": from_limit,
        "to_limit_minor": firing.new_limit_minor,
        "limit_event_id": limit_event.id,
        "policy_id": policy.id,
    }
    record_account_event(session, account.id, kind=kind, actor=ACTOR, details=details, at=now)
    notice_ids = plan_account_notices(
        session,
        account_id=account.id,
        kind=kind,
        key=f"{SOURCE}:{account.id}:{risk.id}",
        context={
            "from_limit_minor": from_limit,
            "to_limit_minor": firing.new_limit_minor,
            "original_limit_minor": account.original_limit_minor,
            "reason": reason,
            "decided_on": today,
            "appeal_from": today,
            "amount_owed_minor": overdue_balance_minor(session, account.id, today),
        },
        at=now,
    )
    return LimitActionResult(
        event_id=event_id,
        account_id=account_id,
        outcome="frozen" if freeze else "reduced",
        action_id=action.id,
        reason_code=action.reason,
        characteristic=action.characteristic,
        value=str(firing.value),
        from_limit_minor=from_limit,
        to_limit_minor=firing.new_limit_minor,
        limit_event_id=limit_event.id,
        notice_ids=notice_ids,
    )


def pending_actions(session: Session, *, limit: int = 100) -> list[RiskEvent]:
    """Risk events whose limit-action workflow was not started yet (the API could not reach
    Temporal), oldest first: for the reconciler."""
    from sqlmodel import col

    return list(
        session.exec(
            select(RiskEvent)
            .where(col(RiskEvent.action_started_at).is_(None), col(RiskEvent.action_workflow_id).is_not(None))
            .order_by(col(RiskEvent.received_at), col(RiskEvent.id))
            .limit(limit)
        ).all()
    )
