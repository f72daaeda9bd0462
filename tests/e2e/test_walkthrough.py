"""End to end on the real local parts, started by the same launcher as `appeals dev`:
Temporal dev server, S3 server, database, worker process and API process."""

from __future__ import annotations

import csv
import json
import re
from collections import Counter
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
from tests.deploy_config import EMITTED_ON_FAILURE, dashboard_metric_names
from tests.e2e.walkthrough import appeal_end_to_end, wait_for_status
from tests.eventually import eventually_sync
from tests.metrics_text import Samples, names, parse_samples
from tests.metrics_text import value as sample

pytestmark = pytest.mark.e2e

# What the walkthrough tests of this module did, for test_metrics_show_what_the_walkthrough_did
# (the last test, on the same stack): which tests ran to the end, and the uploads each made.
WALKED: set[str] = set()
UPLOADS: Counter[str] = Counter()
GENERATED: list[str] = []  # the generated customer the emails test declined


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
    UPLOADS["c-1002"] += 3  # the walkthrough's short statement, then the two accepted documents
    WALKED.add("end to end")


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
        UPLOADS["c-1001"] += 1
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
    WALKED.add("auto approval and ineligible")


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
            UPLOADS["generated"] += 1
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
    WALKED.add("emails")
    GENERATED.append(person["customer_id"])


def _scrape(url: str) -> Samples:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    return parse_samples(response.text)


def _series(samples: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(labels)): v for (n, labels), v in samples.items() if n == name and v}


def test_metrics_show_what_the_walkthrough_did(stack: DevStack) -> None:
    """/metrics after the walkthrough: the counts the tests above produced, on the API's, the
    worker's business and the Temporal SDK's endpoints. Runs last, on the same stack."""
    if {"end to end", "auto approval and ineligible", "emails"} != WALKED:
        pytest.skip(f"needs every walkthrough test of this module to have run first (ran: {sorted(WALKED)})")
    urls = stack.metrics_urls
    settings = stack.settings

    api = _scrape(urls["API requests"])
    requests = "appeals_http_requests_total"
    # Five appeals submitted (c-1002, c-1001, c-1003 twice, the generated customer), each a 201.
    assert sample(api, requests, method="POST", route="/appeals", status="201") == 5
    assert _series(api, requests).keys() >= {(("method", "POST"), ("route", "/appeals"), ("status", "201"))}
    uploads = sample(api, requests, method="POST", route="/appeals/{appeal_id}/documents", status="201")
    assert uploads == sum(UPLOADS.values()) and UPLOADS["c-1002"] == 3
    decide = "/review-tasks/{task_id}/decision"
    assert sample(api, requests, method="POST", route="/review-tasks/{task_id}/claim", status="200") == 2
    assert sample(api, requests, method="POST", route=decide, status="200") == 2
    assert (
        sample(api, "appeals_http_request_duration_seconds_count", method="POST", route=decide, status="200")
        == 2
    )
    # Route templates only: no appeal or task id (UUIDs), nor any customer id, in any label.
    text = httpx.get(urls["API requests"], timeout=30).text
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-|c-10\d\d|" + "|".join(map(re.escape, GENERATED)), text)

    def business() -> Samples:
        return _scrape(urls["worker: business metrics"])

    # Every notice delivered (emails go out in the background, after the status they announce).
    def settled(samples: Samples) -> bool:
        return not any(
            dict(labels)["state"] in ("PENDING", "SENDING") and v
            for (name, labels), v in samples.items()
            if name == "appeals_notices"
        )

    biz = eventually_sync(business, settled, what="every notice to be delivered")
    assert sample(biz, "appeals_business_metrics_up") == 1
    assert sample(biz, "appeals_started_total", source="customer") == 5
    assert sample(biz, "appeals_started_total", source="invitation") == 0
    assert _series(biz, "appeals_closed_total") == {
        (("outcome", "partially_approved"), ("path", "manual")): 1,  # c-1002, by r-1
        (("outcome", "approved"), ("path", "automatic")): 1,  # c-1001
        (("outcome", "ineligible"), ("path", "automatic")): 2,  # c-1003, twice
        (("outcome", "declined"), ("path", "manual")): 1,  # the generated customer, by r-2
    }
    assert _series(biz, "appeals_open") == {}
    decided = _series(biz, "appeals_time_to_decision_seconds_count")
    assert decided == {
        (("outcome", "partially_approved"), ("path", "manual")): 1,
        (("outcome", "approved"), ("path", "automatic")): 1,
        (("outcome", "declined"), ("path", "manual")): 1,
    }
    # Each decision came within the hour the test took.
    for labels in decided:
        assert sample(biz, "appeals_time_to_decision_seconds_bucket", le="3600.0", **dict(labels)) == 1
    assert _series(biz, "appeals_review_tasks_open") == {}
    assert sample(biz, "appeals_limit_applies_total") == 2  # c-1002 and c-1001
    assert sample(biz, "appeals_limit_refusals_total") == 0
    assert sample(biz, "appeals_sla_warnings_total") == sample(biz, "appeals_sla_breaches_total") == 0
    assert _series(biz, "appeals_document_rejections_total") == {(("reason", "STATEMENT_PERIOD_SHORT"),): 1}

    # Notices: the in-app ones are what each customer reads at /me/notifications; the emails,
    # what the SMTP sink stored.
    in_app = 0
    with httpx.Client(base_url=stack.api_url, timeout=30) as http:
        for customer_id in ("c-1001", "c-1002", "c-1003", *GENERATED):
            token = mint_token(settings, role=Role.CUSTOMER, subject=customer_id)
            in_app += len(http.get("/me/notifications", headers={"Authorization": f"Bearer {token}"}).json())
    assert in_app > 0
    assert (
        sample(biz, "appeals_notices", about="appeal", audience="customer", channel="IN_APP", state="SENT")
        == in_app
    )
    emails = sum(
        v
        for (name, labels), v in biz.items()
        if name == "appeals_notices"
        and dict(labels)["channel"] == "EMAIL"
        and dict(labels)["state"] == "SENT"
    )
    assert emails == len(read_mail(stack.mail_dir)) > 0
    assert not any(dict(labels)["state"] == "FAILED" for name, labels in biz if name == "appeals_notices")

    appeal = {"workflow_type": "AppealWorkflow", "task_queue": settings.temporal_task_queue}

    def completed(samples: Samples) -> float:
        return sum(
            v
            for (name, labels), v in samples.items()
            if name == "temporal_workflow_completed_total" and appeal.items() <= dict(labels).items()
        )

    # Every appeal's workflow ended (its last workflow task completes after the CLOSED it wrote).
    sdk = eventually_sync(
        lambda: _scrape(urls["worker: Temporal SDK"]),
        lambda s: completed(s) == 5,
        what="5 appeal workflows completed",
    )
    # One open_appeal activity per appeal; decide for the two reviewed ones; apply_limit twice.
    executed = "temporal_activity_execution_latency_count"
    assert (
        sample(
            sdk,
            executed,
            activity_type="open_appeal",
            namespace="default",
            service_name="temporal-core-sdk",
            **appeal,
        )
        == 5
    )
    seen = names(api) | names(biz) | names(sdk)
    for name in (
        "temporal_workflow_task_schedule_to_start_latency_bucket",
        "temporal_workflow_task_execution_latency_bucket",
        "temporal_activity_execution_latency_bucket",
        "temporal_activity_schedule_to_start_latency_bucket",
    ):
        assert name in seen, sorted(n for n in seen if n.startswith("temporal_"))
    # The Grafana dashboard graphs only metrics these endpoints exposed, or the SDK's failure
    # counters, which it exposes from the first failure on (none in this walkthrough).
    unseen = dashboard_metric_names() - seen
    assert unseen <= EMITTED_ON_FAILURE, unseen - EMITTED_ON_FAILURE


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
