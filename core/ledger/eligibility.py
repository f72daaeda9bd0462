"""Whether an account may appeal at all, from the ledger.

The rule: an account can be appealed when its limit is restricted, that is frozen (status
FROZEN) or reduced. Reduced is decided by the numbers, not by the status word: an account
whose current limit is below its original limit is reduced whatever its status says (ACTIVE
after a partial restore, an imported row, ...). A closed account has nothing to restore. The
overdue balance must be repaid first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlmodel import Session, col, func, select

from core.db.ledger_tables import AccountStatus, Bill, CreditAccount, LimitEvent, LimitEventKind
from core.errors import NotFound
from core.notifications.rendering import format_money, pick_locale

# Why an account cannot appeal, in both languages ({amount}: the overdue balance).
INELIGIBILITY_TEXTS: dict[str, tuple[str, str]] = {
    "account_not_restricted": (
        "The limit of this account is neither frozen nor below its original limit, so there is "
        "nothing to restore.",
        "该账户额度既未被冻结，也不低于原始额度，无需恢复。",
    ),
    "restored_by_review": (
        "Our portfolio review has already restored this limit as far as it can for now; there is "
        "no new limit cut to appeal.",
        "我们的额度复审已为该账户恢复了目前可恢复的额度，暂无新的额度下调可申诉。",
    ),
    "overdue_balance_outstanding": (
        "An overdue balance of {amount} is still unpaid; repay it before appealing.",
        "您仍有逾期欠款 {amount} 未还清，请还清后再申诉。",
    ),
}


def ineligibility_text(reason_code: str, locale: str, *, amount_owed_minor: int | None) -> str:
    en, zh = INELIGIBILITY_TEXTS[reason_code]
    text = zh if pick_locale(locale) == "zh-CN" else en
    return text.format(amount=format_money(amount_owed_minor or 0))


def is_restricted(status: AccountStatus, *, original_limit_minor: int, current_limit_minor: int) -> bool:
    """Frozen, or reduced (current limit below the original, whatever the status word)."""
    if status is AccountStatus.CLOSED:
        return False
    return status is AccountStatus.FROZEN or current_limit_minor < original_limit_minor


def status_after_restore(*, original_limit_minor: int, new_limit_minor: int) -> AccountStatus:
    """The status word an account gets with a restored limit: ACTIVE only at its original
    limit; a partial restore leaves it REDUCED (and so still appealable)."""
    return AccountStatus.ACTIVE if new_limit_minor >= original_limit_minor else AccountStatus.REDUCED


@dataclass(frozen=True)
class Eligibility:
    eligible: bool
    reason_code: str | None
    reason: str | None
    account_status: AccountStatus
    original_limit_minor: int
    current_limit_minor: int
    amount_owed_minor: int


def overdue_balances_minor(session: Session, account_ids: Sequence[str], today: date) -> dict[str, int]:
    """What is still unpaid on bills whose due date has passed, per account (one query)."""
    if not account_ids:
        return {}
    unpaid = Bill.amount_due_minor - Bill.paid_minor
    rows = session.exec(
        select(Bill.account_id, func.sum(unpaid))
        .where(col(Bill.account_id).in_(account_ids), Bill.due_date < today, unpaid > 0)
        .group_by(col(Bill.account_id))
    ).all()
    return {account_id: int(owed or 0) for account_id, owed in rows}


def overdue_balance_minor(session: Session, account_id: str, today: date) -> int:
    return overdue_balances_minor(session, [account_id], today).get(account_id, 0)


# The source of the portfolio review's restores (core/lender/review.py).
REVIEW_SOURCE = "portfolio-review"


def restored_by_review(session: Session, account_ids: Sequence[str]) -> set[str]:
    """The accounts whose latest limit event is a portfolio review's restore: no cut since, so
    there is nothing new to appeal (one query)."""
    if not account_ids:
        return set()
    latest = (
        select(LimitEvent.account_id, func.max(LimitEvent.id).label("last_id"))
        .where(col(LimitEvent.account_id).in_(account_ids))
        .group_by(col(LimitEvent.account_id))
        .subquery()
    )
    rows = session.exec(
        select(LimitEvent.account_id)
        .join(latest, col(LimitEvent.id) == latest.c.last_id)
        .where(LimitEvent.kind == LimitEventKind.RESTORE, LimitEvent.source == REVIEW_SOURCE)
    ).all()
    return set(rows)


def check_eligibility(session: Session, account_id: str, today: date) -> Eligibility:
    account = session.get(CreditAccount, account_id)
    if account is None:
        raise NotFound(f"Credit account {account_id} was not found.", code="account_not_found")
    return judge_eligibility(
        account,
        overdue_balance_minor(session, account_id, today),
        restored_by_review=account_id in restored_by_review(session, [account_id]),
    )


def judge_eligibility(account: CreditAccount, owed: int, *, restored_by_review: bool = False) -> Eligibility:
    """The rule, given the account, its overdue balance and whether the portfolio review's
    restore is its latest limit change (for pages listing many accounts)."""
    status = AccountStatus(account.status)
    reason_code: str | None = None
    reason: str | None = None
    if not is_restricted(
        status,
        original_limit_minor=account.original_limit_minor,
        current_limit_minor=account.current_limit_minor,
    ):
        reason_code = "account_not_restricted"
    elif restored_by_review:
        reason_code = "restored_by_review"
    elif owed > 0:
        reason_code = "overdue_balance_outstanding"
    if reason_code is not None:
        reason = ineligibility_text(reason_code, "en", amount_owed_minor=owed)
    return Eligibility(
        eligible=reason_code is None,
        reason_code=reason_code,
        reason=reason,
        account_status=status,
        original_limit_minor=account.original_limit_minor,
        current_limit_minor=account.current_limit_minor,
        amount_owed_minor=owed,
    )
