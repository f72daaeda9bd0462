"""The issue's journeys in a real browser, on the real local stack (tests/browser/live_stack.py):
customers on a phone, staff on a desktop, each page checked with axe and saved as a screenshot
(test-artifacts/screenshots/).

- Li Wei appeals, uploads both checklist files and sees his appeal move on without reloading;
  reviewer r-1 claims next, reads the case (and downloads a file from S3), approves in part;
  Li Wei's page shows the outcome and its notice.
- Four eyes: a large approval by one reviewer is confirmed by a second, senior reviewer.
- Two reviewers on one case: the one whose page is out of date is told, nothing is overwritten.
- An automatically declined customer asks for a human review; a reviewer declines with reasons.
- A customer withdraws (after the confirmation page).
- A customer cannot open another customer's appeal page (the 404 page).
- The supervisor dashboard.

Scenes a journey does not click through itself (another customer's appeal, the documents of
the four-eyes case) are set with the JSON API, which the pages share their use cases with.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Page, expect

from core.auth import Role
from core.clock import SYSTEM_CLOCK
from core.db.ledger_tables import AccountStatus
from core.demo_documents import statement_csv
from tests.browser import flows
from tests.browser.accessibility import assert_accessible
from tests.browser.artifacts import save_screenshot
from tests.browser.conftest import OpenPage
from tests.browser.live_stack import LiveStack
from tests.documents import recent_statement_csv, text_pdf
from tests.eventually import eventually
from tests.factories import LedgerCustomer, make_customer

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# Late bills long since repaid: the manual-review band.
LATE_PAYER = (0, 5, 0, 45, 0, 20, 0, 0, 0, 0, 0, 0)
# One bill 95 days late (since repaid): the severe-delinquency knock-out declines automatically.
SEVERELY_LATE = (0, 0, 95, 0, 0, 0, 0, 0, 0, 0, 0, 0)
SAME_DOCUMENT = "window.__appealsSameDocument"


@pytest_asyncio.fixture(loop_scope="session")
async def api(live_stack: LiveStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live_stack.url, timeout=30) as http:
        yield http


async def _appeal(
    api: httpx.AsyncClient, stack: LiveStack, customer_id: str, appeal_id: str
) -> dict[str, Any]:
    response = await api.get(f"/appeals/{appeal_id}", headers=stack.auth(Role.CUSTOMER, customer_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _wait_status(
    api: httpx.AsyncClient, stack: LiveStack, customer_id: str, appeal_id: str, status: str
) -> dict[str, Any]:
    return await eventually(
        lambda: _appeal(api, stack, customer_id, appeal_id),
        lambda body: body["status"] == status,
        what=f"appeal {appeal_id} to be {status}",
    )


async def _appeal_with_documents(
    api: httpx.AsyncClient, stack: LiveStack, customer: LedgerCustomer, requested_minor: int, seed: int
) -> str:
    """An appeal submitted and every checklist item uploaded, through the JSON API."""
    me = stack.auth(Role.CUSTOMER, customer.customer_id)
    created = await api.post(
        "/appeals",
        headers=me,
        json={"account_id": customer.account_id, "requested_limit_minor": requested_minor},
    )
    assert created.status_code == 201, created.text
    appeal_id: str = created.json()["id"]
    detail = await _wait_status(api, stack, customer.customer_id, appeal_id, "AWAITING_DOCUMENTS")
    for item in detail["checklist"]:
        if item["doc_type"] == "BANK_STATEMENT":
            name, body, content_type = "statement.csv", recent_statement_csv(seed=seed), "text/csv"
        else:
            name, body, content_type = (
                "doc.pdf",
                text_pdf(item["doc_type"], (f"seed {seed}",)),
                "application/pdf",
            )
        uploaded = await api.post(
            f"/appeals/{appeal_id}/documents",
            headers=me,
            data={"doc_type": item["doc_type"]},
            files={"file": (name, body, content_type)},
        )
        assert uploaded.status_code == 201, uploaded.text
    return appeal_id


async def _open_task_id(api: httpx.AsyncClient, stack: LiveStack, appeal_id: str) -> str:
    staff = stack.auth(Role.SUPERVISOR, "sup-1")

    async def tasks() -> list[dict[str, Any]]:
        response = await api.get("/review-tasks", headers=staff, params={"status": "OPEN", "limit": 100})
        assert response.status_code == 200, response.text
        return [t for t in response.json()["items"] if t["appeal_id"] == appeal_id]

    found = await eventually(tasks, what=f"an open review task for appeal {appeal_id}")
    task_id: str = found[0]["id"]
    return task_id


async def _only_task_open_is(api: httpx.AsyncClient, stack: LiveStack, appeal_id: str) -> None:
    """Before a "Claim next": any task another journey left open (a failed test) is claimed out
    of the way, so that the next task is this appeal's. Waits for this appeal's task."""
    staff = stack.auth(Role.SUPERVISOR, "sup-1")

    async def open_tasks() -> list[dict[str, Any]]:
        response = await api.get("/review-tasks", headers=staff, params={"status": "OPEN", "limit": 100})
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    tasks = await eventually(
        open_tasks,
        lambda items: any(t["appeal_id"] == appeal_id for t in items),
        what=f"an open review task for appeal {appeal_id}",
    )
    janitor = stack.auth(Role.SENIOR_REVIEWER, "janitor")
    for task in tasks:
        if task["appeal_id"] != appeal_id:
            await api.post(f"/review-tasks/{task['id']}/claim", headers=janitor)


async def _check_page(page: Page, name: str) -> None:
    """axe (no critical or serious violation) and a full-page screenshot of a main page."""
    label = "phone" if (page.viewport_size or {"width": 0})["width"] < 768 else "desktop"
    await assert_accessible(page, f"{name}, {label}")
    await save_screenshot(page, name)


async def test_a_customer_appeals_and_a_reviewer_approves_in_part(
    open_page: OpenPage, live_stack: LiveStack, api: httpx.AsyncClient
) -> None:
    customer = await open_page("phone", "c-1002")
    await flows.sign_in(customer, "c-1002")
    await expect(customer).to_have_url(re.compile(r"/app$"))
    await expect(customer.get_by_role("heading", name="My accounts and appeals", level=1)).to_be_visible()
    await _check_page(customer, "portal-home")

    await flows.open_new_appeal_form(customer, "acct-1002")
    await _check_page(customer, "new-appeal")
    appeal_id = await flows.submit_appeal_form(
        customer, "acct-1002", 9_000, "My late bills were during a hospital stay; all repaid since March."
    )
    # From here on the page must change by itself: a reload would lose this marker.
    await customer.evaluate(f"() => {{ {SAME_DOCUMENT} = true; }}")
    await flows.expect_status(customer, "Waiting for your documents")
    await expect(flows.checklist_item(customer, "bank statement")).to_contain_text("Not received yet")
    await expect(flows.checklist_item(customer, "credit report")).to_contain_text("Not received yet")
    await expect(customer.get_by_text(re.compile(r"Documents due by"))).to_be_visible()
    await _check_page(customer, "appeal-awaiting-documents")

    # A statement of one month instead of three is refused, with the reason next to the file.
    today = SYSTEM_CLOCK.today()
    await flows.upload(
        customer, "BANK_STATEMENT", "one-month.csv", statement_csv(today, months=1), "text/csv"
    )
    short = flows.files_sent(customer, "one-month.csv")
    await expect(short).to_contain_text("Refused", timeout=flows.patient_ms(flows.WORKFLOW_MS))
    await expect(short).to_contain_text(re.compile("month", re.IGNORECASE))
    await expect(flows.checklist_item(customer, "bank statement")).to_contain_text("Refused")
    # The right statement from the file picker; the credit report dragged onto the page.
    statement, report = flows.demo_documents("c-1002", "Li Wei")
    await flows.upload(customer, "BANK_STATEMENT", "statement.csv", statement, "text/csv")
    await flows.drop_file(customer, "CREDIT_REPORT", "credit-report.txt", report, "text/plain")
    await flows.expect_waiting_for_review(customer)
    await expect(flows.files_sent(customer, "statement.csv")).to_contain_text("Accepted")
    await expect(flows.files_sent(customer, "credit-report.txt")).to_contain_text("Accepted")
    assert await customer.evaluate(f"() => {SAME_DOCUMENT} === true"), "the appeal page was reloaded"
    await _check_page(customer, "appeal-waiting-for-review")

    reviewer = await open_page("desktop", "r-1")
    await flows.sign_in(reviewer, "r-1", "reviewer")
    await _only_task_open_is(api, live_stack, appeal_id)
    await reviewer.goto("/review")
    await expect(reviewer.get_by_role("heading", name="Review queue", level=1)).to_be_visible()
    await expect(reviewer.get_by_role("table").get_by_role("link", name="Li Wei")).to_be_visible()
    await _check_page(reviewer, "review-queue")

    await flows.claim_next(reviewer, appeal_id)
    await expect(reviewer.get_by_role("heading", level=1)).to_contain_text("Li Wei")
    for section in ("Customer and account", "Repayment history", "Assessment", "Documents", "Audit timeline"):
        await expect(reviewer.get_by_role("heading", name=section, exact=True)).to_be_visible()
    documents = reviewer.get_by_role("region", name="Documents", exact=True)
    await expect(documents.get_by_role("rowheader", name="statement.csv")).to_be_visible()
    await expect(documents.get_by_role("rowheader", name="credit-report.txt")).to_be_visible()
    await expect(reviewer.get_by_text("Balance check passed")).to_be_visible()
    # A download goes to the S3 server through a short-lived link; the browser gets the file.
    async with reviewer.expect_download() as download_info:
        await documents.get_by_role("link", name="Download statement.csv").click()
    download = await download_info.value
    saved = await download.path()
    assert saved.read_bytes() == statement
    await _check_page(reviewer, "review-case")

    await flows.approve(reviewer, 7_000, note="Repaid in full; partial restore.")
    decisions = reviewer.get_by_role("table", name=re.compile("Reviewers' decisions"))
    await expect(decisions).to_contain_text("¥7,000.00")
    await expect(decisions).to_contain_text("r-1")

    # The customer's page, never reloaded, shows the outcome and its notice.
    await flows.expect_outcome(customer, 7_000, partial=True)
    assert await customer.evaluate(f"() => {SAME_DOCUMENT} === true"), "the appeal page was reloaded"
    await expect(customer.get_by_text("You may appeal again for a higher limit at any time.")).to_be_visible()
    await _check_page(customer, "appeal-closed-approved-in-part")


async def test_four_eyes_a_second_senior_reviewer_confirms(
    open_page: OpenPage, live_stack: LiveStack, api: httpx.AsyncClient
) -> None:
    # ¥30,000 originally: an approval of ¥20,000 or more needs a second, senior reviewer.
    person = make_customer(live_stack.engine, days_past_due=LATE_PAYER, original_limit_minor=3_000_000)
    appeal_id = await _appeal_with_documents(api, live_stack, person, 2_500_000, seed=701)
    await _wait_status(api, live_stack, person.customer_id, appeal_id, "PENDING_REVIEW")

    first = await open_page("desktop", "r-2")
    await flows.sign_in(first, "r-2", "reviewer")
    await _only_task_open_is(api, live_stack, appeal_id)
    await flows.claim_next(first, appeal_id)
    four_eyes = first.get_by_role("heading", name="Four eyes").locator("..")
    await expect(four_eyes).to_contain_text("Stage 1: first review.")
    await flows.approve(first, 25_000)
    first_decisions = first.get_by_role("table", name=re.compile("Reviewers' decisions"))
    await expect(first_decisions).to_contain_text("¥25,000.00")

    customer = await open_page("phone", person.customer_id)
    await flows.sign_in(customer, person.customer_id)
    await customer.goto(f"/app/appeals/{appeal_id}")
    await flows.expect_status(customer, "Waiting for a second reviewer to confirm")

    second = await open_page("desktop", "s-1")
    await flows.sign_in(second, "s-1", "senior_reviewer")
    await _only_task_open_is(api, live_stack, appeal_id)
    await flows.claim_next(second, appeal_id)
    four_eyes = second.get_by_role("heading", name="Four eyes").locator("..")
    await expect(four_eyes).to_contain_text("Stage 2 of 2: second review.")
    await expect(four_eyes).to_contain_text("The first review approved ¥25,000.00")
    await expect(four_eyes).to_contain_text("decided by r-2")
    await _check_page(second, "review-case-second-review")
    await flows.approve(second, 20_000)
    decisions = second.get_by_role("table", name=re.compile("Reviewers' decisions"))
    await expect(decisions.get_by_role("row")).to_have_count(3)  # the header and both stages

    await flows.expect_outcome(customer, 20_000, partial=True)


async def test_a_stale_case_page_says_someone_else_acted_first(
    open_page: OpenPage, live_stack: LiveStack, api: httpx.AsyncClient
) -> None:
    person = make_customer(live_stack.engine, days_past_due=LATE_PAYER)
    appeal_id = await _appeal_with_documents(api, live_stack, person, 600_000, seed=703)
    task_id = await _open_task_id(api, live_stack, appeal_id)
    pages = []
    for reviewer in ("r-1", "r-2"):
        page = await open_page("desktop", reviewer)
        await flows.sign_in(page, reviewer, "reviewer")
        await page.goto(f"/review/tasks/{task_id}")
        await expect(page.get_by_role("button", name="Claim", exact=True)).to_be_enabled()
        pages.append(page)
    first, late = pages
    await first.get_by_role("button", name="Claim", exact=True).click()
    await expect(first.get_by_role("status").filter(has_text="The task is yours")).to_be_visible()
    # r-2's page still offers Claim; acting on it changes nothing and says why.
    await late.get_by_role("button", name="Claim", exact=True).click()
    await expect(
        late.get_by_role("heading", name="Someone else acted on this task first", level=1)
    ).to_be_visible()
    await _check_page(late, "review-stale-action")
    await late.get_by_role("link", name="Reload the case").click()
    await expect(late.get_by_role("list", name="This task")).to_contain_text("held by r-1")
    await expect(late.get_by_role("button", name="Approve")).to_be_disabled()
    # r-1 decides, so that no task is left open for the other journeys.
    await flows.decline(first, ["RC_LATE_PAYMENTS"])


async def test_a_declined_customer_asks_for_a_human_review(
    open_page: OpenPage, live_stack: LiveStack, api: httpx.AsyncClient
) -> None:
    person = make_customer(live_stack.engine, days_past_due=SEVERELY_LATE)
    appeal_id = await _appeal_with_documents(api, live_stack, person, 600_000, seed=702)
    await _wait_status(api, live_stack, person.customer_id, appeal_id, "AUTO_DECLINED")

    customer = await open_page("phone", person.customer_id)
    await flows.sign_in(customer, person.customer_id)
    await customer.goto(f"/app/appeals/{appeal_id}")
    decision = customer.get_by_role("region", name="Decision")
    await expect(decision).to_contain_text("Declined by our automatic checks.")
    await expect(decision).to_contain_text("a delay of 90 days or more")
    ask = customer.get_by_role("form", name="Ask for a person to review this decision")
    # "less than a day left" too: the server's date may run ahead of the workflow server's when
    # the suite runs under a faked system clock (the workflow decides when the window closes).
    await expect(ask).to_contain_text(
        re.compile(r"You can ask once, until\s.+\((\d+ days|less than a day) left\)", re.DOTALL)
    )
    await _check_page(customer, "appeal-declined")

    await ask.get_by_label("What should the reviewer know?").fill("The late bill was a bank error.")
    await ask.get_by_role("button", name="Ask for a human review").click()
    await expect(customer.get_by_text("We received your request for a human review.")).to_be_visible()
    await flows.expect_status(customer, "Waiting for a reviewer")
    await expect(customer.get_by_role("button", name="Ask for a human review")).to_have_count(0)

    reviewer = await open_page("desktop", "r-1")
    await flows.sign_in(reviewer, "r-1", "reviewer")
    await _only_task_open_is(api, live_stack, appeal_id)
    await flows.claim_next(reviewer, appeal_id)
    await flows.decline(reviewer, ["RC_SEVERE_DELINQUENCY"])

    await expect(decision).to_contain_text(
        "Declined by a reviewer.", timeout=flows.patient_ms(flows.WORKFLOW_MS)
    )
    # "now" instead of "from <date>" only when this server's date runs a month ahead of the
    # workflow server's (a faked system clock); the date itself is checked in test_portal_pages.
    await expect(decision).to_contain_text(re.compile("You may appeal this account again (from|now)"))
    await flows.expect_status(customer, "Closed: declined")


async def test_a_customer_withdraws_after_confirming(open_page: OpenPage, live_stack: LiveStack) -> None:
    person = make_customer(live_stack.engine, days_past_due=LATE_PAYER)
    customer = await open_page("phone", person.customer_id)
    await flows.sign_in(customer, person.customer_id)
    appeal_id = await flows.start_appeal(customer, person.account_id, 5_000)
    await flows.expect_status(customer, "Waiting for your documents")
    # A withdrawal posted with the customer's cookies but without the page's CSRF token is refused.
    forged = await customer.request.post(
        f"/app/appeals/{appeal_id}/withdraw", form={"reason": "forged"}, max_redirects=0
    )
    assert forged.status == 403, await forged.text()
    await customer.get_by_role("link", name="Withdraw this appeal").click()
    await expect(customer.get_by_role("heading", name="Withdraw your appeal?", level=1)).to_be_visible()
    await _check_page(customer, "withdraw")
    await customer.get_by_label("Why are you withdrawing?").fill("I found another way.")
    await customer.get_by_role("button", name="Yes, withdraw my appeal").click()
    await expect(customer).to_have_url(re.compile(rf"/app/appeals/{appeal_id}"))
    await flows.expect_status(customer, "Withdrawn by you")


async def test_a_customer_cannot_open_another_customers_appeal(
    open_page: OpenPage, live_stack: LiveStack, api: httpx.AsyncClient
) -> None:
    owner = make_customer(live_stack.engine, status=AccountStatus.FROZEN, days_past_due=LATE_PAYER)
    created = await api.post(
        "/appeals",
        headers=live_stack.auth(Role.CUSTOMER, owner.customer_id),
        json={"account_id": owner.account_id, "requested_limit_minor": 500_000},
    )
    assert created.status_code == 201, created.text
    appeal_id = created.json()["id"]

    other = await open_page("phone", "c-1004")
    await flows.sign_in(other, "c-1004")
    for path in (f"/app/appeals/{appeal_id}", f"/app/appeals/{appeal_id}/withdraw"):
        response = await other.goto(path)
        assert response is not None and response.status == 404, path
        await expect(other.get_by_role("heading", name="Page not found", level=1)).to_be_visible()
        await expect(other.get_by_text(owner.account_id)).to_have_count(0)
    await _check_page(other, "not-found-other-customers-appeal")


async def test_the_supervisor_dashboard(open_page: OpenPage) -> None:
    supervisor = await open_page("desktop", "sup-1")
    await flows.sign_in(supervisor, "sup-1", "supervisor")
    await expect(supervisor).to_have_url(re.compile(r"/dashboard$"))
    await expect(supervisor.get_by_role("heading", name="Supervisor dashboard", level=1)).to_be_visible()
    for section in ("Open tasks by queue and status", "Service levels", "Decisions per day"):
        await expect(supervisor.get_by_role("heading", name=section)).to_be_visible()
    await _check_page(supervisor, "dashboard")
