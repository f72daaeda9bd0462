"""Steps of the walkthrough as a person does them in the browser, by what the pages show
(roles, labels and accessible names, never CSS classes). Shared by the browser journeys
(tests/browser/test_journeys.py) and scripts/screenshots.py.

Every wait is Playwright's auto-waiting `expect(...)` (deadlines scaled by
APPEALS_TEST_PATIENCE through `patient_ms`), never a sleep.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from playwright.async_api import Locator, Page, expect

from core.clock import SYSTEM_CLOCK
from core.demo_documents import credit_report_text, statement_csv
from tests.eventually import patience

# How long a page may take to show what a running workflow does next (checks, review, limit).
WORKFLOW_MS: Final = 60_000


def patient_ms(milliseconds: float) -> float:
    """A Playwright timeout scaled by APPEALS_TEST_PATIENCE, like every wait in the suite."""
    return patience(milliseconds / 1000) * 1000


def money(yuan: int) -> str:
    """How the pages write an amount: ¥9,000.00."""
    return f"¥{yuan:,}.00"


# -- signing in ------------------------------------------------------------------------------


async def sign_in(page: Page, subject: str, role: str = "customer") -> None:
    """Signs in through the development sign-in page ("Any id" and a role) and waits for the
    header to name who is signed in."""
    await page.goto("/sign-in")
    await page.get_by_label("Any id").fill(subject)
    await page.get_by_label("Role").select_option(role)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    # The header names who is signed in: "c-1002", or "r-1 · reviewer" for staff.
    who = re.compile(rf"^{re.escape(subject)}( · {re.escape(role)})?$")
    await expect(page.get_by_role("banner").get_by_text(who)).to_be_visible()


# -- the customer portal ---------------------------------------------------------------------


async def open_new_appeal_form(page: Page, account_id: str) -> None:
    """From "My accounts and appeals", the account's Appeal action."""
    await page.goto("/app")
    await page.get_by_role("link", name=f"Appeal the limit of account {account_id}").click()
    await expect(page.get_by_role("heading", name="Appeal to restore your limit", level=1)).to_be_visible()


async def submit_appeal_form(page: Page, account_id: str, requested_yuan: int, statement: str = "") -> str:
    """Fills in the new-appeal form and submits it; returns the new appeal's id from the
    appeal page's URL."""
    await page.get_by_label("Limit you ask for (yuan)").fill(str(requested_yuan))
    if statement:
        await page.get_by_label("Why should we restore it?").fill(statement)
    await page.get_by_role("button", name="Submit appeal").click()
    await expect(page).to_have_url(re.compile(r"/app/appeals/[0-9a-f-]{36}$"))
    await expect(
        page.get_by_role("heading", name=f"Appeal for account {account_id}", level=1)
    ).to_be_visible()
    found = re.search(r"/app/appeals/([0-9a-f-]{36})$", page.url)
    assert found, page.url
    return found.group(1)


async def start_appeal(page: Page, account_id: str, requested_yuan: int, statement: str = "") -> str:
    await open_new_appeal_form(page, account_id)
    return await submit_appeal_form(page, account_id, requested_yuan, statement)


def status_region(page: Page) -> Locator:
    return page.get_by_role("region", name="Where your appeal stands")


async def expect_status(page: Page, words: str | re.Pattern[str], timeout_ms: float = WORKFLOW_MS) -> None:
    """The appeal page's headline says `words` (it updates itself while the workflow runs)."""
    await expect(status_region(page)).to_contain_text(words, timeout=patient_ms(timeout_ms))


def checklist_item(page: Page, label: str) -> Locator:
    return page.get_by_role("list", name="What we need").get_by_role("listitem").filter(has_text=label)


async def upload(page: Page, doc_type: str, filename: str, body: bytes, mime_type: str) -> None:
    """The appeal page's upload form: what it is, the file, Upload; waits until the server has
    taken the file (the progress list says so next to the file's name)."""
    await page.get_by_label("What is it?").select_option(doc_type)
    await page.get_by_label("Choose a file").set_input_files(
        {"name": filename, "mimeType": mime_type, "buffer": body}
    )
    await page.get_by_role("button", name="Upload", exact=True).click()
    progress = page.get_by_role("list", name="Your uploads").get_by_role("listitem").filter(has_text=filename)
    await expect(progress).to_contain_text("Received", timeout=patient_ms(30_000))


async def drop_file(page: Page, doc_type: str, filename: str, body: bytes, mime_type: str) -> None:
    """Drags a file from the desktop onto the upload area (the area around the file picker):
    it uploads at once. Waits as `upload` does."""
    await page.get_by_label("What is it?").select_option(doc_type)
    files = await page.evaluate_handle(
        """([name, type, base64]) => {
            const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
            const transfer = new DataTransfer();
            transfer.items.add(new File([bytes], name, { type }));
            return transfer;
        }""",
        [filename, mime_type, base64.b64encode(body).decode()],
    )
    area = page.get_by_label("Choose a file").locator("..")
    for event in ("dragenter", "dragover", "drop"):
        await area.dispatch_event(event, {"dataTransfer": files})
    progress = page.get_by_role("list", name="Your uploads").get_by_role("listitem").filter(has_text=filename)
    await expect(progress).to_contain_text("Received", timeout=patient_ms(30_000))


def files_sent(page: Page, filename: str) -> Locator:
    """A file in the appeal page's "Files you sent", with its state and any refusal reason."""
    return page.get_by_role("list", name="Files you sent").get_by_role("listitem").filter(has_text=filename)


def demo_documents(customer_id: str, name: str) -> tuple[bytes, bytes]:
    """The walkthrough's files for a customer (`appeals demo-documents`): a statement of the
    last 3 full months (CSV, its own per customer) and a credit report (text)."""
    today = SYSTEM_CLOCK.today()
    seed = int.from_bytes(hashlib.sha256(customer_id.encode()).digest()[:4], "big")
    return statement_csv(today, seed=seed), credit_report_text(name, today)


async def upload_walkthrough_documents(page: Page, customer_id: str, name: str) -> None:
    statement, report = demo_documents(customer_id, name)
    await upload(page, "BANK_STATEMENT", "statement.csv", statement, "text/csv")
    await upload(page, "CREDIT_REPORT", "credit-report.txt", report, "text/plain")


async def li_wei_appeals_and_uploads(page: Page) -> str:
    """README walkthrough steps 1-2 by browser: Li Wei (c-1002) asks for ¥9,000 on acct-1002
    and uploads his bank statement and credit report; returns the appeal id."""
    await sign_in(page, "c-1002")
    appeal_id = await start_appeal(
        page, "acct-1002", 9_000, "My late bills were during a hospital stay; all repaid since March."
    )
    await expect_status(page, "Waiting for your documents")
    await upload_walkthrough_documents(page, "c-1002", "Li Wei")
    return appeal_id


async def expect_waiting_for_review(page: Page) -> None:
    """Both checklist files accepted and the appeal with the reviewers, as the page shows it."""
    await expect_status(page, "Waiting for a reviewer")
    for label in ("bank statement", "credit report"):
        await expect(checklist_item(page, label)).to_contain_text("Accepted")


async def expect_outcome(page: Page, decided_yuan: int, *, partial: bool = True) -> None:
    """The appeal page shows the decision and its notice (it updates itself)."""
    decision = page.get_by_role("region", name="Decision")
    await expect(decision).to_contain_text(
        "Approved in part." if partial else "Approved.", timeout=patient_ms(WORKFLOW_MS)
    )
    await expect(decision).to_contain_text(money(decided_yuan))
    await expect_status(page, "Closed: approved")
    subject = "Your appeal was approved in part" if partial else "Your credit limit has been restored"
    await expect(
        page.get_by_role("region", name="Notices").get_by_role("heading", name=subject)
    ).to_be_visible(timeout=patient_ms(WORKFLOW_MS))


# -- the reviewer console --------------------------------------------------------------------


async def claim_next(page: Page, appeal_id: str | None = None) -> None:
    """The queue's "Claim next": lands on the claimed case. With `appeal_id`, checks the case
    is that appeal's (the Temporal Web UI link names its workflow)."""
    await page.goto("/review")
    await page.get_by_role("button", name="Claim next").click()
    await expect(page).to_have_url(re.compile(r"/review/tasks/[^/?]+\?notice=claimed$"))
    await expect(page.get_by_role("status").filter(has_text="The task is yours")).to_be_visible()
    if appeal_id is not None:
        await expect(
            page.get_by_role("link", name=re.compile("Workflow in Temporal Web UI"))
        ).to_have_attribute("href", re.compile(rf"/workflows/appeal-{appeal_id}$"))


async def approve(page: Page, yuan: int, note: str = "") -> None:
    """On the case page: the approved limit in yuan, Approve; waits for the decision to be
    recorded."""
    form = page.get_by_role("group", name="Approve in full or in part")
    await form.get_by_label("Approved limit in yuan").fill(str(yuan))
    if note:
        await form.get_by_label(re.compile("^Note for the case file")).fill(note)
    await form.get_by_role("button", name="Approve").click()
    await expect_decided(page)


async def decline(page: Page, reason_codes: list[str]) -> None:
    form = page.get_by_role("group", name=re.compile("^Decline with the policy's reasons"))
    for code in reason_codes:
        await form.get_by_role("checkbox", name=re.compile(re.escape(code))).check()
    await form.get_by_role("button", name="Decline").click()
    await expect_decided(page)


async def expect_decided(page: Page) -> None:
    await expect(page).to_have_url(re.compile(r"\?notice=decided$"), timeout=patient_ms(30_000))
    await expect(page.get_by_role("status").filter(has_text="Your decision is recorded.")).to_be_visible()
