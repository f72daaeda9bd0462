"""The portfolio review's decisions and their effects on a seeded book (core/lender/review.py),
on SQLite and PostgreSQL: each outcome with its reason, restores applied once through the
ledger's restore path with an audit event and notices, invitations with a token, a second run
for the same date changing nothing, the invitation cool-down, and appeals refused on an account
the review restored."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, func, select

from core.appeals.service import NewAppeal, create_appeal
from core.db import session_scope
from core.db.ledger_tables import AccountStatus, CreditAccount, Customer, LimitEvent, LimitEventKind
from core.db.lender_tables import AccountEvent, AccountNotice
from core.db.review_tables import ReviewAction, ReviewOutcome
from core.ledger.eligibility import REVIEW_SOURCE, check_eligibility
from core.ledger.generator import seed_population
from core.lender.review import (
    INVITED_KIND,
    RESTORED_KIND,
    Reason,
    ReviewCounts,
    batch_account_ids,
    batch_facts,
    restore_amount,
    restricted_account_ids,
    review_account,
    review_section,
)
from core.policy.loader import load_default_policy
from core.policy.model import PortfolioReview

TODAY = date(2026, 6, 15)
AT = datetime(2026, 6, 15, 1, 0, tzinfo=UTC)
PORTAL = "https://appeals.example/app"


def run_review(engine: Engine, run_date: date, workflow_id: str, *, page: int = 7) -> ReviewCounts:
    """What the review_batch activity does, page after page, without Temporal."""
    policy = load_default_policy()
    counts, cursor = ReviewCounts(), None
    while True:
        with session_scope(engine, read_only=True) as session:
            ids = restricted_account_ids(session, after=cursor, limit=page)
            facts = batch_facts(session, ids, run_date)
        if not ids:
            return counts
        for account_id in ids:
            reviewed = review_account(
                engine,
                account_id,
                facts[account_id],
                run_date=run_date,
                workflow_id=workflow_id,
                policy=policy,
                at=AT,
                portal_url=PORTAL,
            )
            counts.add(reviewed.outcome, reviewed.reason, reviewed.restored_minor)
            cursor = account_id


def _count(engine: Engine, model: type) -> int:
    with session_scope(engine, read_only=True) as session:
        return int(session.exec(select(func.count()).select_from(model)).one())


@pytest.fixture
def book(engine: Engine) -> Engine:
    """40 generated customers (every population) and an open appeal on one restricted account
    that would otherwise be restored or invited."""
    with session_scope(engine) as session:
        seed_population(session, 40, 3, today=TODAY)
    with session_scope(engine, read_only=True) as session:
        ids = restricted_account_ids(session, after=None, limit=100)
        facts = batch_facts(session, ids, TODAY)
    candidate = next(a for a in ids if facts[a].overdue_minor == 0 and facts[a].last_cut_on is not None)
    with session_scope(engine) as session:
        account = session.get(CreditAccount, candidate)
        assert account is not None
        create_appeal(
            session,
            NewAppeal(account.customer_id, account.id, account.original_limit_minor),
            today=TODAY,
        )
    return engine


def test_each_outcome_occurs_with_its_reason_and_acts_once(book: Engine) -> None:
    with session_scope(book, read_only=True) as session:
        before = {
            a.id: (a.current_limit_minor, a.original_limit_minor) for a in session.exec(select(CreditAccount))
        }
    counts = run_review(book, TODAY, "review-1")

    assert counts.restored > 0 and counts.invited > 0 and counts.nothing > 0 and counts.already_decided == 0
    assert counts.examined == counts.restored + counts.invited + counts.nothing
    for reason in (
        Reason.RESTORE_SCORE,
        Reason.INVITE_SCORE,
        Reason.OPEN_APPEAL,
        Reason.OVERDUE_BALANCE,
        Reason.KNOCKOUT,
        Reason.RECENT_CUT,
        Reason.SCORE_BELOW_INVITE,
    ):
        assert counts.by_reason.get(reason.value, 0) > 0, (reason, counts.by_reason)

    section = review_section(load_default_policy())
    with session_scope(book, read_only=True) as session:
        rows = session.exec(select(ReviewAction).order_by(col(ReviewAction.account_id))).all()
        assert len(rows) == counts.examined
        for row in rows:
            assert row.run_date == TODAY and row.workflow_id == "review-1"
            if row.outcome == ReviewOutcome.RESTORE:
                assert row.score is not None and row.score >= section.restore_min_score
                event = session.get(LimitEvent, row.limit_event_id)
                account = session.get(CreditAccount, row.account_id)
                assert event is not None and account is not None
                current, original = before[row.account_id]
                expected = restore_amount(section, original_minor=original, current_minor=current)
                assert (event.kind, event.source, event.reason) == (
                    LimitEventKind.RESTORE,
                    REVIEW_SOURCE,
                    "portfolio_review",
                )
                assert (event.from_limit_minor, event.to_limit_minor) == (current, expected)
                assert account.current_limit_minor == row.limit_after_minor == expected
                assert account.status == (
                    AccountStatus.ACTIVE if expected >= original else AccountStatus.REDUCED
                )
                [audit] = session.exec(
                    select(AccountEvent).where(
                        AccountEvent.account_id == row.account_id, AccountEvent.kind == RESTORED_KIND
                    )
                ).all()
                assert (
                    audit.details["to_limit_minor"] == expected and audit.actor == "system:portfolio-review"
                )
            elif row.outcome == ReviewOutcome.INVITE:
                assert row.invitation_token and row.limit_event_id is None
                assert row.score is not None and section.invite_min_score <= row.score
                invited = session.get(CreditAccount, row.account_id)
                assert invited is not None and invited.current_limit_minor == before[row.account_id][0]
                notices = session.exec(
                    select(AccountNotice).where(
                        AccountNotice.account_id == row.account_id, AccountNotice.event == INVITED_KIND
                    )
                ).all()
                in_app = next(n for n in notices if n.channel == "IN_APP")
                assert f"invitation={row.invitation_token}" in in_app.body
                assert f"{PORTAL}/appeals/new?account={row.account_id}" in in_app.body
            else:
                assert row.limit_event_id is None and row.invitation_token is None
                if row.reason == Reason.OPEN_APPEAL:
                    assert row.score is None  # the appeal decides: not even scored
                if row.reason == Reason.KNOCKOUT:
                    assert row.reason_codes[0].startswith("KO_")

        # Restore notices in the customer's language, with the amounts.
        restored = [r for r in rows if r.outcome == ReviewOutcome.RESTORE]
        for row in restored:
            customer = session.get(Customer, row.customer_id)
            assert customer is not None
            [notice] = session.exec(
                select(AccountNotice).where(
                    AccountNotice.account_id == row.account_id,
                    AccountNotice.event == RESTORED_KIND,
                    AccountNotice.channel == "IN_APP",
                )
            ).all()
            assert notice.locale == ("zh-CN" if customer.locale.startswith("zh") else "en")
            assert (
                ("上调" in notice.body)
                if notice.locale == "zh-CN"
                else ("raised the credit limit" in notice.body)
            )

    # The same date again (a backfill, another workflow): every account found decided.
    totals = (
        _count(book, LimitEvent),
        _count(book, AccountNotice),
        _count(book, AccountEvent),
        _count(book, ReviewAction),
    )
    again = run_review(book, TODAY, "review-2")
    assert again.already_decided == again.examined > 0
    assert again.restored == again.invited == again.nothing == 0
    assert totals == (
        _count(book, LimitEvent),
        _count(book, AccountNotice),
        _count(book, AccountEvent),
        _count(book, ReviewAction),
    )
    # The same run retried (its own rows): counted as what it did, nothing done again.
    retried = run_review(book, TODAY, "review-1")
    assert retried.already_decided == 0
    assert retried.by_reason.get(Reason.INVITE_SCORE.value) == counts.by_reason[Reason.INVITE_SCORE.value]
    assert _count(book, LimitEvent) == totals[0]


def test_an_invitation_is_not_repeated_within_the_cooldown(book: Engine) -> None:
    first = run_review(book, TODAY, "review-1")
    later = run_review(book, TODAY + timedelta(days=10), "review-2")
    assert later.by_reason.get(Reason.INVITED_RECENTLY.value, 0) > 0
    assert later.invited == 0 or later.invited < first.invited
    with session_scope(book, read_only=True) as session:
        twice = session.exec(
            select(ReviewAction.account_id)
            .where(ReviewAction.outcome == ReviewOutcome.INVITE.value)
            .group_by(col(ReviewAction.account_id))
            .having(func.count() > 1)
        ).all()
    assert twice == []


def test_an_account_the_review_restored_cannot_be_appealed_until_cut_again(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(Customer(id="c-r1", name="R One", locale="en"))
        session.flush()
        session.add(
            CreditAccount(
                id="a-r1",
                customer_id="c-r1",
                status=AccountStatus.REDUCED,
                original_limit_minor=5_000_000,
                current_limit_minor=3_000_000,
                opened_on=date(2024, 1, 1),
            )
        )
        session.flush()
        session.add(
            LimitEvent(
                account_id="a-r1",
                kind=LimitEventKind.RESTORE,
                from_limit_minor=1_000_000,
                to_limit_minor=3_000_000,
                reason="portfolio_review",
                source=REVIEW_SOURCE,
                created_at=AT,
            )
        )
    with session_scope(engine, read_only=True) as session:
        refused = check_eligibility(session, "a-r1", TODAY)
    assert not refused.eligible and refused.reason_code == "restored_by_review"
    with session_scope(engine) as session:
        session.add(
            LimitEvent(
                account_id="a-r1",
                kind=LimitEventKind.REDUCE,
                from_limit_minor=3_000_000,
                to_limit_minor=2_000_000,
                reason="multi_lending",
                source="limit-action",
                created_at=AT + timedelta(days=1),
            )
        )
    with session_scope(engine, read_only=True) as session:
        assert check_eligibility(session, "a-r1", TODAY).eligible


@pytest.mark.parametrize(
    ("share", "cap", "original", "current", "expected"),
    [
        (Decimal(1), 2_000_000, 1_000_000, 0, 1_000_000),  # frozen, small: back to the original
        (Decimal(1), 2_000_000, 5_000_000, 0, 2_000_000),  # at most the cap above the current limit
        (Decimal("0.8"), 2_000_000, 1_000_000, 500_000, 800_000),  # up to the share
        (Decimal("0.5"), 2_000_000, 1_000_000, 700_000, 700_000),  # never down
    ],
)
def test_restore_amount(share: Decimal, cap: int, original: int, current: int, expected: int) -> None:
    section = PortfolioReview(
        restore_min_score=200, invite_min_score=150, restore_to_share=share, max_restore_minor=cap
    )
    assert restore_amount(section, original_minor=original, current_minor=current) == expected


def test_a_retried_batch_meets_again_what_its_run_restored_in_full(book: Engine) -> None:
    """The page of a retried batch (core/lender/review.py `batch_account_ids`): an account this
    run restored in full is ACTIVE, no longer restricted, yet met again after the cursor and
    counted as restored; another run's accounts are not added."""
    with session_scope(book, read_only=True) as session:
        before = restricted_account_ids(session, after=None, limit=1_000)
    run_review(book, TODAY, "review-1")
    with session_scope(book, read_only=True) as session:
        after = restricted_account_ids(session, after=None, limit=1_000)
        full = sorted(set(before) - set(after))
        assert full, "no account restored in full"
        cursor = before[before.index(full[0]) - 1] if before.index(full[0]) else None
        page = batch_account_ids(
            session, after=cursor, limit=len(before), run_date=TODAY, decided_by="review-1"
        )
        assert page == [a for a in before if cursor is None or a > cursor]
        # Limited, in the cursor's order.
        assert (
            batch_account_ids(session, after=cursor, limit=3, run_date=TODAY, decided_by="review-1")
            == page[:3]
        )
        # A first attempt, or another run: the restricted accounts only.
        assert batch_account_ids(session, after=cursor, limit=1_000, run_date=TODAY) == [
            a for a in after if cursor is None or a > cursor
        ]
        assert batch_account_ids(
            session, after=cursor, limit=1_000, run_date=TODAY, decided_by="review-2"
        ) == [a for a in after if cursor is None or a > cursor]
    # The restored account met again by the same run: counted as what it was, nothing done twice.
    policy = load_default_policy()
    with session_scope(book, read_only=True) as session:
        facts = batch_facts(session, [full[0]], TODAY)
    again = review_account(
        book,
        full[0],
        facts[full[0]],
        run_date=TODAY,
        workflow_id="review-1",
        policy=policy,
        at=AT,
        portal_url=PORTAL,
    )
    assert again.outcome is ReviewOutcome.RESTORE and again.restored_minor > 0 and again.notice_ids == []
