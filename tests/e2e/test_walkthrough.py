"""End to end on the real local parts, started by the same launcher as `appeals dev`:
Temporal dev server, S3 server, database, worker process and API process."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlmodel import select

from core.auth import Role, mint_token
from core.clock import SYSTEM_CLOCK
from core.db import make_engine, session_scope
from core.db.case_tables import Appeal
from core.db.ledger_tables import Customer
from core.demo_documents import credit_report_text, statement_csv
from core.logs import REQUIRED_FIELDS
from core.seed import DEMO_CUSTOMERS
from launcher.dev import DevStack
from launcher.mail import read_mail
from tests.e2e.walkthrough import appeal_end_to_end, wait_for_status
from tests.eventually import eventually_sync

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    data_dir = tmp_path_factory.mktemp("stack")
    dev = DevStack.on_free_ports(data_dir)
    dev.start()
    try:
        yield dev
    finally:
        dev.stop()


def test_appeal_end_to_end(stack: DevStack) -> None:
    appeal_end_to_end(stack.api_url, stack.settings)


def test_auto_approval_and_ineligible_demo_customers(stack: DevStack) -> None:
    settings = stack.settings
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        wang = {"Authorization": f"Bearer {mint_token(settings, role=Role.CUSTOMER, subject='c-1001')}"}
        appeal_id = http.post(
            "/appeals",
            headers=wang,
            json={"account_id": "acct-1001", "requested_limit_minor": 800_000},
        ).json()["id"]
        wait_for_status(http, f"/appeals/{appeal_id}", wang, "AWAITING_DOCUMENTS")
        http.post(
            f"/appeals/{appeal_id}/documents",
            headers=wang,
            # Its own statement: the very same bytes from two customers would be a fraud flag.
            files={"file": ("statement.csv", statement_csv(SYSTEM_CLOCK.today(), seed=1001), "text/csv")},
        )
        assert (
            wait_for_status(http, f"/appeals/{appeal_id}", wang, "CLOSED")["decided_limit_minor"] == 800_000
        )
        notices = http.get("/me/notifications", headers=wang).json()
        assert any(n["locale"] == "zh-CN" and "额度" in n["body"] for n in notices)

        zhang = {"Authorization": f"Bearer {mint_token(settings, role=Role.CUSTOMER, subject='c-1003')}"}
        appeal_id = http.post(
            "/appeals",
            headers=zhang,
            json={"account_id": "acct-1003", "requested_limit_minor": 500_000},
        ).json()["id"]
        detail = wait_for_status(http, f"/appeals/{appeal_id}", zhang, "INELIGIBLE")
        assert detail["amount_owed_minor"] == 45_000


def _text(message: Any) -> str:
    body = message.get_body(("plain",))
    return str(body.get_content()) if body is not None else ""


def _mail_for(stack: DevStack, appeal_id: str, *subjects: str) -> list[Any]:
    """The emails about one appeal that the local SMTP sink stored, once there is one whose
    subject contains each of `subjects`: each notice is emailed in the background, after the
    status it announces, so the first email to arrive is not proof that the others have."""

    def stored() -> list[Any]:
        return [m for _, m in read_mail(stack.mail_dir) if appeal_id in _text(m)]

    return eventually_sync(
        stored,
        lambda messages: all(any(s in m["Subject"] for m in messages) for s in subjects),
        what=f"emails about appeal {appeal_id} with subjects containing {', '.join(subjects)}",
    )


def test_every_step_leaves_an_email_in_the_customers_language(stack: DevStack) -> None:
    settings = stack.settings
    today = SYSTEM_CLOCK.today()
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        # c-1003 (zh-CN) still owes money: the ineligible notice, in Chinese.
        zhang = {"Authorization": f"Bearer {mint_token(settings, role=Role.CUSTOMER, subject='c-1003')}"}
        ineligible = http.post(
            "/appeals", headers=zhang, json={"account_id": "acct-1003", "requested_limit_minor": 100_000}
        ).json()["id"]
        wait_for_status(http, f"/appeals/{ineligible}", zhang, "INELIGIBLE")
        # A generated English-speaking customer in the manual-review band, declined by a reviewer.
        manifest = list(csv.DictReader((stack.settings.data_dir / "demo-statements" / "manifest.csv").open()))
        person = next(r for r in manifest if r["locale"] == "en" and r["expected"] == "MANUAL_REVIEW")
        token = mint_token(settings, role=Role.CUSTOMER, subject=person["customer_id"])
        li = {"Authorization": f"Bearer {token}"}
        reviewer = {"Authorization": f"Bearer {mint_token(settings, role=Role.REVIEWER, subject='r-2')}"}
        declined = http.post(
            "/appeals",
            headers=li,
            json={
                "account_id": person["account_id"],
                "requested_limit_minor": int(person["requested_limit_minor"]),
            },
        ).json()["id"]
        detail = wait_for_status(http, f"/appeals/{declined}", li, "AWAITING_DOCUMENTS")
        statement = (
            stack.settings.data_dir / "demo-statements" / f"{person['customer_id']}-statement.csv"
        ).read_bytes()
        for item in detail["checklist"]:
            if item["doc_type"] == "BANK_STATEMENT":
                name, body, content_type = "s.csv", statement, "text/csv"
            else:
                name, body, content_type = "d.txt", credit_report_text("Customer", today), "text/plain"
            http.post(
                f"/appeals/{declined}/documents",
                headers=li,
                data={"doc_type": item["doc_type"]},
                files={"file": (name, body, content_type)},
            )
        wait_for_status(http, f"/appeals/{declined}", li, "PENDING_REVIEW")
        task = next(
            t
            for t in http.get("/review-tasks", headers=reviewer).json()["items"]
            if t["appeal_id"] == declined
        )
        http.post(f"/review-tasks/{task['id']}/claim", headers=reviewer)
        wait_for_status(http, f"/appeals/{declined}", li, "IN_REVIEW")
        response = http.post(
            f"/review-tasks/{task['id']}/decision",
            headers=reviewer,
            json={"outcome": "DECLINE", "reasons": ["RC_LATE_PAYMENTS"]},
        )
        assert response.status_code == 200, response.text
        wait_for_status(http, f"/appeals/{declined}", li, "CLOSED")

    # The appeal shows each notice's delivery per channel.
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        shown = http.get(f"/appeals/{declined}", headers=li).json()["notifications"]
    assert {(n["event"], n["channel"]) for n in shown} >= {("declined", "EMAIL"), ("declined", "IN_APP")}
    email_rows = [n for n in shown if n["channel"] == "EMAIL"]
    assert all(n["status"] in ("SENT", "PENDING", "SENDING") for n in email_rows)

    zh = _mail_for(stack, ineligible, "暂时无法受理")
    assert zh and all("暂时无法受理" in m["Subject"] for m in zh), [m["Subject"] for m in zh]
    en = _mail_for(stack, declined, "received", "declined")
    subjects = [m["Subject"] for m in en]
    assert any("received" in s for s in subjects) and any("declined" in s for s in subjects), subjects
    decline = next(m for m in en if "declined" in m["Subject"])
    text = _text(decline)
    assert "PRINCIPAL REASONS" in text and "repaid late" in text, text
    assert "YOUR RIGHTS" in text and "WHEN YOU MAY APPEAL AGAIN" in text
    assert decline["Message-ID"]


def test_the_walkthroughs_logs_are_json_lines_without_personal_data(stack: DevStack) -> None:
    """After the walkthroughs above (this module's tests run in order): the API's and the
    worker's logs under .data/logs/ are JSON lines of one schema, the walkthrough's appeal is
    on both by its id, and no line names a demo customer or how to reach them."""
    engine = make_engine(stack.settings.effective_database_url)
    with session_scope(engine, read_only=True) as session:
        customers = [session.get(Customer, demo.customer_id) for demo in DEMO_CUSTOMERS]
        walkthrough = session.exec(select(Appeal.id).where(Appeal.customer_id == "c-1002")).all()
    engine.dispose()
    personal = [v for c in customers if c is not None for v in (c.name, c.email, c.phone) if v]
    assert len(personal) >= 2 * len(DEMO_CUSTOMERS) and walkthrough, (personal, walkthrough)

    parsed: dict[str, list[dict[str, Any]]] = {}
    for part in ("api", "worker"):
        raw = (stack.logs / f"{part}.log").read_text(encoding="utf-8")
        lines = parsed[part] = [json.loads(line) for line in raw.splitlines() if line.strip()]
        assert lines, part
        for line in lines:
            assert set(REQUIRED_FIELDS) <= line.keys(), (part, line)
        for value in personal:
            assert value not in raw, (part, value)
        # Every appeal of the walkthrough's customer is on this part's lines by its id.
        for appeal_id in walkthrough:
            assert any(line.get("appeal_id") == appeal_id for line in lines), (part, appeal_id)
    access = [line for line in parsed["api"] if line.get("event") == "http_request"]
    assert access and all("?" not in line["route"] for line in access)
    assert {"customer", "reviewer"} <= {line.get("actor_role") for line in access}
    # The review task the walkthrough decided: on the API's lines by its path, on the worker's
    # by the activity's input.
    decided = {line["task_id"] for line in access if line["route"] == "/review-tasks/{task_id}/decision"}
    assert decided and decided <= {line.get("task_id") for line in parsed["worker"]}
    # A submission's line names the appeal it created (its path has no id yet).
    submitted = [
        line
        for line in access
        if (line["method"], line["route"], line["status"]) == ("POST", "/appeals", 201)
    ]
    assert submitted and all(line.get("appeal_id") for line in submitted)
    assert set(walkthrough) <= {line["appeal_id"] for line in submitted}
