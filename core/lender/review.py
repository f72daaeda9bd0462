"""The nightly portfolio review (docs/lender-loop.md, "Portfolio review"): for each FROZEN or
REDUCED account, on the ledger alone and with the deployed policy's `[portfolio_review]`
thresholds, restore the limit directly, invite the customer to appeal, or do nothing and record
why. Once per account and run date: the `review_action` row (unique per date and account) is
written in the same transaction as the limit change or the invitation, so a re-run, a retried
batch or a worker killed mid-run never acts twice.

`decide` is the rule, pure; `review_account` gathers what it reads, applies the outcome (a
restore through the same path as an appeal's: the external credit-line API first when one is
configured, keyed by run date and account, then the ledger with a limit event, the account's
audit event and the customer's notice) and reports what it did.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import ROUND_FLOOR, Decimal, localcontext
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select as sa_select
from sqlalchemy import union
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from core.appeals.audit import append_event
from core.appeals.service import lock_appeal
from core.db import session_scope
from core.db.case_tables import Appeal, AppealEvent
from core.db.ledger_tables import AccountStatus, CreditAccount, LimitEvent, LimitEventKind
from core.db.review_tables import ReviewAction, ReviewOutcome, ReviewRun
from core.ledger.account_audit import lock_account, record_account_event
from core.ledger.credit_line_api import apply_limit_externally, review_idempotency_key
from core.ledger.eligibility import REVIEW_SOURCE, overdue_balances_minor
from core.ledger.limits import restore_limit
from core.lender.snapshot import ledger_snapshot
from core.notifications.account_notices import plan_account_notices, send_account_notices
from core.policy.characteristics import (
    DECIMAL_CONTEXT,
    Characteristics,
    CharacteristicValue,
    compute_characteristics,
    numeric,
)
from core.policy.features import FEATURES
from core.policy.inputs import AssessmentInput
from core.policy.loader import LoadedPolicy
from core.policy.model import INPUT_PREFIX, PortfolioReview
from core.policy.scorecard import KnockoutHit, principal_reasons, score_characteristics
from core.policy.scoring import Unscorable

ACTOR = "system:portfolio-review"
RESTORE_REASON = "portfolio_review"  # limit_event.reason of a review's restore
RESTORED_KIND = "limit_restored_by_review"  # account event and notice kind
INVITED_KIND = "invited_to_appeal"
RESTRICTED = (AccountStatus.FROZEN, AccountStatus.REDUCED)
CUT_KINDS = (LimitEventKind.FREEZE, LimitEventKind.REDUCE)


class Reason(StrEnum):
    """Why a review did what it did (`review_action.reason`)."""

    RESTORE_SCORE = "score_at_or_above_restore"
    INVITE_SCORE = "score_at_or_above_invite"
    NOT_RESTRICTED = "not_restricted"
    OPEN_APPEAL = "open_appeal"
    OVERDUE_BALANCE = "overdue_balance"
    KNOCKOUT = "knockout"
    RECENT_CUT = "recent_cut"
    SCORE_BELOW_INVITE = "score_below_invite"
    INVITED_RECENTLY = "invited_recently"
    UNSCORABLE = "unscorable"
    # Not a row: the account already has one for this run date (a re-run, a backfill).
    ALREADY_DECIDED = "already_decided"


class ReviewPolicyMissing(Exception):
    """The deployed policy has no [portfolio_review] section: the review cannot run."""


@dataclass(frozen=True)
class AccountFacts:
    """What the review reads about an account besides its ledger snapshot."""

    open_appeal: bool
    overdue_minor: int
    last_cut_on: date | None  # the day of the latest FREEZE or REDUCE
    last_invited_on: date | None  # the run date of the latest invitation


@dataclass(frozen=True)
class ReviewDecision:
    outcome: ReviewOutcome
    reason: Reason
    original_limit_minor: int
    current_limit_minor: int
    new_limit_minor: int | None = None  # a restore's limit
    score: int | None = None
    reason_codes: tuple[str, ...] = ()  # knock-out ids, the policy's principal reason codes


def review_section(policy: LoadedPolicy) -> PortfolioReview:
    section = policy.policy.portfolio_review
    if section is None:
        raise ReviewPolicyMissing(f"policy {policy.policy_id} has no [portfolio_review] section")
    return section


def restore_amount(section: PortfolioReview, *, original_minor: int, current_minor: int) -> int:
    """Up to `restore_to_share` x the original limit, by at most `max_restore_minor` above the
    current limit, never below the current limit."""
    with localcontext(DECIMAL_CONTEXT):
        cap = int((section.restore_to_share * original_minor).to_integral_value(rounding=ROUND_FLOOR))
    return max(current_minor, min(cap, current_minor + section.max_restore_minor, original_minor))


def ledger_knockouts(
    policy: LoadedPolicy, ch: Characteristics, inp: AssessmentInput
) -> tuple[KnockoutHit, ...]:
    """The policy's knock-outs that can be judged on the ledger alone (features that need no
    documents, and input fields), those that fire, in policy order."""
    hits: list[KnockoutHit] = []
    for ko in policy.policy.knockouts:
        name = ko.characteristic
        value: CharacteristicValue
        if name.startswith(INPUT_PREFIX):
            text = inp.fields.get(name.removeprefix(INPUT_PREFIX), "").strip()
            try:
                value = Decimal(text) if text else None
            except ArithmeticError:
                raise Unscorable(name, f"not a number: {text[:40]!r}") from None
        else:
            feature = FEATURES.get(name.removeprefix("feature:"))
            if feature is None or feature.needs_documents:
                continue
            value = ch.value(feature.name)
        if ko.fires(numeric(value)):
            hits.append(
                KnockoutHit(
                    id=ko.id,
                    characteristic=name,
                    value=value,
                    condition=ko.condition,
                    action=ko.action,
                    reason=ko.reason,
                )
            )
    return tuple(hits)


def decide(
    policy: LoadedPolicy, inp: AssessmentInput, facts: AccountFacts, *, run_date: date
) -> ReviewDecision:
    """The review's rule for one account, on its ledger-only snapshot and facts (pure)."""
    section = review_section(policy)
    original = inp.account.original_limit_minor
    current = inp.account.current_limit_minor

    def nothing(reason: Reason, score: int | None = None, codes: Sequence[str] = ()) -> ReviewDecision:
        return ReviewDecision(ReviewOutcome.NONE, reason, original, current, None, score, tuple(codes))

    pre = decided_by_facts(
        facts, status=AccountStatus(inp.account.status.value), original=original, current=current
    )
    if pre is not None:
        return nothing(pre)
    p = policy.policy
    try:
        with localcontext(DECIMAL_CONTEXT):
            ch = compute_characteristics(inp, p)
            knockouts = ledger_knockouts(policy, ch, inp)
            card = score_characteristics(p, ch, inp)
    except Unscorable as exc:
        return nothing(Reason.UNSCORABLE, None, [exc.characteristic])
    score = card.score
    principal = tuple(r.code for r in principal_reasons(p, knockouts, card.contributions))
    if knockouts:
        return nothing(Reason.KNOCKOUT, score, [*(k.id for k in knockouts), *principal])
    if facts.last_cut_on is not None and (run_date - facts.last_cut_on).days < section.settle_days:
        return nothing(Reason.RECENT_CUT, score, principal)
    if score >= section.restore_min_score:
        new_limit = restore_amount(section, original_minor=original, current_minor=current)
        if new_limit > current:
            return ReviewDecision(
                ReviewOutcome.RESTORE, Reason.RESTORE_SCORE, original, current, new_limit, score, principal
            )
    if score < section.invite_min_score:
        return nothing(Reason.SCORE_BELOW_INVITE, score, principal)
    if facts.last_invited_on is not None and abs((run_date - facts.last_invited_on).days) < (
        section.invite_cooldown_days
    ):
        return nothing(Reason.INVITED_RECENTLY, score, principal)
    return ReviewDecision(
        ReviewOutcome.INVITE, Reason.INVITE_SCORE, original, current, None, score, principal
    )


def decided_by_facts(
    facts: AccountFacts, *, status: AccountStatus, original: int, current: int
) -> Reason | None:
    """The reasons to leave an account alone that need no score: not restricted (closed, or
    back at its limit), an open appeal (the appeal decides), an overdue balance."""
    if status is AccountStatus.CLOSED or (status is not AccountStatus.FROZEN and current >= original):
        return Reason.NOT_RESTRICTED
    if facts.open_appeal:
        return Reason.OPEN_APPEAL
    if facts.overdue_minor > 0:
        return Reason.OVERDUE_BALANCE
    return None


# -- reading the facts, a batch at a time ------------------------------------------------------


def restricted_account_ids(session: Session, *, after: str | None, limit: int) -> list[str]:
    """The next page of FROZEN and REDUCED accounts, by id."""
    query = select(CreditAccount.id).where(col(CreditAccount.status).in_(RESTRICTED))
    if after is not None:
        query = query.where(CreditAccount.id > after)
    return list(session.exec(query.order_by(col(CreditAccount.id)).limit(limit)).all())


def batch_account_ids(
    session: Session, *, after: str | None, limit: int, run_date: date, decided_by: str | None = None
) -> list[str]:
    """A batch's page: the next restricted accounts by id and, for a retried batch
    (`decided_by`: the run's workflow id), those the run decided already after the cursor.

    A retried batch resumes from the last cursor the server heard of; accounts its lost attempt
    decided after that may be ACTIVE now (restored in full), no longer restricted. They are met
    again here, found decided by this run and counted as what they were (`_existing`), so the
    run's counts equal its rows. One statement, ordered by the database as the cursor is."""
    if decided_by is None:
        return restricted_account_ids(session, after=after, limit=limit)
    accounts, actions = CreditAccount.__table__.c, ReviewAction.__table__.c  # type: ignore[attr-defined]
    restricted = sa_select(accounts.id.label("id")).where(accounts.status.in_(RESTRICTED))
    mine = sa_select(actions.account_id.label("id")).where(
        actions.run_date == run_date, actions.workflow_id == decided_by
    )
    if after is not None:
        restricted = restricted.where(accounts.id > after)
        mine = mine.where(actions.account_id > after)
    page = union(
        sa_select(restricted.order_by(accounts.id).limit(limit).subquery()),
        sa_select(mine.order_by(actions.account_id).limit(limit).subquery()),
    ).subquery()
    rows = session.execute(sa_select(page.c.id).order_by(page.c.id).limit(limit)).scalars().all()
    return [str(row) for row in rows]


def batch_facts(session: Session, account_ids: Sequence[str], run_date: date) -> dict[str, AccountFacts]:
    """The facts of a page of accounts in four queries."""
    ids = list(account_ids)
    open_appeals = set(
        session.exec(
            select(Appeal.account_id).where(col(Appeal.account_id).in_(ids), col(Appeal.is_open).is_(True))
        ).all()
    )
    owed = overdue_balances_minor(session, ids, run_date)
    cuts: dict[str, date] = {}
    for account_id, at in session.exec(
        select(LimitEvent.account_id, func.max(LimitEvent.created_at))
        .where(col(LimitEvent.account_id).in_(ids), col(LimitEvent.kind).in_(CUT_KINDS))
        .group_by(col(LimitEvent.account_id))
    ).all():
        if at is not None:
            cuts[account_id] = (at if isinstance(at, datetime) else datetime.fromisoformat(str(at))).date()
    invited: dict[str, date] = {}
    for account_id, run_day in session.exec(
        select(ReviewAction.account_id, func.max(ReviewAction.run_date))
        .where(
            col(ReviewAction.account_id).in_(ids),
            ReviewAction.outcome == ReviewOutcome.INVITE.value,
            ReviewAction.run_date != run_date,
        )
        .group_by(col(ReviewAction.account_id))
    ).all():
        if run_day is not None:
            invited[account_id] = run_day if isinstance(run_day, date) else date.fromisoformat(str(run_day))
    return {
        account_id: AccountFacts(
            open_appeal=account_id in open_appeals,
            overdue_minor=owed.get(account_id, 0),
            last_cut_on=cuts.get(account_id),
            last_invited_on=invited.get(account_id),
        )
        for account_id in ids
    }


def decided_for(session: Session, account_ids: Sequence[str], run_date: date) -> dict[str, ReviewAction]:
    rows = session.exec(
        select(ReviewAction).where(
            ReviewAction.run_date == run_date, col(ReviewAction.account_id).in_(account_ids)
        )
    ).all()
    return {row.account_id: row for row in rows}


# -- applying one decision -----------------------------------------------------------------------


class ReviewCounts(BaseModel):
    """What a run did, per outcome and per reason (carried across batches and continue-as-new)."""

    examined: int = 0
    restored: int = 0
    invited: int = 0
    nothing: int = 0
    already_decided: int = 0  # rows another run wrote for this date: nothing done again
    restored_minor: int = 0  # the sum of the restores (new limit - old limit)
    by_reason: dict[str, int] = Field(default_factory=dict)

    def add(self, outcome: ReviewOutcome | None, reason: str, restored_minor: int = 0) -> None:
        self.examined += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1
        if outcome is None:
            self.already_decided += 1
        elif outcome is ReviewOutcome.RESTORE:
            self.restored += 1
            self.restored_minor += restored_minor
        elif outcome is ReviewOutcome.INVITE:
            self.invited += 1
        else:
            self.nothing += 1

    def merged(self, other: ReviewCounts) -> ReviewCounts:
        reasons = dict(self.by_reason)
        for key, value in other.by_reason.items():
            reasons[key] = reasons.get(key, 0) + value
        return ReviewCounts(
            examined=self.examined + other.examined,
            restored=self.restored + other.restored,
            invited=self.invited + other.invited,
            nothing=self.nothing + other.nothing,
            already_decided=self.already_decided + other.already_decided,
            restored_minor=self.restored_minor + other.restored_minor,
            by_reason=reasons,
        )


@dataclass(frozen=True)
class CreditLine:
    """The external credit-line API, when one is configured (core/ledger/credit_line_api.py)."""

    url: str
    token: str | None
    timeout: float = 15.0


@dataclass
class Reviewed:
    """What reviewing one account did: its outcome (None: another run had decided it already)."""

    account_id: str
    outcome: ReviewOutcome | None
    reason: str
    restored_minor: int = 0
    notice_ids: list[int] = field(default_factory=list)


def _existing(row: ReviewAction, workflow_id: str) -> Reviewed:
    """A row for this date: this run's own (a retried batch: counted as what it was) or another
    run's (a re-run or backfill: nothing done again)."""
    if row.workflow_id != workflow_id:
        return Reviewed(row.account_id, None, Reason.ALREADY_DECIDED.value)
    gained = (row.limit_after_minor or row.limit_before_minor) - row.limit_before_minor
    return Reviewed(row.account_id, ReviewOutcome(row.outcome), row.reason, gained)


def invitation_url(portal_url: str, account_id: str, token: str) -> str:
    return f"{portal_url.rstrip('/')}/appeals/new?account={account_id}&invitation={token}"


def _write(
    session: Session,
    decision: ReviewDecision,
    *,
    account: CreditAccount,
    run_date: date,
    workflow_id: str,
    at: datetime,
    portal_url: str,
    policy: LoadedPolicy,
) -> Reviewed:
    """The review_action row and, for a restore or an invitation, its effects, in the caller's
    transaction (the account row is locked)."""
    row = ReviewAction(
        run_date=run_date,
        account_id=account.id,
        customer_id=account.customer_id,
        outcome=decision.outcome.value,
        reason=decision.reason.value,
        reason_codes=list(decision.reason_codes),
        score=decision.score,
        original_limit_minor=account.original_limit_minor,
        limit_before_minor=account.current_limit_minor,
        workflow_id=workflow_id,
        created_at=at,
    )
    reviewed = Reviewed(account.id, decision.outcome, decision.reason.value)
    base_context: dict[str, Any] = {
        "original_limit_minor": account.original_limit_minor,
        "decided_on": run_date.isoformat(),
    }
    if decision.outcome is ReviewOutcome.RESTORE:
        assert decision.new_limit_minor is not None
        before = account.current_limit_minor
        event = restore_limit(
            session,
            account,
            new_limit_minor=decision.new_limit_minor,
            reason=RESTORE_REASON,
            source=REVIEW_SOURCE,
            at=at,
        )
        session.flush()
        row.limit_after_minor = decision.new_limit_minor
        row.limit_event_id = event.id
        reviewed.restored_minor = decision.new_limit_minor - before
        details = {
            "run_date": run_date.isoformat(),
            "limit_event_id": event.id,
            "from_limit_minor": before,
            "to_limit_minor": decision.new_limit_minor,
            "original_limit_minor": account.original_limit_minor,
            "score": decision.score,
            "policy_id": policy.policy_id,
            "workflow_id": workflow_id,
        }
        record_account_event(session, account.id, kind=RESTORED_KIND, actor=ACTOR, details=details, at=at)
        session.add(row)
        session.flush()
        reviewed.notice_ids = plan_account_notices(
            session,
            account_id=account.id,
            kind=RESTORED_KIND,
            key=f"review:{run_date.isoformat()}:{account.id}:{RESTORED_KIND}",
            context={
                **base_context,
                "from_limit_minor": before,
                "to_limit_minor": decision.new_limit_minor,
                "partial": decision.new_limit_minor < account.original_limit_minor,
            },
            at=at,
        )
    elif decision.outcome is ReviewOutcome.INVITE:
        token = secrets.token_urlsafe(24)
        row.invitation_token = token
        session.add(row)
        session.flush()
        record_account_event(
            session,
            account.id,
            kind=INVITED_KIND,
            actor=ACTOR,
            details={
                "run_date": run_date.isoformat(),
                "review_action_id": row.id,
                "score": decision.score,
                "policy_id": policy.policy_id,
                "workflow_id": workflow_id,
            },
            at=at,
        )
        reviewed.notice_ids = plan_account_notices(
            session,
            account_id=account.id,
            kind=INVITED_KIND,
            key=f"review:{run_date.isoformat()}:{account.id}:{INVITED_KIND}",
            context={
                **base_context,
                "current_limit_minor": account.current_limit_minor,
                "requested_limit_minor": account.original_limit_minor,
                "appeal_url": invitation_url(portal_url, account.id, token),
            },
            at=at,
        )
    else:
        session.add(row)
        session.flush()
    return reviewed


def _decide_one(
    session: Session, policy: LoadedPolicy, account_id: str, facts: AccountFacts, run_date: date
) -> ReviewDecision:
    account = session.get(CreditAccount, account_id)
    assert account is not None
    status = AccountStatus(account.status)
    pre = decided_by_facts(
        facts, status=status, original=account.original_limit_minor, current=account.current_limit_minor
    )
    if pre is not None:
        return ReviewDecision(
            ReviewOutcome.NONE, pre, account.original_limit_minor, account.current_limit_minor
        )
    return decide(policy, ledger_snapshot(session, account_id, run_date), facts, run_date=run_date)


def review_account(
    engine: Engine,
    account_id: str,
    facts: AccountFacts,
    *,
    run_date: date,
    workflow_id: str,
    policy: LoadedPolicy,
    at: datetime,
    portal_url: str,
    credit_line: CreditLine | None = None,
) -> Reviewed:
    """Decides one account for `run_date` and applies the decision, once.

    With an external credit-line API a restore is sent there first (keyed by run date and
    account, so a retry is applied once), then mirrored on the ledger with the row; without one,
    the decision and its effects are one transaction."""
    with session_scope(engine) as session:
        existing = decided_for(session, [account_id], run_date).get(account_id)
        if existing is not None:
            return _existing(existing, workflow_id)
        decision = _decide_one(session, policy, account_id, facts, run_date)
        external = credit_line is not None and decision.outcome is ReviewOutcome.RESTORE
        if not external:
            return _apply(session, decision, account_id, run_date, workflow_id, at, portal_url, policy)
    assert credit_line is not None and decision.new_limit_minor is not None
    with session_scope(engine, read_only=True) as session:
        account = session.get(CreditAccount, account_id)
        currency = account.currency if account else "CNY"
    apply_limit_externally(
        credit_line.url,
        credit_line.token,
        appeal_id=None,
        account_id=account_id,
        new_limit_minor=decision.new_limit_minor,
        currency=currency,
        timeout=credit_line.timeout,
        reason=RESTORE_REASON,
        key=review_idempotency_key(run_date.isoformat(), account_id),
    )
    with session_scope(engine) as session:
        return _apply(session, decision, account_id, run_date, workflow_id, at, portal_url, policy)


def _apply(
    session: Session,
    decision: ReviewDecision,
    account_id: str,
    run_date: date,
    workflow_id: str,
    at: datetime,
    portal_url: str,
    policy: LoadedPolicy,
) -> Reviewed:
    account = lock_account(session, account_id)
    # Under the lock: a concurrent run for the same date, or an appeal opened since the page was
    # read (the appeal decides; it is left alone).
    existing = decided_for(session, [account_id], run_date).get(account_id)
    if existing is not None:
        return _existing(existing, workflow_id)
    if decision.outcome is not ReviewOutcome.NONE and (
        session.exec(
            select(Appeal.id).where(Appeal.account_id == account_id, col(Appeal.is_open).is_(True))
        ).first()
        is not None
    ):
        decision = ReviewDecision(
            ReviewOutcome.NONE,
            Reason.OPEN_APPEAL,
            decision.original_limit_minor,
            decision.current_limit_minor,
        )
    # A concurrent writer of the same row is held by the lock (or, failing that, refused by the
    # unique key: the transaction rolls back and a retry finds the row).
    return _write(
        session,
        decision,
        account=account,
        run_date=run_date,
        workflow_id=workflow_id,
        at=at,
        portal_url=portal_url,
        policy=policy,
    )


def send_notices(engine: Engine, notice_ids: Sequence[int], senders: Mapping[str, Any]) -> None:
    if notice_ids:
        send_account_notices(engine, list(notice_ids), senders)


def recent_runs(session: Session, limit: int = 20) -> list[ReviewRun]:
    """The latest review runs, newest first (one query)."""
    return list(
        session.exec(
            select(ReviewRun)
            .order_by(col(ReviewRun.started_at).desc(), col(ReviewRun.id).desc())
            .limit(limit)
        ).all()
    )


# -- invitations taken up ---------------------------------------------------------------------

INVITATION_ACCEPTED = "invitation_accepted"  # the appeal's audit event


def invitation_for(session: Session, token: str, *, customer_id: str, account_id: str) -> ReviewAction | None:
    """The review's invitation with this token, if it was made to this customer for this
    account; None otherwise (unknown, another's, or not an invitation)."""
    if not token or len(token) > 64:
        return None
    row = session.exec(select(ReviewAction).where(ReviewAction.invitation_token == token)).first()
    if row is None or row.outcome != ReviewOutcome.INVITE.value:
        return None
    if row.customer_id != customer_id or row.account_id != account_id:
        return None
    return row


def record_invitation_accepted(
    session: Session, appeal: Appeal, invitation: ReviewAction, *, at: datetime
) -> bool:
    """Records on the appeal's audit trail that it answers the review's invitation (what the
    review knew: its date, score and reasons), once per appeal. The appeal row is locked first,
    as the workflow's steps lock it, so the trail's sequence stays whole."""
    lock_appeal(session, appeal.id)
    done = session.exec(
        select(AppealEvent.id).where(
            AppealEvent.appeal_id == appeal.id, AppealEvent.kind == INVITATION_ACCEPTED
        )
    ).first()
    if done is not None:
        return False
    append_event(
        session,
        appeal_id=appeal.id,
        at=at,
        actor=f"customer:{appeal.customer_id}",
        kind=INVITATION_ACCEPTED,
        details={
            "invitation": invitation.invitation_token,
            "review_action_id": invitation.id,
            "run_date": invitation.run_date.isoformat(),
            "score": invitation.score,
            "reason_codes": list(invitation.reason_codes),
            "workflow_id": invitation.workflow_id,
        },
    )
    return True
