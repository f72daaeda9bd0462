"""The customer portal on the real app, worker, dev server, S3 and both databases, driven as a
browser would: cookies, forms with their CSRF token, htmx's polling and portal.js's uploads."""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlmodel import col, select

from core.auth import Role
from core.clock import FixedClock
from core.db import session_scope
from core.db.case_tables import Appeal, AppealEvent, Document, Notification
from core.db.ledger_tables import AccountStatus, Bill, CreditAccount
from core.policy.loader import load_default_policy
from core.settings import Settings
from core.status import AppealStatus
from core.storage import ensure_bucket, make_s3_client
from tests.api.conftest import Api
from tests.api.pages.helpers import QueryCounter, csrf_from, sign_in
from tests.api.review_helpers import appeal_in_review, upload_missing
from tests.api.test_appeal_outcomes_api import _decide_partly
from tests.conftest import make_settings
from tests.documents import recent_statement_csv
from tests.eventually import eventually
from tests.factories import make_customer

pytestmark = pytest.mark.asyncio(loop_scope="session")

# One bill 95 days late (since repaid): the severe-delinquency knock-out declines automatically.
SEVERELY_LATE = (0, 0, 95, 0, 0, 0, 0, 0, 0, 0, 0, 0)
EXECUTABLE = b"\x7fELF\x02\x01\x01" + b"\0" * 64
_KEY = re.compile(r'name="idempotency_key" value="([0-9a-f-]{36})"')
_POLL = re.compile(r'hx-get="/app/appeals/[0-9a-f-]+/live\?v=([^"]+)"')


@pytest.fixture
def settings(tmp_path: Path, s3_endpoint: str) -> Settings:
    """As the API tests' settings, with an hour for documents: a page test may take a while
    before it uploads, and must not see its appeal expire."""
    s = make_settings(tmp_path, s3_endpoint_url=s3_endpoint, document_deadline=timedelta(hours=1))
    ensure_bucket(make_s3_client(s), s.s3_bucket)
    return s


@asynccontextmanager
async def browser(api: Api) -> AsyncIterator[httpx.AsyncClient]:
    """Another browser on the same app: its own cookies."""
    transport = httpx.ASGITransport(app=api.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


def _appeal_row(api: Api, appeal_id: str) -> Appeal:
    with session_scope(api.engine, read_only=True) as session:
        appeal = session.get(Appeal, appeal_id)
        assert appeal is not None
        return appeal


def _appeals_of(api: Api, customer_id: str) -> list[Appeal]:
    with session_scope(api.engine, read_only=True) as session:
        return list(session.exec(select(Appeal).where(Appeal.customer_id == customer_id)).all())


async def _wait_status(api: Api, appeal_id: str, *statuses: str) -> Appeal:
    return await eventually(
        lambda: _appeal_row(api, appeal_id),
        lambda appeal: appeal.status in statuses,
        what=f"appeal {appeal_id} to be {' or '.join(statuses)}",
    )


def _events_of(api: Api, appeal_id: str) -> list[str]:
    """The events of the customer's in-app notices on the appeal."""
    with session_scope(api.engine, read_only=True) as session:
        return list(
            session.exec(
                select(Notification.event).where(
                    Notification.appeal_id == appeal_id, Notification.channel == "IN_APP"
                )
            ).all()
        )


async def _wait_notice(api: Api, appeal_id: str, event: str) -> None:
    """Until the customer's in-app notice of `event` is written: the workflow writes it just
    after the status it announces, and the page changes again when it arrives."""
    await eventually(
        lambda: _events_of(api, appeal_id),
        lambda seen: event in seen,
        what=f"the {event} notice of {appeal_id}",
    )


async def _form(http: httpx.AsyncClient, account_id: str) -> tuple[str, str]:
    """The new-appeal form's CSRF token and idempotency key."""
    page = await http.get("/app/appeals/new", params={"account": account_id})
    assert page.status_code == 200, page.text
    found = _KEY.search(page.text)
    assert found, "the form has no idempotency key"
    return csrf_from(page.text), found.group(1)


async def _submit(
    http: httpx.AsyncClient, account_id: str, limit: str = "6000", statement: str = "I have repaid."
) -> str:
    token, key = await _form(http, account_id)
    answer = await http.post(
        "/app/appeals",
        data={
            "csrf_token": token,
            "account_id": account_id,
            "idempotency_key": key,
            "requested_limit": limit,
            "statement": statement,
        },
    )
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith("/app/appeals/")
    return location.rsplit("/", 1)[-1]


def _poll_token(html: str) -> str:
    found = _POLL.search(html)
    assert found, "the page does not poll"
    return found.group(1)


def _text(html: str) -> str:
    """The page's text as a person reads it (tags dropped, spaces folded)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def _upload(
    http: httpx.AsyncClient,
    appeal_id: str,
    csrf: str,
    name: str,
    body: bytes,
    content_type: str,
    doc_type: str,
) -> httpx.Response:
    """As portal.js sends a file: the CSRF header, answers as fragments."""
    return await http.post(
        f"/app/appeals/{appeal_id}/documents",
        headers={"X-CSRF-Token": csrf, "HX-Request": "true"},
        data={"doc_type": doc_type},
        files={"file": (name, body, content_type)},
    )


# -- my accounts -----------------------------------------------------------------------------


async def test_accounts_page_says_what_each_account_can_do(api: Api) -> None:
    eligible = make_customer(api.engine, original_limit_minor=800_000)
    owing = make_customer(api.engine, unpaid_minor=23_456)
    active = make_customer(api.engine, status="ACTIVE", current_limit_minor=800_000)  # type: ignore[arg-type]

    await sign_in(api.http, eligible.customer_id, "customer")
    page = await api.http.get("/app")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    assert page.text.count("<h1>") == 1
    assert f'href="/app/appeals/new?account={eligible.account_id}"' in page.text
    assert f'Appeal<span class="visually-hidden"> the limit of account {eligible.account_id}' in page.text
    assert "¥8,000.00" in page.text and "Frozen" in page.text
    assert "You have not appealed yet." in page.text

    await sign_in(api.http, owing.customer_id, "customer")
    page = await api.http.get("/app")
    text = _text(page.text)
    assert "/app/appeals/new" not in page.text
    assert "An overdue balance of ¥234.56 is still unpaid; repay it before appealing." in text
    assert "Overdue amount to repay: ¥234.56" in text

    await sign_in(api.http, active.customer_id, "customer")
    page = await api.http.get("/app")
    assert "/app/appeals/new" not in page.text
    assert "neither frozen nor below its original limit" in page.text


def _declined_at(api: Api, appeal_id: str) -> datetime:
    with session_scope(api.engine, read_only=True) as session:
        return session.exec(
            select(AppealEvent.at).where(
                AppealEvent.appeal_id == appeal_id, AppealEvent.to_status == AppealStatus.DECLINED
            )
        ).one()


async def test_a_declined_appeal_gives_its_reasons_and_the_day_a_new_one_is_accepted(api: Api) -> None:
    appeal_id, _, task_id, customer_id = await appeal_in_review(api, seed=931)
    reviewer = api.auth(Role.REVIEWER, "r-portal")
    assert (await api.http.post(f"/review-tasks/{task_id}/claim", headers=reviewer)).status_code == 200
    declined = await api.http.post(
        f"/review-tasks/{task_id}/decision",
        headers=reviewer,
        json={"outcome": "DECLINE", "reasons": ["RC_LATE_PAYMENTS"]},
    )
    assert declined.status_code == 200, declined.text
    closed = await _wait_status(api, appeal_id, "CLOSED")
    declined_at = _declined_at(api, appeal_id)  # on the workflow's clock
    ends_on = declined_at.date() + timedelta(days=load_default_policy().policy.appeals.decline_cooldown_days)
    shown_on = f"{ends_on.day} {ends_on:%b %Y}"
    reason = load_default_policy().policy.reasons["RC_LATE_PAYMENTS"].en

    await sign_in(api.http, customer_id, "customer")
    # The pages judge the cool-down on the API's clock: the day of the decision, whatever the
    # machine's date says (a faked system clock moves this process, not the workflow server).
    api.set_business_date(FixedClock(declined_at))
    page = await api.http.get(f"/app/appeals/{appeal_id}")
    text = _text(page.text)
    assert "Closed: declined" in text and "Declined by a reviewer." in text
    assert reason in page.text
    assert f"You may appeal this account again from {shown_on} ." in text
    assert "RC_LATE_PAYMENTS" not in page.text and "CLOSED" not in text  # words, not codes

    home = _text((await api.http.get("/app")).text)
    assert f"A new appeal is accepted from {shown_on} ." in home
    assert "Closed: declined" in home

    # A form sent anyway is refused with the date, and what was typed stays in the form.
    account_id = closed.account_id
    blocked = await api.http.get("/app/appeals/new", params={"account": account_id})
    assert f"A new appeal is accepted from {shown_on} ." in _text(blocked.text)
    assert 'action="/app/appeals"' not in blocked.text  # nothing to fill in
    token, key = csrf_from(blocked.text), "k-cooldown"
    api.set_business_date(FixedClock(datetime.combine(ends_on, time(12), UTC) - timedelta(days=1)))
    refused = await api.http.post(
        "/app/appeals",
        data={
            "csrf_token": token,
            "account_id": account_id,
            "idempotency_key": key,
            "requested_limit": "5000",
            "statement": "Please look again.",
        },
    )
    assert refused.status_code == 409, refused.text
    assert f"A new appeal is accepted from {shown_on} ." in _text(refused.text)
    assert 'value="5000"' in refused.text and "Please look again.</textarea>" in refused.text


# -- a new appeal ----------------------------------------------------------------------------


async def test_submitting_the_form_creates_one_appeal_per_key(api: Api) -> None:
    c = make_customer(api.engine, original_limit_minor=800_000)
    await sign_in(api.http, c.customer_id, "customer")
    form = await api.http.get("/app/appeals/new", params={"account": c.account_id})
    # Bounded by the original limit in the browser too; every input has its label.
    assert 'max="8000.00"' in form.text and 'min="0.01"' in form.text and 'step="0.01"' in form.text
    for field in ("requested-limit", "statement"):
        assert f'<label for="{field}">' in form.text
    token, key = csrf_from(form.text), _KEY.search(form.text).group(1)  # type: ignore[union-attr]
    assert key != _KEY.search((await api.http.get(f"/app/appeals/new?account={c.account_id}")).text).group(1)  # type: ignore[union-attr]

    data = {
        "csrf_token": token,
        "account_id": c.account_id,
        "idempotency_key": key,
        "requested_limit": "6,000.50",
        "statement": "I have repaid everything.",
    }
    # A double click: both posts at once, then a third one late.
    first, second = await asyncio.gather(
        api.http.post("/app/appeals", data=data), api.http.post("/app/appeals", data=data)
    )
    third = await api.http.post("/app/appeals", data=data)
    assert {first.status_code, second.status_code, third.status_code} == {303}, (first.text, second.text)
    locations = {r.headers["location"] for r in (first, second, third)}
    assert len(locations) == 1
    (appeal,) = _appeals_of(api, c.customer_id)
    assert locations == {f"/app/appeals/{appeal.id}"}
    assert (
        appeal.requested_limit_minor == 600_050 and appeal.customer_statement == "I have repaid everything."
    )
    assert appeal.idempotency_key == key

    # Another form (another key) for the same account: refused, with a link to the open appeal.
    refused = await api.http.post("/app/appeals", data={**data, "idempotency_key": "another-form"})
    assert refused.status_code == 409
    assert "This account already has an appeal in progress." in refused.text
    assert f'<a href="/app/appeals/{appeal.id}">Go to the appeal in progress</a>' in refused.text
    assert "I have repaid everything.</textarea>" in refused.text

    # The home page links the account to its appeal, and lists the appeal in words.
    home = _text((await api.http.get("/app")).text)
    assert "See the appeal in progress" in home and "/app/appeals/new" not in home
    assert "Asked for ¥6,000.50" in home


async def test_the_form_keeps_what_was_typed_and_says_what_is_wrong(api: Api) -> None:
    c = make_customer(api.engine, original_limit_minor=100_000)
    owing = make_customer(api.engine, unpaid_minor=5_000)
    await sign_in(api.http, c.customer_id, "customer")
    token, key = await _form(api.http, c.account_id)
    data = {"csrf_token": token, "account_id": c.account_id, "idempotency_key": key, "statement": "Dear team"}

    above = await api.http.post("/app/appeals", data={**data, "requested_limit": "1000.01"})
    assert above.status_code == 422
    assert "cannot be above the original limit of ¥1,000.00" in _text(above.text)
    assert 'value="1000.01"' in above.text and "Dear team</textarea>" in above.text
    # The error is tied to its field for assistive technology, and summarised with a link.
    assert 'aria-describedby="requested-limit-hint requested-limit-error"' in above.text
    assert 'aria-invalid="true"' in above.text and 'href="#requested-limit"' in above.text

    garbled = await api.http.post("/app/appeals", data={**data, "requested_limit": "lots"})
    assert garbled.status_code == 422 and "Enter an amount in yuan" in garbled.text
    assert 'value="lots"' in garbled.text
    assert _appeals_of(api, c.customer_id) == []

    await sign_in(api.http, owing.customer_id, "customer")
    page = await api.http.get("/app/appeals/new", params={"account": owing.account_id})
    assert "This account cannot be appealed yet." in page.text and "¥50.00" in page.text
    assert 'action="/app/appeals"' not in page.text  # nothing to fill in
    token, key = csrf_from(page.text), "k-owing"
    refused = await api.http.post(
        "/app/appeals",
        data={
            "csrf_token": token,
            "account_id": owing.account_id,
            "idempotency_key": key,
            "requested_limit": "100",
            "statement": "Keep me",
        },
    )
    assert refused.status_code == 409 and "An overdue balance of ¥50.00 is still unpaid" in refused.text
    assert "Keep me</textarea>" in refused.text and _appeals_of(api, owing.customer_id) == []

    # Another customer's account is not found, as the API says.
    other = await api.http.get("/app/appeals/new", params={"account": c.account_id})
    assert other.status_code == 404 and "Page not found" in other.text


# -- the appeal page -------------------------------------------------------------------------


async def test_uploads_and_the_live_status(api: Api) -> None:
    c = make_customer(api.engine, original_limit_minor=800_000)
    csrf = await sign_in(api.http, c.customer_id, "customer")
    appeal_id = await _submit(api.http, c.account_id, limit="6000")
    awaiting = await _wait_status(api, appeal_id, "AWAITING_DOCUMENTS")
    await _wait_notice(api, appeal_id, "appeal_received")
    api.set_business_date(FixedClock(awaiting.updated_at))  # the deadline's start, on the workflow's clock

    page = await api.http.get(f"/app/appeals/{appeal_id}")
    text = _text(page.text)
    assert "Waiting for your documents" in text and "Documents due by" in text
    assert "less than a day left" in text  # an hour, in these tests
    assert "bank statement covering the last 3 full months" in text and "Not received yet" in text
    assert 'type="file"' in page.text and 'capture="environment"' in page.text
    assert 'hx-trigger="every 2500ms, portal:refresh from:body"' in page.text
    token = _poll_token(page.text)
    csrf = csrf_from(page.text)

    # Nothing changed: 204 and nothing to swap.
    live = await api.http.get(
        f"/app/appeals/{appeal_id}/live", params={"v": token}, headers={"HX-Request": "true"}
    )
    assert live.status_code == 204 and live.content == b""

    # Without the CSRF token nothing is stored.
    forged = await api.http.post(
        f"/app/appeals/{appeal_id}/documents",
        data={"doc_type": "BANK_STATEMENT"},
        files={"file": ("s.csv", b"a,b\n", "text/csv")},
    )
    assert forged.status_code == 403
    # A file the upload gate refuses gets the reason at once, in the viewer's words.
    gate = await _upload(
        api.http, appeal_id, csrf, "a.exe", b"MZ\x90\x00", "application/x-msdownload", "OTHER"
    )
    assert gate.status_code == 415 and "upload a PDF, PNG, JPEG or CSV file" in gate.text
    assert gate.headers["hx-retarget"] == "#page-message"

    # A file the checks refuse: its reason appears next to it once verified.
    bad = await _upload(
        api.http, appeal_id, csrf, "statement.pdf", EXECUTABLE, "application/pdf", "BANK_STATEMENT"
    )
    assert bad.status_code == 201 and "Received" in bad.text

    async def changed() -> str:
        answer = await api.http.get(f"/app/appeals/{appeal_id}/live", params={"v": token})
        return answer.text if answer.status_code == 200 else ""

    fragment = await eventually(changed, lambda html: "Refused" in html, what="the bad file's verdict")
    assert fragment.startswith('<div id="appeal-live"') and "<html" not in fragment
    assert 'id="status-announcer" hx-swap-oob="innerHTML"' in fragment
    with session_scope(api.engine, read_only=True) as session:
        (document,) = session.exec(select(Document).where(Document.appeal_id == appeal_id)).all()
    assert document.state == "REJECTED" and document.rejection_reason
    assert document.rejection_reason in fragment and "statement.pdf" in fragment

    # A good file through the plain form (no script): the token travels as a form field.
    sent = await api.http.post(
        f"/app/appeals/{appeal_id}/documents",
        data={"csrf_token": csrf, "doc_type": "BANK_STATEMENT"},
        files={"file": ("statement.csv", recent_statement_csv(seed=932), "text/csv")},
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"/app/appeals/{appeal_id}?sent=upload"
    final = await _wait_status(api, appeal_id, "CLOSED", "PENDING_REVIEW")
    assert final.status == "CLOSED", "a clean record with a good statement is approved automatically"

    page = await api.http.get(f"/app/appeals/{appeal_id}")
    text = _text(page.text)
    assert "Approved." in text and "New limit ¥6,000.00" in text
    assert "Your new limit of ¥6,000.00 was put in place." in text
    assert "Your credit limit has been restored" in text  # the notice
    assert 'id="upload-panel"' not in page.text and "Withdraw this appeal" not in page.text


async def test_a_partial_approval_shows_the_new_limit(api: Api) -> None:
    appeal_id, me, task_id, customer_id = await appeal_in_review(
        api, seed=934, original_limit_minor=800_000, requested_limit_minor=600_000
    )
    await _decide_partly(api, appeal_id, me, task_id, 400_000)
    await _wait_status(api, appeal_id, "CLOSED")
    await _wait_notice(api, appeal_id, "limit_restored")

    await sign_in(api.http, customer_id, "customer")
    page = await api.http.get(f"/app/appeals/{appeal_id}")
    text = _text(page.text)
    assert "Closed: approved in part, new limit ¥4,000.00" in text
    assert "Approved in part." in text and "New limit ¥4,000.00" in text and "You asked for ¥6,000.00" in text
    assert "You may appeal again for a higher limit at any time." in text
    assert "A reviewer approved the appeal in part." in text
    assert "Your appeal was approved in part" in text  # the notice
    # The account is still below its original limit: it may be appealed again at once.
    home = await api.http.get("/app")
    assert f"/app/appeals/new?account={_appeal_row(api, appeal_id).account_id}" in home.text


async def test_an_ineligible_appeal_says_why_and_what_is_owed(api: Api) -> None:
    # The JSON API takes an appeal the workflow then finds ineligible; its page says why.
    c = make_customer(api.engine, unpaid_minor=23_456)
    created = await api.http.post(
        "/appeals",
        json={"account_id": c.account_id, "requested_limit_minor": 1000},
        headers=api.auth(Role.CUSTOMER, c.customer_id),
    )
    appeal_id = created.json()["id"]
    await _wait_status(api, appeal_id, "INELIGIBLE")
    await _wait_notice(api, appeal_id, "ineligible")
    await sign_in(api.http, c.customer_id, "customer")
    text = _text((await api.http.get(f"/app/appeals/{appeal_id}")).text)
    assert "Not accepted: this account cannot be appealed yet" in text
    assert "An overdue balance of ¥234.56 is still unpaid; repay it before appealing." in text
    assert "Overdue amount to repay: ¥234.56" in text and "Nothing more happens to this appeal." in text
    assert "Withdraw this appeal" not in text and "Your appeal cannot go ahead yet" in text


async def test_withdrawing_with_a_confirm_step(api: Api) -> None:
    c = make_customer(api.engine)
    await sign_in(api.http, c.customer_id, "customer")
    appeal_id = await _submit(api.http, c.account_id)
    await _wait_status(api, appeal_id, "AWAITING_DOCUMENTS")
    page = await api.http.get(f"/app/appeals/{appeal_id}")
    assert f'href="/app/appeals/{appeal_id}/withdraw"' in page.text

    confirm = await api.http.get(f"/app/appeals/{appeal_id}/withdraw")
    assert confirm.status_code == 200
    assert "Yes, withdraw my appeal" in confirm.text and "No, keep my appeal" in confirm.text
    assert '<label for="withdraw-reason">' in confirm.text
    done = await api.http.post(
        f"/app/appeals/{appeal_id}/withdraw",
        data={"csrf_token": csrf_from(confirm.text), "reason": "Sorted it out"},
    )
    assert done.status_code == 303 and done.headers["location"] == f"/app/appeals/{appeal_id}?sent=withdraw"
    withdrawn = await _wait_status(api, appeal_id, "WITHDRAWN")
    assert withdrawn.closed_at is not None
    # "Just closed" and "later" on the API's clock, from the close on the workflow's clock.
    api.set_business_date(FixedClock(withdrawn.closed_at))

    page = await api.http.get(f"/app/appeals/{appeal_id}?sent=withdraw")
    text = _text(page.text)
    assert "We received your request to withdraw." in text
    assert "Withdrawn by you" in text and "Your note: Sorted it out" in text
    assert "You withdrew the appeal." in text
    # Just closed: it still polls for the notice that announces the withdrawal; later it stops.
    assert "hx-trigger" in page.text
    api.set_business_date(FixedClock(withdrawn.closed_at + timedelta(minutes=5)))
    later = await api.http.get(f"/app/appeals/{appeal_id}")
    assert "hx-trigger" not in later.text and "hx-get" not in later.text

    again = await api.http.post(
        f"/app/appeals/{appeal_id}/withdraw", data={"csrf_token": csrf_from(page.text)}
    )
    assert again.status_code == 409 and "can no longer be withdrawn" in again.text


async def test_asking_for_a_human_review_after_an_automatic_decline(api: Api) -> None:
    c = make_customer(api.engine, days_past_due=SEVERELY_LATE)
    await sign_in(api.http, c.customer_id, "customer")
    appeal_id = await _submit(api.http, c.account_id)
    await _wait_status(api, appeal_id, "AWAITING_DOCUMENTS")
    await upload_missing(api, appeal_id, api.auth(Role.CUSTOMER, c.customer_id), seed=933)
    declined = await _wait_status(api, appeal_id, "AUTO_DECLINED")
    # The window is counted on the API's clock from the decline on the workflow's: pin the
    # former to the latter (a faked system clock moves this process, not the workflow server).
    api.set_business_date(FixedClock(declined.updated_at))

    page = await api.http.get(f"/app/appeals/{appeal_id}")
    text = _text(page.text)
    reason = load_default_policy().policy.reasons["RC_SEVERE_DELINQUENCY"].en
    assert "Declined by our automatic checks." in text and reason in page.text
    window_ends = declined.updated_at + load_default_policy().policy.human_review_window
    assert "You can ask once, until" in text and "14 days left" in text
    local = window_ends.astimezone(ZoneInfo("Asia/Shanghai"))
    assert f"{local.day} {local:%b %Y, %H:%M}" in text
    assert "You may appeal this account again from" in text
    assert '<label for="human-review-reason">' in page.text

    asked = await api.http.post(
        f"/app/appeals/{appeal_id}/human-review",
        data={"csrf_token": csrf_from(page.text), "reason": "I was in hospital"},
    )
    assert asked.status_code == 303, asked.text
    assert asked.headers["location"] == f"/app/appeals/{appeal_id}?sent=human-review"
    await _wait_status(api, appeal_id, "PENDING_REVIEW")
    page = await api.http.get(f"/app/appeals/{appeal_id}")
    text = _text(page.text)
    assert "Waiting for a reviewer" in text
    assert "You asked for a person to review the automatic decision." in text
    assert 'id="human-review-form"' not in page.text

    # Only once: a second request is refused with a page, not an error trace.
    again = await api.http.post(
        f"/app/appeals/{appeal_id}/human-review", data={"csrf_token": csrf_from(page.text)}
    )
    assert again.status_code == 409 and "This has changed in the meantime" in again.text


async def test_another_customers_appeal_is_a_404_page(api: Api) -> None:
    owner = make_customer(api.engine)
    await sign_in(api.http, owner.customer_id, "customer")
    appeal_id = await _submit(api.http, owner.account_id)
    await _wait_status(api, appeal_id, "AWAITING_DOCUMENTS")

    stranger = make_customer(api.engine)
    async with browser(api) as http:
        csrf = await sign_in(http, stranger.customer_id, "customer")
        for url in (
            f"/app/appeals/{appeal_id}",
            f"/app/appeals/{appeal_id}/live",
            f"/app/appeals/{appeal_id}/withdraw",
        ):
            answer = await http.get(url)
            assert answer.status_code == 404, url
            assert "Page not found" in answer.text and owner.account_id not in answer.text
        page = await http.get("/app")
        csrf = csrf_from(page.text)
        for url in (f"/app/appeals/{appeal_id}/withdraw", f"/app/appeals/{appeal_id}/human-review"):
            assert (await http.post(url, data={"csrf_token": csrf})).status_code == 404, url
        upload = await _upload(http, appeal_id, csrf, "s.csv", b"a,b\n1,2\n", "text/csv", "BANK_STATEMENT")
        assert upload.status_code == 404
        # The JSON API says the same to the same person.
        api_answer = await http.get(
            f"/appeals/{appeal_id}", headers=api.auth(Role.CUSTOMER, stranger.customer_id)
        )
        assert api_answer.status_code == 404
    assert _appeal_row(api, appeal_id).status == "AWAITING_DOCUMENTS"

    async with browser(api) as http:
        await sign_in(http, "r-1", "reviewer")
        assert (await http.get(f"/app/appeals/{appeal_id}")).status_code == 403
        assert (await http.get("/app")).status_code == 403
    async with browser(api) as http:
        nobody = await http.get(f"/app/appeals/{appeal_id}")
        assert nobody.status_code == 303 and nobody.headers["location"].startswith("/sign-in?next=")


async def test_pages_in_chinese(api: Api) -> None:
    c = make_customer(api.engine, locale="zh-CN", original_limit_minor=1_200_000)
    owing = make_customer(api.engine, locale="zh-CN", unpaid_minor=23_456)
    await sign_in(api.http, c.customer_id, "customer")
    home = await api.http.get("/app")
    assert '<html lang="zh-CN">' in home.text and "我的账户与申诉" in home.text
    assert "¥12,000.00" in home.text and "已冻结" in home.text

    appeal_id = await _submit(api.http, c.account_id, limit="10000", statement="已还清")
    await _wait_status(api, appeal_id, "AWAITING_DOCUMENTS")
    page = await api.http.get(f"/app/appeals/{appeal_id}")
    text = _text(page.text)
    assert "等待您上传材料" in text and "材料截止时间" in text and "近3个完整自然月的银行流水" in text
    assert "您提交了申诉，申请额度 ¥10,000.00。" in text
    assert "撤回此申诉" in text and "上传" in text
    assert re.search(r"\d{4}年\d{1,2}月\d{1,2}日 \d\d:\d\d", text)
    # The refused file's reason in Chinese.
    csrf = csrf_from(page.text)
    bad = await _upload(
        api.http, appeal_id, csrf, "statement.pdf", EXECUTABLE, "application/pdf", "BANK_STATEMENT"
    )
    assert bad.status_code == 201 and "已收到" in bad.text
    gate = await _upload(api.http, appeal_id, csrf, "a.exe", b"MZ", "application/x-msdownload", "OTHER")
    assert gate.status_code == 415 and "不支持此类文件" in gate.text

    async def reason_zh() -> str:
        with session_scope(api.engine, read_only=True) as session:
            document = session.exec(select(Document).where(col(Document.appeal_id) == appeal_id)).one()
            return document.rejection_reason_zh or ""

    zh = await eventually(reason_zh, what="the refused file's reason in Chinese")
    page = await api.http.get(f"/app/appeals/{appeal_id}")
    assert zh in page.text and "未通过" in page.text

    # The switch wins over the customer's locale.
    switched = await api.http.post(
        "/language", data={"lang": "en", "next": f"/app/appeals/{appeal_id}", "csrf_token": csrf}
    )
    assert switched.status_code == 303
    english = await api.http.get(f"/app/appeals/{appeal_id}")
    assert "Waiting for your documents" in english.text

    async with browser(api) as http:
        await sign_in(http, owing.customer_id, "customer")
        owing_home = _text((await http.get("/app")).text)
        assert "您仍有逾期欠款 ¥234.56 未还清，请还清后再申诉。" in owing_home
        assert "待还逾期金额： ¥234.56" in owing_home


# -- the read path: fixed queries, no Temporal -----------------------------------------------


class NoTemporal:
    """A gateway whose every use fails the test: page reads must not reach Temporal."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a read path used the Temporal gateway ({name})")


@contextmanager
def without_temporal(api: Api) -> Iterator[None]:
    real = api.app.state.gateway
    api.app.state.gateway = NoTemporal()
    try:
        yield
    finally:
        api.app.state.gateway = real


class PageQueries(QueryCounter):
    """The statements the app runs for a page: not the worker's (its activities share the
    engine and run in the worker's thread pool), not SQLite's BEGIN (core/db/engine.py issues
    it itself; PostgreSQL has none)."""

    def _record(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if threading.current_thread().name.startswith("ThreadPoolExecutor"):
            return
        if not statement.lstrip().upper().startswith("BEGIN"):
            self.statements.append(statement)


PAGE_QUERIES = 7  # locale, appeal, change token, events, documents, checklist, notices
LIVE_UNCHANGED_QUERIES = 2  # appeal (whose it is), change token
LIVE_CHANGED_QUERIES = 7  # the same, then the locale and the four lists


async def test_the_appeal_page_and_its_live_part_make_a_fixed_number_of_queries(api: Api) -> None:
    c = make_customer(api.engine)
    csrf = await sign_in(api.http, c.customer_id, "customer")
    appeal_id = await _submit(api.http, c.account_id)
    await _wait_status(api, appeal_id, "AWAITING_DOCUMENTS")
    await _wait_notice(api, appeal_id, "appeal_received")

    async def measure() -> tuple[int, int, int]:
        with without_temporal(api):
            with PageQueries(api.engine) as page_counter:
                page = await api.http.get(f"/app/appeals/{appeal_id}")
            assert page.status_code == 200
            token = _poll_token(page.text)
            with PageQueries(api.engine) as unchanged_counter:
                unchanged = await api.http.get(f"/app/appeals/{appeal_id}/live", params={"v": token})
            assert unchanged.status_code == 204
            with PageQueries(api.engine) as changed_counter:
                changed = await api.http.get(f"/app/appeals/{appeal_id}/live", params={"v": "old"})
            assert changed.status_code == 200
        return page_counter.count, unchanged_counter.count, changed_counter.count

    before = await measure()
    # More documents, events and notices: the same number of queries.
    for n in range(3):
        bad = await _upload(
            api.http, appeal_id, csrf, f"s{n}.pdf", EXECUTABLE + bytes([n]), "application/pdf", "OTHER"
        )
        assert bad.status_code == 201

    async def rejected() -> int:
        page = await api.http.get(f"/app/appeals/{appeal_id}")
        return page.text.count('class="badge bad">Refused')

    await eventually(rejected, lambda n: n >= 3, what="three refused files")
    await eventually(
        lambda: _events_of(api, appeal_id).count("document_rejected"),
        lambda n: n == 3,
        what="the three refusal notices",
    )
    after = await measure()
    assert before == after == (PAGE_QUERIES, LIVE_UNCHANGED_QUERIES, LIVE_CHANGED_QUERIES), (before, after)


async def test_the_accounts_page_makes_the_same_queries_for_one_account_or_several(api: Api) -> None:
    one = make_customer(api.engine)
    several = make_customer(api.engine, unpaid_minor=10_000)
    with session_scope(api.engine) as session:
        for n in range(3):  # more accounts of the same customer, one of them owing
            session.add(
                CreditAccount(
                    id=f"{several.account_id}-{n}",
                    customer_id=several.customer_id,
                    status=AccountStatus.REDUCED,
                    original_limit_minor=800_000,
                    current_limit_minor=200_000,
                    opened_on=date(2024, 1, 15),
                )
            )
        session.flush()
        session.add(
            Bill(account_id=f"{several.account_id}-0", due_date=date(2024, 3, 15), amount_due_minor=5_000)
        )

    async def count(customer_id: str) -> int:
        await sign_in(api.http, customer_id, "customer")
        with without_temporal(api), PageQueries(api.engine) as counter:
            page = await api.http.get("/app")
        assert page.status_code == 200
        return counter.count

    assert await count(one.customer_id) == await count(several.customer_id)
    page = await api.http.get("/app")
    assert page.text.count("Overdue amount to repay") == 2  # its first account and the -0 one
