"""The rule: a limit below the account's original is reduced, whatever the status word, and so
can be appealed. Eligibility, the status a restore leaves and the approval notice agree."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy.engine import Engine

from core.appeals.service import NewAppeal, create_appeal
from core.db import session_scope
from core.db.case_tables import Appeal
from core.db.ledger_tables import AccountStatus, CreditAccount, Customer
from core.ledger.eligibility import check_eligibility, is_restricted
from core.ledger.limits import apply_restore
from core.notifications.outbox import EMAIL, IN_APP, plan_notifications
from tests.factories import make_customer

TODAY = date(2026, 11, 30)
APPEAL_AGAIN = {
    "en": "Your limit is still below the original limit of this account (¥8,000.00), so you may submit "
    "a new appeal for a higher limit at any time; there is no waiting period after an approval, but any "
    "overdue bill must be repaid first.",
    "zh-CN": "您的额度仍低于该账户的原始额度（¥8,000.00），因此您可以随时再次提交申诉，申请更高的额度；"
    "获批后无需等待，但须先还清所有逾期账单。",
}


@pytest.mark.parametrize(
    ("status", "current", "restricted"),
    [
        (AccountStatus.FROZEN, 0, True),
        (AccountStatus.FROZEN, 800_000, True),  # frozen is frozen, whatever the number
        (AccountStatus.REDUCED, 300_000, True),
        (AccountStatus.ACTIVE, 600_000, True),  # below the original: reduced, whatever the word
        (AccountStatus.ACTIVE, 800_000, False),
        (AccountStatus.REDUCED, 800_000, False),  # the word alone restricts nothing
        (AccountStatus.CLOSED, 0, False),  # nothing to restore on a closed account
    ],
)
def test_restricted_means_frozen_or_below_the_original_limit(
    status: AccountStatus, current: int, restricted: bool
) -> None:
    assert is_restricted(status, original_limit_minor=800_000, current_limit_minor=current) is restricted


def test_an_active_account_below_its_original_limit_can_be_appealed(engine: Engine) -> None:
    c = make_customer(engine, status=AccountStatus.ACTIVE, current_limit_minor=500_000, today=TODAY)
    with session_scope(engine, read_only=True) as session:
        assert check_eligibility(session, c.account_id, TODAY).eligible


def _restore(engine: Engine, locale: str, new_limit_minor: int) -> tuple[str, str]:
    """A frozen account (original ¥8,000) restored by an appeal for the full ¥8,000 to
    `new_limit_minor`; returns the account id and the appeal id."""
    c = make_customer(
        engine, status=AccountStatus.FROZEN, original_limit_minor=800_000, locale=locale, today=TODAY
    )
    with session_scope(engine) as session:
        customer = session.get(Customer, c.customer_id)
        assert customer is not None
        customer.email = "customer@example.com"
        appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, 800_000))
        apply_restore(session, appeal_id=appeal.id, account_id=c.account_id, new_limit_minor=new_limit_minor)
        return c.account_id, appeal.id


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_after_a_partial_restore_the_account_is_reduced_and_the_notice_says_so(
    engine: Engine, locale: str
) -> None:
    account_id, appeal_id = _restore(engine, locale, 600_000)
    with session_scope(engine) as session:
        account = session.get(CreditAccount, account_id)
        assert account is not None and account.status == AccountStatus.REDUCED
        # The appeal is closed by then; the account can be appealed again straight away.
        eligibility = check_eligibility(session, account_id, TODAY)
        assert eligibility.eligible, eligibility.reason
        appeal = session.get(Appeal, appeal_id)
        assert appeal is not None
        rows = plan_notifications(
            session,
            appeal=appeal,
            event="limit_restored",
            sequence=1,
            context={"new_limit_minor": 600_000, "partial": True, "partial_reasons": None},
            channels=(IN_APP, EMAIL),
            webhook_urls=[],
        )
    assert {r.channel for r in rows} == {IN_APP, EMAIL}
    for row in rows:  # the in-app notice, the email's text and HTML parts
        for body in (row.body, row.body_html or row.body):
            assert APPEAL_AGAIN[locale] in body, row.channel
            assert "later" not in body and "日后" not in body


@pytest.mark.parametrize("locale", ["en", "zh-CN"])
def test_after_a_full_restore_the_account_is_active_and_the_notice_is_silent(
    engine: Engine, locale: str
) -> None:
    account_id, appeal_id = _restore(engine, locale, 800_000)
    with session_scope(engine) as session:
        account = session.get(CreditAccount, account_id)
        assert account is not None and account.status == AccountStatus.ACTIVE
        eligibility = check_eligibility(session, account_id, TODAY)
        assert not eligibility.eligible and eligibility.reason_code == "account_not_restricted"
        appeal = session.get(Appeal, appeal_id)
        assert appeal is not None
        [in_app] = plan_notifications(
            session,
            appeal=appeal,
            event="limit_restored",
            sequence=1,
            context={"new_limit_minor": 800_000, "partial": False},
            channels=(IN_APP,),
            webhook_urls=[],
        )
    assert APPEAL_AGAIN[locale] not in in_app.body
    assert ("original limit" if locale == "en" else "原始额度") not in in_app.body
