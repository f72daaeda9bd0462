"""The reviewer console on the real app with a real worker, Temporal dev server and S3, on SQLite
and PostgreSQL: the queue (filters, sorts, keyset pages, counts, claim next), the case page
(charts with their tables, documents with preview links, the statement with its flagged row),
the actions (enabled or disabled with a reason, approve in part, decline with reason codes,
request information, four eyes), stale forms, Chinese, and the pages' fixed query counts
without a Temporal call."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import pytest_asyncio
from sqlmodel import col, select

from core.auth import Role
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.case_tables import Decision, ReviewTask, TaskStatus
from core.db.types import utcnow
from core.reviews.sla import ESCALATION_QUEUE
from tests.api.conftest import Api
from tests.api.pages.helpers import QueryCounter, csrf_from, sign_in
from tests.api.review_helpers import LATE_PAYER, appeal_in_review, open_task, upload_missing
from tests.api.test_appeals_api import _wait_status
from tests.core.documents.factories import csv_statement_en, rows_covering, with_wrong_balance
from tests.core.reviews.test_queue import make_task
from tests.eventually import eventually
from tests.factories import make_customer

pytestmark = pytest.mark.asyncio(loop_scope="session")

# The case page's queries, whatever the case holds: task, appeal, customer, account, bills,
# assessment, documents, statement lines, events, decisions, checklist.
CASE_PAGE_QUERIES = 11
# The queue page's: the page, its count, the headline counts, the page's appeals and customers.
QUEUE_PAGE_QUERIES = 4

Browser = Callable[[str, str], Awaitable[tuple[httpx.AsyncClient, str]]]


@pytest_asyncio.fixture(loop_scope="session")
async def browser(api: Api) -> AsyncIterator[Browser]:
    """A new browser (its own cookies) signed in as someone: (client, CSRF token)."""
    clients: list[httpx.AsyncClient] = []

    async def open_as(subject: str, role: str) -> tuple[httpx.AsyncClient, str]:
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://testserver")
        clients.append(client)
        return client, await sign_in(client, subject, role)

    yield open_as
    for client in clients:
        await client.aclose()


class NoTemporal:
    """Stands in for the gateway while a page is read: any use of Temporal fails the test."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"a page called Temporal ({name}) on a GET")


async def read_page(api: Api, http: httpx.AsyncClient, url: str, **kwargs: Any) -> tuple[httpx.Response, int]:
    """GET a page with Temporal out of reach, counting its SQL statements."""
    gateway, api.app.state.gateway = api.app.state.gateway, NoTemporal()
    try:
        with QueryCounter(api.engine) as counter:
            page = await http.get(url, **kwargs)
    finally:
        api.app.state.gateway = gateway
    assert page.status_code == 200, page.text
    # SQLite's driver sends its own BEGIN; PostgreSQL's does not: count what reads.
    return page, sum(1 for s in counter.statements if not s.startswith(("BEGIN", "COMMIT", "ROLLBACK")))


def task_links(html: str) -> list[str]:
    return re.findall(r'<a href="/review/tasks/([0-9a-f-]{36})">', html)


def form(html: str, action: str, outcome: str | None = None) -> str:
    """The HTML of the form posting to `action` (and carrying that outcome)."""
    for found in re.finditer(r'<form method="post" action="([^"]+)"[^>]*>(.*?)</form>', html, re.S):
        if found.group(1) == action and (
            outcome is None or f'name="outcome" value="{outcome}"' in found.group(2)
        ):
            return found.group(2)
    raise AssertionError(f"no form for {action} {outcome or ''}")


def hidden(form_html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', form_html)
    assert found, f"no {name} field"
    return found.group(1)


def disabled(form_html: str) -> bool:
    return bool(re.search(r"<fieldset disabled|<button [^>]*disabled", form_html))


async def post_form(
    http: httpx.AsyncClient, html: str, action: str, outcome: str | None = None, **fields: Any
) -> httpx.Response:
    """Submits a form as the page rendered it (its version, idempotency key and CSRF token)."""
    body = form(html, action, outcome)
    data: dict[str, Any] = {"csrf_token": csrf_from(html), "version": hidden(body, "version")}
    if outcome is not None:
        data |= {"outcome": outcome, "idempotency_key": hidden(body, "idempotency_key")}
    data |= fields
    return await http.post(action, data=data)


def table_rows(html: str, table_id: str) -> list[str]:
    found = re.search(rf'<table class="data-table" id="{table_id}">(.*?)</table>', html, re.S)
    assert found, f"no table {table_id}"
    body = found.group(1).split("<tbody>", 1)[1]
    return re.findall(r"<tr[^>]*>.*?</tr>", body, re.S)


# -- the queue -------------------------------------------------------------------------------


async def test_queue_filters_sorts_counts_and_keyset_pages(api: Api, browser: Browser) -> None:
    now = utcnow()
    tasks = [
        make_task(
            api.engine,
            priority=i % 7,
            due_at=now + timedelta(minutes=37 * i - 300),  # the first nine are overdue
            created_at=now - timedelta(hours=i),
            risk_tier=("LOW", "MEDIUM", "HIGH")[i % 3],
            queue=ESCALATION_QUEUE if i % 10 == 0 else "review",
        )
        for i in range(55)
    ]
    mine = make_task(api.engine, status=TaskStatus.CLAIMED, assignee="r-queue")
    http, _ = await browser("r-queue", "reviewer")

    first, queries = await read_page(api, http, "/review")
    assert "55 tasks match" in first.text and "Open: <strong>55</strong>" in first.text
    assert "Open and overdue: <strong>9</strong>" in first.text
    assert "Claimed by me: <strong>1</strong>" in first.text
    by_due = [t.id for t in sorted(tasks, key=lambda t: (t.due_at, t.id))]
    assert task_links(first.text) == by_due[:50]
    assert first.text.count("Breached") >= 9 and "overdue</span>" in first.text
    # Keyset paging: the next page continues where this one ended, nothing twice.
    next_url = re.search(r'<a href="(/review\?[^"]*cursor=[^"]+)" rel="next">Next page</a>', first.text)
    assert next_url and "offset" not in next_url.group(1)
    second, queries_second = await read_page(api, http, next_url.group(1).replace("&amp;", "&"))
    assert task_links(second.text) == by_due[50:] and 'rel="next"' not in second.text
    assert "First page" in second.text
    assert queries == queries_second == QUEUE_PAGE_QUERIES

    by_priority, _ = await read_page(api, http, "/review?sort=priority")
    expected = sorted(tasks, key=lambda t: (-t.priority, t.due_at, t.id))
    assert task_links(by_priority.text) == [t.id for t in expected[:50]]
    by_age, _ = await read_page(api, http, "/review?sort=age")
    assert (
        task_links(by_age.text)[:3] == [t.id for t in sorted(tasks, key=lambda t: (t.created_at, t.id))][:3]
    )

    high, queries_high = await read_page(api, http, "/review?risk_tier=HIGH")
    assert set(task_links(high.text)) == {t.id for t in tasks if t.risk_tier == "HIGH"}
    assert queries_high == QUEUE_PAGE_QUERIES  # fewer rows, the same statements
    # The headline counts do not depend on the filter.
    assert "Open: <strong>55</strong>" in high.text and "Open and overdue: <strong>9</strong>" in high.text
    overdue, _ = await read_page(api, http, "/review?overdue=yes&sort=due")
    assert task_links(overdue.text) == by_due[:9] and "9 tasks match" in overdue.text
    escalated, _ = await read_page(api, http, "/review?queue=escalation")
    assert set(task_links(escalated.text)) == {t.id for t in tasks if t.queue == ESCALATION_QUEUE}
    mine_page, _ = await read_page(api, http, "/review?mine=1")
    assert task_links(mine_page.text) == [mine.id] and "1 task matches" in mine_page.text
    none, _ = await read_page(api, http, "/review?status=COMPLETED")
    assert "No task matches these filters." in none.text

    # A bare case (no documents, assessment or decision yet) reads the same statements.
    bare, bare_queries = await read_page(api, http, f"/review/tasks/{mine.id}")
    assert "No assessment yet" in bare.text and "No documents uploaded." in bare.text
    assert bare_queries == CASE_PAGE_QUERIES
    assert (await http.get("/review/tasks/no-such-task")).status_code == 404

    refused = await http.get("/review?risk_tier=PURPLE")
    assert refused.status_code == 422 and refused.headers["content-type"].startswith("text/html")
    bad_cursor = await http.get("/review?cursor=not-a-cursor")
    assert bad_cursor.status_code == 422
    customer, _ = await browser("c-1", "customer")
    assert (await customer.get("/review")).status_code == 403


async def test_claim_next_with_nothing_waiting_says_so(api: Api, browser: Browser) -> None:
    http, token = await browser("r-idle", "reviewer")
    answer = await http.post("/review/claim-next", data={"csrf_token": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/review?notice=nothing_waiting"
    page = await http.get(answer.headers["location"])
    assert "Nothing is waiting that you may take" in page.text and 'role="status"' in page.text


# -- the case page and the decisions ---------------------------------------------------------


FORMULA_CELL = '=HYPERLINK("http://evil.test","Refund")'


async def appeal_with_flagged_statement(api: Api, *, seed: int) -> tuple[str, dict[str, str], str]:
    """A late payer's appeal in review whose bank statement has one amount changed (the running
    balance fails on that row): (appeal id, customer auth, task id)."""
    c = make_customer(api.engine, days_past_due=LATE_PAYER)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    created = await api.http.post(
        "/appeals", json={"account_id": c.account_id, "requested_limit_minor": 600_000}, headers=me
    )
    appeal_id = created.json()["id"]
    await _wait_status(api, appeal_id, me, "AWAITING_DOCUMENTS")
    rows = with_wrong_balance(rows_covering(SYSTEM_CLOCK.today(), 3, lead_days=3, seed=seed), 5, 12_300)
    # Cells a spreadsheet would run as formulas: the case page shows them as text.
    rows[2] = dataclasses.replace(rows[2], description=FORMULA_CELL, counterparty="@SUM(1+1)")
    uploaded = await api.http.post(
        f"/appeals/{appeal_id}/documents",
        headers=me,
        data={"doc_type": "BANK_STATEMENT"},
        files={"file": ("statement.csv", csv_statement_en(rows), "text/csv")},
    )
    assert uploaded.status_code == 201, uploaded.text
    await eventually(
        lambda: api.http.get(f"/appeals/{appeal_id}", headers=me),
        lambda answer: any(
            i["doc_type"] == "BANK_STATEMENT" and i["state"] == "ACCEPTED" for i in answer.json()["checklist"]
        ),
        what="the flagged statement to be accepted (red flags do not refuse a file)",
    )
    await upload_missing(api, appeal_id, me, seed)
    await _wait_status(api, appeal_id, me, "PENDING_REVIEW")
    return appeal_id, me, (await open_task(api, appeal_id))["id"]


async def test_a_reviewer_claims_next_reads_the_case_and_approves_in_part(api: Api, browser: Browser) -> None:
    appeal_id, me, task_id = await appeal_with_flagged_statement(api, seed=701)
    http, token = await browser("r-1", "reviewer")

    queue, _ = await read_page(api, http, "/review")
    assert task_links(queue.text) == [task_id]
    before, queries_before = await read_page(api, http, f"/review/tasks/{task_id}")
    approve = form(before.text, f"/review/tasks/{task_id}/decision", "APPROVE")
    assert disabled(approve) and "the task is OPEN; claim it first" in approve
    assert not disabled(form(before.text, f"/review/tasks/{task_id}/claim"))
    assert "Release is not available: the task is OPEN." in before.text

    claimed = await http.post("/review/claim-next", data={"csrf_token": token})
    assert (
        claimed.status_code == 303
        and claimed.headers["location"] == f"/review/tasks/{task_id}?notice=claimed"
    )
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    case, queries = await read_page(api, http, claimed.headers["location"])
    html = case.text
    assert "The task is yours" in html
    assert not disabled(form(html, f"/review/tasks/{task_id}/decision", "APPROVE"))
    assert disabled(form(html, f"/review/tasks/{task_id}/claim"))
    assert "Claim is not available: the task is CLAIMED." in html
    assert not disabled(form(html, f"/review/tasks/{task_id}/release"))
    assert "Stage 1: first review." in html

    # The summary, and the charts with their text alternatives and tables.
    assert "Original limit" in html and "¥8,000.00" in html and "¥6,000.00" in html
    assert re.search(r'<svg class="chart chart-vertical" id="repayment-chart" role="img"', html)
    assert '<title id="repayment-chart-title">Days past due per bill, last 12 months</title>' in html
    assert "the longest delay was 45 days" in html
    bills = table_rows(html, "bills-table")
    assert len(bills) == 12 and sum("45" in row and "45 days late" in row for row in bills) == 1
    assert re.search(r'<svg class="chart chart-horizontal" id="score-chart" role="img"', html)
    assert len(table_rows(html, "score-table")) == 14
    assert "Worst delay, 12 months" in html and "Principal reasons" in html
    assessment = await api.http.get(
        f"/appeals/{appeal_id}/assessment", headers=api.auth(Role.REVIEWER, "r-1")
    )
    for reason in assessment.json()["result"]["reasons"]:
        assert reason["en"] in html and reason["code"] in html
    assert "Red flags" in html and "STATEMENT_BALANCE_MISMATCH" in html
    # The statement: every stored line, the one that does not add up marked in words too.
    flagged = re.findall(r'<tr class="row-flagged">\s*<th scope="row" class="num">(\d+)</th>', html)
    assert len(flagged) == 1 and "Running balance check failed" in html and "Check failed" in html
    assert html.count('<h2 id="statement-') == 1
    # Formula-like cells are text: escaped, never a link or markup.
    assert "<td>=HYPERLINK(&#34;http://evil.test&#34;,&#34;Refund&#34;)</td>" in html
    assert "<td>@SUM(1+1)</td>" in html and 'href="http://evil.test"' not in html
    # The workflow in the Temporal Web UI.
    namespace = api.settings.temporal_namespace
    ui = f"{api.settings.temporal_ui_url}/namespaces/{namespace}/workflows/appeal-{appeal_id}"
    assert f'href="{ui}"' in html

    # Documents: a PDF previews inline through a fresh short-lived link; the CSV downloads.
    previews = re.findall(rf'href="(/review/tasks/{task_id}/documents/([0-9a-f-]+)/preview)"', html)
    downloads = re.findall(rf'href="(/review/tasks/{task_id}/documents/[0-9a-f-]+/download)"', html)
    assert previews and len(downloads) > len(previews)
    link = await http.get(previews[0][0])
    assert link.status_code == 303
    signed = parse_qs(urlsplit(link.headers["location"]).query)
    assert signed["response-content-disposition"][0].startswith("inline")
    assert signed["response-content-type"] == ["application/pdf"]
    assert int(signed["X-Amz-Expires"][0]) <= api.settings.download_link_expiry.total_seconds()
    async with httpx.AsyncClient() as s3:
        served = await s3.get(link.headers["location"])
    assert served.status_code == 200 and served.headers["content-type"] == "application/pdf"
    assert served.headers["content-disposition"].startswith("inline") and served.content.startswith(b"%PDF")
    saved = await http.get(downloads[-1])
    assert (
        "attachment" in parse_qs(urlsplit(saved.headers["location"]).query)["response-content-disposition"][0]
    )
    statement_preview = next(d for d in downloads if previews[0][1] not in d).replace("/download", "/preview")
    assert (await http.get(statement_preview)).status_code == 415  # a CSV is shown as its table
    nosy, _ = await browser("c-nosy", "customer")
    assert (await nosy.get(previews[0][0])).status_code == 403

    # Approve in part: 4,500.50 yuan of the 6,000 asked for.
    decided = await post_form(
        http, html, f"/review/tasks/{task_id}/decision", "APPROVE", approved_limit="4,500.50", note="ok"
    )
    assert decided.status_code == 303, decided.text
    assert decided.headers["location"] == f"/review/tasks/{task_id}?notice=decided"
    detail = await _wait_status(api, appeal_id, me, "CLOSED")
    assert detail["decided_limit_minor"] == 450_050
    assert any(e.get("to_status") == "PARTIALLY_APPROVED" for e in detail["timeline"])

    after, queries_after = await read_page(api, http, f"/review/tasks/{task_id}")
    assert "Your decision is recorded." not in after.text  # the notice belongs to the redirect
    assert "Approved in part" in after.text and "¥4,500.50" in after.text
    assert disabled(form(after.text, f"/review/tasks/{task_id}/decision", "DECLINE"))
    # More events and a decision since: the same statements.
    assert queries_before == queries == queries_after == CASE_PAGE_QUERIES


async def test_decline_with_reason_codes_in_chinese(api: Api, browser: Browser) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(api, seed=702)
    http, token = await browser("r-zh", "reviewer")
    switched = await http.post("/language", data={"lang": "zh-CN", "next": "/review", "csrf_token": token})
    assert switched.status_code == 303

    queue, _ = await read_page(api, http, "/review")
    assert '<html lang="zh-CN">' in queue.text and "审核队列" in queue.text and "认领下一个" in queue.text
    page, _ = await read_page(api, http, f"/review/tasks/{task_id}")
    claimed = await post_form(http, page.text, f"/review/tasks/{task_id}/claim")
    assert claimed.status_code == 303
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    case, _ = await read_page(api, http, f"/review/tasks/{task_id}")
    html = case.text
    for text in ("还款记录", "评估", "审计记录", "近12个月每期账单的逾期天数", "拒绝", "批准"):
        assert text in html, text
    # The policy's reasons in the reviewer's language, with their codes.
    assert "您近12个月有账单未按时还款。" in html and "RC_LATE_PAYMENTS" in html
    assert "Some of your bills" not in html

    declined = await post_form(
        http,
        html,
        f"/review/tasks/{task_id}/decision",
        "DECLINE",
        reasons=["RC_LATE_PAYMENTS", "RC_RECENT_LATE_PAYMENT"],
    )
    assert declined.status_code == 303, declined.text
    closed = await _wait_status(api, appeal_id, me, "CLOSED")
    assert closed["status_reason_codes"] == ["RC_LATE_PAYMENTS", "RC_RECENT_LATE_PAYMENT"]
    with session_scope(api.engine, read_only=True) as session:
        decision = session.exec(select(Decision).where(Decision.appeal_id == appeal_id)).one()
    assert decision.outcome == "DECLINE" and decision.decided_by == "r-zh"


async def test_a_decline_needs_a_reason_and_an_amount_is_bounded(api: Api, browser: Browser) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(api, seed=703)
    http, _ = await browser("r-check", "reviewer")
    page, _ = await read_page(api, http, f"/review/tasks/{task_id}")
    await post_form(http, page.text, f"/review/tasks/{task_id}/claim")
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    case, _ = await read_page(api, http, f"/review/tasks/{task_id}")
    no_reason = await post_form(http, case.text, f"/review/tasks/{task_id}/decision", "DECLINE")
    assert no_reason.status_code == 422 and "at least one reason" in no_reason.text
    assert "Reload the case" in no_reason.text
    too_much = await post_form(
        http, case.text, f"/review/tasks/{task_id}/decision", "APPROVE", approved_limit="8000.01"
    )
    assert too_much.status_code == 422 and "original limit" in too_much.text
    not_money = await post_form(
        http, case.text, f"/review/tasks/{task_id}/decision", "APPROVE", approved_limit="12.345"
    )
    assert not_money.status_code == 422 and "in yuan" in not_money.text
    with session_scope(api.engine, read_only=True) as session:
        assert session.exec(select(Decision).where(Decision.appeal_id == appeal_id)).all() == []


async def test_request_information_from_the_case_page(api: Api, browser: Browser) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(api, seed=704)
    http, _ = await browser("r-info", "reviewer")
    page, _ = await read_page(api, http, f"/review/tasks/{task_id}")
    await post_form(http, page.text, f"/review/tasks/{task_id}/claim")
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    case, _ = await read_page(api, http, f"/review/tasks/{task_id}")
    asked = await post_form(
        http,
        case.text,
        f"/review/tasks/{task_id}/decision",
        "REQUEST_INFO",
        requested_documents=["EMPLOYMENT_PROOF"],
        note="Please add a letter from your employer.",
    )
    assert asked.status_code == 303, asked.text
    detail = await _wait_status(api, appeal_id, me, "AWAITING_DOCUMENTS")
    item = next(i for i in detail["checklist"] if i["doc_type"] == "EMPLOYMENT_PROOF")
    assert item["state"] == "MISSING" and "requested_by_reviewer" in item["reasons"]
    notices = (await api.http.get("/me/notifications", headers=me)).json()
    assert any(n["event"] == "information_requested" and "employer" in n["body"] for n in notices)
    done, _ = await read_page(api, http, f"/review/tasks/{task_id}")
    assert "Request information" in done.text and "Please add a letter from your employer." in done.text


async def test_four_eyes_second_review_by_another_senior(api: Api, browser: Browser) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(
        api, seed=705, original_limit_minor=3_000_000, requested_limit_minor=2_500_000
    )
    s1, _ = await browser("s-1", "senior_reviewer")
    page, _ = await read_page(api, s1, f"/review/tasks/{task_id}")
    await post_form(s1, page.text, f"/review/tasks/{task_id}/claim")
    await _wait_status(api, appeal_id, me, "IN_REVIEW")
    case, _ = await read_page(api, s1, f"/review/tasks/{task_id}")
    first = await post_form(
        s1, case.text, f"/review/tasks/{task_id}/decision", "APPROVE", approved_limit="25000"
    )
    assert first.status_code == 303, first.text
    await _wait_status(api, appeal_id, me, "PENDING_SECOND_REVIEW")
    second_id = (await open_task(api, appeal_id))["id"]

    # The first reviewer sees the second review and why they may not take it.
    mine, _ = await read_page(api, s1, f"/review/tasks/{second_id}")
    assert "Stage 2 of 2: second review." in mine.text and "decided by s-1" in mine.text
    assert disabled(form(mine.text, f"/review/tasks/{second_id}/claim"))
    assert "must be done by someone other than the first reviewer" in mine.text
    reviewer, _ = await browser("r-plain", "reviewer")
    plain, _ = await read_page(api, reviewer, f"/review/tasks/{second_id}")
    assert "the task needs the senior_reviewer role" in plain.text

    s2, _ = await browser("s-2", "senior_reviewer")
    second, _ = await read_page(api, s2, f"/review/tasks/{second_id}")
    assert "¥25,000.00" in second.text
    assert (await post_form(s2, second.text, f"/review/tasks/{second_id}/claim")).status_code == 303
    await _wait_status(api, appeal_id, me, "IN_SECOND_REVIEW")
    held, _ = await read_page(api, s2, f"/review/tasks/{second_id}")
    request_info = form(held.text, f"/review/tasks/{second_id}/decision", "REQUEST_INFO")
    assert disabled(request_info) and "the second review approves or declines only" in request_info
    final = await post_form(
        s2, held.text, f"/review/tasks/{second_id}/decision", "APPROVE", approved_limit="20000.00"
    )
    assert final.status_code == 303, final.text
    detail = await _wait_status(api, appeal_id, me, "CLOSED")
    assert detail["decided_limit_minor"] == 2_000_000
    with session_scope(api.engine, read_only=True) as session:
        decisions = session.exec(
            select(Decision).where(Decision.appeal_id == appeal_id).order_by(col(Decision.id))
        ).all()
    assert [(d.stage, d.decided_by, d.approved_limit_minor) for d in decisions] == [
        (1, "s-1", 2_500_000),
        (2, "s-2", 2_000_000),
    ]


async def test_a_stale_form_gets_a_message_and_changes_nothing(api: Api, browser: Browser) -> None:
    appeal_id, me, task_id, _ = await appeal_in_review(api, seed=706)
    r1, _ = await browser("r-late", "reviewer")
    r2, _ = await browser("r-quick", "reviewer")
    seen_by_r1, _ = await read_page(api, r1, f"/review/tasks/{task_id}")
    seen_by_r2, _ = await read_page(api, r2, f"/review/tasks/{task_id}")
    assert (await post_form(r2, seen_by_r2.text, f"/review/tasks/{task_id}/claim")).status_code == 303
    await _wait_status(api, appeal_id, me, "IN_REVIEW")

    # r-1's page is from before r-2's claim: refused, with a way to see what changed.
    stale = await post_form(r1, seen_by_r1.text, f"/review/tasks/{task_id}/claim")
    assert stale.status_code == 412
    assert "Someone else acted on this task first" in stale.text and "nothing was done" in stale.text
    assert f'href="/review/tasks/{task_id}"' in stale.text and "Reload the case" in stale.text

    # r-2 decides from a page older than their own release and re-claim: refused too.
    held, _ = await read_page(api, r2, f"/review/tasks/{task_id}")
    assert (await post_form(r2, held.text, f"/review/tasks/{task_id}/release")).status_code == 303
    again, _ = await read_page(api, r2, f"/review/tasks/{task_id}")
    assert (await post_form(r2, again.text, f"/review/tasks/{task_id}/claim")).status_code == 303
    old_decision = await post_form(
        r2, held.text, f"/review/tasks/{task_id}/decision", "DECLINE", reasons=["RC_LATE_PAYMENTS"]
    )
    assert old_decision.status_code == 412 and "Someone else acted on this task first" in old_decision.text
    with session_scope(api.engine, read_only=True) as session:
        task = session.get(ReviewTask, task_id)
        assert task is not None and task.status == TaskStatus.CLAIMED and task.assignee == "r-quick"
        assert session.exec(select(Decision).where(Decision.appeal_id == appeal_id)).all() == []

    # A double click on a current form decides once: the second post gets the same answer.
    current, _ = await read_page(api, r2, f"/review/tasks/{task_id}")
    fields = {"reasons": ["RC_LATE_PAYMENTS"]}
    once = await post_form(r2, current.text, f"/review/tasks/{task_id}/decision", "DECLINE", **fields)
    twice = await post_form(r2, current.text, f"/review/tasks/{task_id}/decision", "DECLINE", **fields)
    assert once.status_code == twice.status_code == 303, twice.text
    await _wait_status(api, appeal_id, me, "CLOSED")
    with session_scope(api.engine, read_only=True) as session:
        assert len(session.exec(select(Decision).where(Decision.appeal_id == appeal_id)).all()) == 1
