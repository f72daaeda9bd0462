"""Evidence that cannot be swapped, and links that are recorded and never hand out active content
(issue 13, items 7 and 8), on the real app, database (SQLite and PostgreSQL), S3 server (moto,
which enforces no POST policy: the probe's attack works on it) and Temporal dev server."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlmodel import col, select

from core.appeals.assessment import latest_assessment
from core.appeals.audit import appeal_events, verify_chain
from core.auth import Role
from core.db import session_scope
from core.db.case_tables import AppealEvent, Document
from core.documents.evidence import INTEGRITY_EVENT, INTEGRITY_FLAG, LINK_EVENT
from core.settings import Settings
from core.storage import evidence_key, make_s3_client
from tests.api.conftest import Api
from tests.api.pages.helpers import sign_in
from tests.api.review_helpers import LATE_PAYER, open_task, upload_missing
from tests.api.test_appeals_api import _assert_problem, _wait_status
from tests.documents import recent_statement_csv, text_pdf
from tests.eventually import eventually
from tests.factories import make_customer

pytestmark = pytest.mark.asyncio(loop_scope="session")

FORGED = b"date,description,amount,balance\n2026-09-01,Salary,99999.00,99999.00\n"


async def _appeal(api: Api, **customer: Any) -> tuple[str, dict[str, str]]:
    c = make_customer(api.engine, **customer)
    me = api.auth(Role.CUSTOMER, c.customer_id)
    response = await api.http.post(
        "/appeals", json={"account_id": c.account_id, "requested_limit_minor": 600_000}, headers=me
    )
    assert response.status_code == 201, response.text
    appeal_id: str = response.json()["id"]
    await _wait_status(api, appeal_id, me, "AWAITING_DOCUMENTS")
    return appeal_id, me


async def _upload(
    api: Api, appeal_id: str, me: dict[str, str], doc_type: str, body: bytes, content_type: str
) -> str:
    response = await api.http.post(
        f"/appeals/{appeal_id}/documents",
        headers=me,
        data={"doc_type": doc_type},
        files={"file": ("upload", body, content_type)},
    )
    assert response.status_code == 201, response.text
    document_id: str = response.json()["id"]
    return document_id


def _document(api: Api, document_id: str) -> Document:
    with session_scope(api.engine, read_only=True) as session:
        document = session.get(Document, document_id)
        assert document is not None
        return document


async def _verdict(api: Api, document_id: str) -> Document:
    return await eventually(
        lambda: _document(api, document_id),
        lambda d: d.state in ("ACCEPTED", "REJECTED"),
        what=f"a verdict on document {document_id}",
    )


async def _forge(api: Api, key: str, body: bytes = FORGED) -> None:
    """Another customer's presigned form, its `key` field changed to `key`, posted to the store
    (a store that enforces POST policies refuses it; moto takes it)."""
    appeal_id, me = await _appeal(api)
    started = await api.http.post(
        f"/appeals/{appeal_id}/documents/uploads",
        json={
            "doc_type": "BANK_STATEMENT",
            "content_type": "text/csv",
            "size_bytes": len(body),
            "filename": "x.csv",
        },
        headers=me,
    )
    assert started.status_code == 201, started.text
    upload = started.json()
    async with httpx.AsyncClient(timeout=30) as store:
        posted = await store.post(
            upload["url"], data={**upload["fields"], "key": key}, files={"file": ("x.csv", body, "text/csv")}
        )
    assert posted.status_code in (200, 201, 204), posted.text
    latest = make_s3_client(api.settings).get_object(Bucket=api.settings.s3_bucket, Key=key)["Body"].read()
    assert latest == body  # the store did take it


def _events(api: Api, appeal_id: str, kind: str) -> list[AppealEvent]:
    with session_scope(api.engine, read_only=True) as session:
        return [e for e in appeal_events(session, appeal_id) if e.kind == kind]


def _chain_holds(api: Api, appeal_id: str) -> bool:
    with session_scope(api.engine, read_only=True) as session:
        return verify_chain(appeal_events(session, appeal_id)) is None


async def _listed(api: Api, appeal_id: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    response = await api.http.get(f"/appeals/{appeal_id}/documents", headers=headers)
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def _fetch(url: str) -> bytes:
    async with httpx.AsyncClient(timeout=30) as store:
        response = await store.get(url)
    assert response.status_code == 200, response.text
    return response.content


async def test_forms_with_another_customers_keys_change_nothing_that_is_served(api: Api) -> None:
    victim, me = await _appeal(api)
    statement = recent_statement_csv(seed=11)
    document_id = await _upload(api, victim, me, "BANK_STATEMENT", statement, "text/csv")
    document = await _verdict(api, document_id)
    assert document.state == "ACCEPTED" and document.evidence_version_id
    assert document.evidence_key == evidence_key(victim, document_id)

    # The probe's attack, on the upload key and on the kept copy's key.
    await _forge(api, document.s3_key)
    await _forge(api, document.evidence_key)

    reviewer = api.auth(Role.REVIEWER, "r-1")
    [item] = await _listed(api, victim, reviewer)
    assert item["download_withheld"] is None
    assert await _fetch(item["download_url"]) == statement
    link = await api.http.get(f"/appeals/{victim}/documents/{document_id}/link", headers=reviewer)
    assert link.status_code == 200, link.text
    assert link.json()["disposition"] == "attachment"
    assert await _fetch(link.json()["url"]) == statement

    # Each link handed out is on the audit trail: who, which file and version, until when.
    issued = _events(api, victim, LINK_EVENT)
    assert len(issued) == 2 and {e.actor for e in issued} == {"reviewer:r-1"}
    assert {e.details["document_id"] for e in issued} == {document_id}
    assert {e.details["version_id"] for e in issued} == {document.evidence_version_id}
    assert _events(api, victim, INTEGRITY_EVENT) == []
    assert _chain_holds(api, victim)
    # Customers get no links, and none is recorded for them.
    [own] = await _listed(api, victim, me)
    assert own["download_url"] is None and own["download_withheld"] is None
    _assert_problem(
        await api.http.get(f"/appeals/{victim}/documents/{document_id}/link", headers=me),
        403,
        "role_required",
    )
    assert len(_events(api, victim, LINK_EVENT)) == 2


class TestStoreWithoutVersions:
    """A bucket without versioning or object lock: a forged form can replace the kept copy
    itself. The SHA-256 re-check catches it wherever the file is used."""

    @pytest.fixture
    def settings(self, settings: Settings) -> Settings:
        plain = settings.model_copy(update={"s3_bucket": f"plain-{uuid.uuid4().hex[:8]}"})
        make_s3_client(plain).create_bucket(Bucket=plain.s3_bucket)
        return plain

    async def test_a_replaced_copy_is_flagged_recorded_and_never_served(self, api: Api) -> None:
        victim, me = await _appeal(api)
        document_id = await _upload(
            api, victim, me, "BANK_STATEMENT", recent_statement_csv(seed=12), "text/csv"
        )
        document = await _verdict(api, document_id)
        assert document.state == "ACCEPTED" and document.evidence_key and document.evidence_version_id is None
        await _forge(api, document.evidence_key)

        reviewer = api.auth(Role.REVIEWER, "r-1")
        body = _assert_problem(
            await api.http.get(f"/appeals/{victim}/documents/{document_id}/link", headers=reviewer),
            409,
            "document_integrity_failed",
        )
        assert body["document_id"] == document_id
        flagged = _document(api, document_id)
        assert [flag["code"] for flag in flagged.flags] == [INTEGRITY_FLAG.code]
        [event] = _events(api, victim, INTEGRITY_EVENT)
        assert event.actor == "reviewer:r-1" and event.details["purpose"] == "download"
        assert event.details["expected_sha256"] == document.sha256
        assert event.details["found_sha256"] == hashlib.sha256(FORGED).hexdigest()

        # From now on the listing withholds it too, and says why; a preview is refused alike.
        [item] = await _listed(api, victim, reviewer)
        assert item["download_url"] is None and item["download_withheld"] == "integrity_failed"
        withheld = _assert_problem(
            await api.http.get(
                f"/appeals/{victim}/documents/{document_id}/link", params={"inline": "true"}, headers=reviewer
            ),
            409,
            "document_withheld",
        )
        assert withheld["reason"] == "integrity_failed"
        assert _events(api, victim, LINK_EVENT) == []
        assert _chain_holds(api, victim)

    async def test_kept_files_are_checked_again_before_the_assessment(self, api: Api) -> None:
        """A late payer needs a statement and a credit report: the statement is accepted and kept,
        its copy is replaced, and the credit report arriving runs the assessment, which reads the
        statement again first. The red flag reaches the assessment; the event names the step."""
        appeal_id, me = await _appeal(api, days_past_due=LATE_PAYER)
        statement_id = await _upload(
            api, appeal_id, me, "BANK_STATEMENT", recent_statement_csv(seed=13), "text/csv"
        )
        statement = await _verdict(api, statement_id)
        assert statement.state == "ACCEPTED" and statement.evidence_key
        await _forge(api, statement.evidence_key)
        report_id = await _upload(
            api, appeal_id, me, "CREDIT_REPORT", text_pdf("CREDIT_REPORT", ("13",)), "application/pdf"
        )
        await _wait_status(api, appeal_id, me, "PENDING_REVIEW")

        assert (await _verdict(api, report_id)).state == "ACCEPTED"
        [event] = _events(api, appeal_id, INTEGRITY_EVENT)
        assert event.actor == "system" and event.details["purpose"] == "assessment"
        assert event.details["document_id"] == statement_id
        with session_scope(api.engine, read_only=True) as session:
            assessment = latest_assessment(session, appeal_id)
            assert assessment is not None
            assert INTEGRITY_FLAG.code in {flag["code"] for flag in assessment.inputs["red_flags"]}
        assert _chain_holds(api, appeal_id)


async def test_the_presigned_policy_admits_only_the_declared_size(api: Api) -> None:
    appeal_id, me = await _appeal(api)
    content = recent_statement_csv(seed=14)
    started = await api.http.post(
        f"/appeals/{appeal_id}/documents/uploads",
        json={
            "doc_type": "BANK_STATEMENT",
            "content_type": "text/csv",
            "size_bytes": len(content),
            "filename": "s.csv",
        },
        headers=me,
    )
    assert started.status_code == 201, started.text
    upload = started.json()
    policy = json.loads(base64.b64decode(upload["fields"]["policy"]))
    assert ["content-length-range", len(content), len(content)] in policy["conditions"]

    async def post(body: bytes) -> None:
        async with httpx.AsyncClient(timeout=30) as store:
            posted = await store.post(
                upload["url"], data=upload["fields"], files={"file": ("s.csv", body, "text/csv")}
            )
        assert posted.status_code in (200, 201, 204), posted.text

    complete = f"/appeals/{appeal_id}/documents/{upload['document_id']}/complete"
    # The local store enforces no policy and takes a longer file; completion does not.
    await post(content + b"2026-09-30,Extra,1.00,1.00\n")
    body = _assert_problem(await api.http.post(complete, headers=me), 422, "upload_size_mismatch")
    assert body["declared_bytes"] == len(content) and body["received_bytes"] > len(content)
    s3 = make_s3_client(api.settings)
    versions = s3.list_object_versions(Bucket=api.settings.s3_bucket, Prefix=upload["fields"]["key"])
    assert versions.get("Versions", []) == []  # the wrong file is gone, every version of it
    assert _document(api, upload["document_id"]).state == "AWAITING_UPLOAD"
    # The declared file, sent to the same form, is taken.
    await post(content)
    completed = await api.http.post(complete, headers=me)
    assert completed.status_code == 200, completed.text
    assert completed.json()["size_bytes"] == len(content)


async def test_rejected_active_content_is_never_linked(api: Api) -> None:
    appeal_id, me = await _appeal(api)
    hostile = await _upload(
        api, appeal_id, me, "OTHER", b"<!-- x --><html><script>alert(1)</script>", "text/plain"
    )
    short = await _upload(
        api, appeal_id, me, "BANK_STATEMENT", recent_statement_csv(months=1, seed=15), "text/csv"
    )
    assert (await _verdict(api, hostile)).rejection_code == "FILE_ACTIVE_CONTENT"
    assert (await _verdict(api, short)).rejection_code == "STATEMENT_PERIOD_SHORT"

    reviewer = api.auth(Role.REVIEWER, "r-1")
    items = {item["id"]: item for item in await _listed(api, appeal_id, reviewer)}
    assert items[hostile]["download_url"] is None and items[hostile]["download_withheld"] == "active_content"
    # A statement refused for its period is plain CSV: a reviewer may still read it.
    assert items[short]["download_url"] and items[short]["download_withheld"] is None
    body = _assert_problem(
        await api.http.get(f"/appeals/{appeal_id}/documents/{hostile}/link", headers=reviewer),
        409,
        "document_withheld",
    )
    assert body["reason"] == "active_content"
    assert [e.details["document_id"] for e in _events(api, appeal_id, LINK_EVENT)] == [short]
    with session_scope(api.engine, read_only=True) as session:
        kept = session.exec(select(Document).where(col(Document.evidence_key).is_not(None))).all()
        assert hostile not in {d.id for d in kept}


async def test_the_case_page_links_no_active_content_and_records_what_it_serves(api: Api) -> None:
    """The reviewer's case page: a refused web page is listed with why it is not served, and
    has no link; opening it anyway is an error page; a download is an audit event."""
    appeal_id, me = await _appeal(api, days_past_due=LATE_PAYER)
    hostile = await _upload(
        api, appeal_id, me, "OTHER", b"\xef\xbb\xbf<!-- hi --><svg onload=alert(1)>", "text/plain"
    )
    assert (await _verdict(api, hostile)).rejection_code == "FILE_ACTIVE_CONTENT"
    await upload_missing(api, appeal_id, me, seed=16)
    await _wait_status(api, appeal_id, me, "PENDING_REVIEW")
    task_id = (await open_task(api, appeal_id))["id"]

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=api.app), base_url="http://testserver"
    ) as page:
        await sign_in(page, "r-pages", "reviewer")
        html = (await page.get(f"/review/tasks/{task_id}")).text
        assert f"/documents/{hostile}/" not in html
        assert "Not served: refused as active content" in html
        downloads = re.findall(rf'href="(/review/tasks/{task_id}/documents/[0-9a-f-]+/download)"', html)
        assert len(downloads) >= 2  # the statement and the credit report (and a good OTHER file)
        refused = await page.get(
            f"/review/tasks/{task_id}/documents/{hostile}/download", headers={"Accept": "text/html"}
        )
        assert refused.status_code == 409 and refused.headers["content-type"].startswith("text/html")
        assert "never served" in refused.text
        saved = await page.get(downloads[0])
        assert saved.status_code == 303
    [issued] = _events(api, appeal_id, LINK_EVENT)
    assert issued.actor == "reviewer:r-pages" and issued.details["disposition"] == "attachment"
    assert issued.details["document_id"] in downloads[0]
