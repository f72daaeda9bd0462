"""The portfolio review's invitation in the portal: `/app/appeals/new?account=ID&invitation=TOKEN`
pre-fills the original limit and carries the token; the appeal submitted from it records the
invitation on its audit trail; another customer's token pre-fills nothing."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from core.db import session_scope
from core.db.case_tables import Appeal, AppealEvent
from core.db.review_tables import ReviewAction, ReviewOutcome
from core.lender.review import INVITATION_ACCEPTED
from core.settings import Settings
from core.storage import ensure_bucket, make_s3_client
from tests.api.conftest import Api
from tests.api.pages.helpers import csrf_from, sign_in
from tests.conftest import make_settings
from tests.factories import make_customer

pytestmark = pytest.mark.asyncio(loop_scope="session")

_KEY = re.compile(r'name="idempotency_key" value="([0-9a-f-]{36})"')


@pytest.fixture
def settings(tmp_path: Path, s3_endpoint: str) -> Settings:
    s = make_settings(tmp_path, s3_endpoint_url=s3_endpoint)
    ensure_bucket(make_s3_client(s), s.s3_bucket)
    return s


async def test_an_invitation_prefills_the_form_and_is_recorded_on_the_appeal(api: Api) -> None:
    c = make_customer(api.engine, original_limit_minor=800_000)
    other = make_customer(api.engine, original_limit_minor=500_000)
    with session_scope(api.engine) as session:
        session.add(
            ReviewAction(
                run_date=date(2026, 6, 15),
                account_id=c.account_id,
                customer_id=c.customer_id,
                outcome=ReviewOutcome.INVITE.value,
                reason="score_at_or_above_invite",
                reason_codes=["RC_RECENT_DELINQUENCY"],
                score=190,
                original_limit_minor=800_000,
                limit_before_minor=400_000,
                invitation_token="tok-invite-1",
                workflow_id="portfolio-review-test",
                created_at=datetime(2026, 6, 15, 1, tzinfo=UTC),
            )
        )
    await sign_in(api.http, c.customer_id, "customer")
    form = await api.http.get(
        "/app/appeals/new", params={"account": c.account_id, "invitation": "tok-invite-1"}
    )
    assert form.status_code == 200
    assert 'name="invitation" value="tok-invite-1"' in form.text and 'value="8000"' in form.text
    # A token that is not this customer's, or none: the ordinary form.
    plain = await api.http.get("/app/appeals/new", params={"account": c.account_id, "invitation": "nope"})
    assert 'name="invitation"' not in plain.text
    too_long = await api.http.get(
        "/app/appeals/new", params={"account": c.account_id, "invitation": "x" * 65}
    )
    assert too_long.status_code == 422

    answer = await api.http.post(
        "/app/appeals",
        data={
            "csrf_token": csrf_from(form.text),
            "account_id": c.account_id,
            "idempotency_key": _KEY.search(form.text).group(1),  # type: ignore[union-attr]
            "requested_limit": "8000",
            "statement": "Invited by your review.",
            "invitation": "tok-invite-1",
        },
    )
    assert answer.status_code == 303, answer.text
    with session_scope(api.engine, read_only=True) as session:
        [appeal] = session.exec(select(Appeal).where(Appeal.customer_id == c.customer_id)).all()
        [event] = session.exec(
            select(AppealEvent).where(
                AppealEvent.appeal_id == appeal.id, AppealEvent.kind == INVITATION_ACCEPTED
            )
        ).all()
    assert appeal.requested_limit_minor == 800_000
    assert event.details["invitation"] == "tok-invite-1" and event.details["score"] == 190

    await sign_in(api.http, other.customer_id, "customer")
    theirs = await api.http.get(
        "/app/appeals/new", params={"account": other.account_id, "invitation": "tok-invite-1"}
    )
    assert theirs.status_code == 200 and 'name="invitation"' not in theirs.text
