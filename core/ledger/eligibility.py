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

from core.db.ledger_tables import AccountStatus, Bill, CreditAccount
from core.errors import NotFound
from core.notifications.rendering import format_money, pick_locale

# Why an account cannot appeal, in both languages ({amount}: the overdue balance).
INELIGIBILITY_TEXTS: dict[str, tuple[str, str]] = {
    "account_not_restricted": (
        "The limit of this account is neither frozen nor below its original limit, so there is "
        "nothing to restore.",
        "该账户额度既未被冻结，也不低于原始额度，无需恢复。",
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


def check_eligibility(session: Session, account_id: str, today: date) -> Eligibility:
    account = session.get(CreditAccount, account_id)
    if account is None:
        raise NotFound(f"Credit account {account_id} was not found.", code="account_not_found")
    return judge_eligibility(account, overdue_balance_minor(session, account_id, today))


def judge_eligibility(account: CreditAccount, owed: int) -> Eligibility:
    """The rule, given the account and its overdue balance (for pages listing many accounts)."""
    status = AccountStatus(account.status)
    reason_code: str | None = None
    reason: str | None = None
    if not is_restricted(
        status,
        original_limit_minor=account.original_limit_minor,
        current_limit_minor=account.current_limit_minor,
    ):
        reason_code = "account_not_restricted"
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
