"""The document sweep on the real S3 server and both databases (issue 13, item 8): rejected
files, presigned uploads never completed and objects no row claims are deleted, every version,
once the retention period has passed; nothing accepted and nothing younger is touched."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core.appeals.audit import appeal_events, verify_chain
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.case_tables import Document, DocumentState
from core.documents.evidence import Withheld, withheld_reason
from core.documents.sweep import PURGE_EVENT, sweep_leftovers
from core.settings import Settings
from core.storage import make_s3_client
from tests.core.documents.factories import csv_statement_en
from tests.core.documents.test_verification import Case, _rows

RETENTION = timedelta(days=30)
HOSTILE = b"<!-- x --><html><script>alert(1)</script>"


@pytest.fixture
def case(engine: Engine, settings: Settings) -> Case:
    return Case(engine, settings, make_s3_client(settings))


def _keys(case: Case, prefix: str) -> set[str]:
    """Every key with a version or a delete marker under `prefix`."""
    listing = case.s3.list_object_versions(Bucket=case.settings.s3_bucket, Prefix=prefix)
    return {v["Key"] for v in [*listing.get("Versions", []), *listing.get("DeleteMarkers", [])]}


def _never_completed(case: Case) -> Document:
    """A presigned upload whose file arrived but which was never completed; its link expired."""
    document_id = str(uuid.uuid4())
    key = f"appeals/{case.appeal_id}/{document_id}"
    case.s3.put_object(Bucket=case.settings.s3_bucket, Key=key, Body=b"date,amount\n")
    with session_scope(case.engine) as session:
        session.add(
            Document(
                id=document_id,
                appeal_id=case.appeal_id,
                customer_id=case.customer.customer_id,
                doc_type="BANK_STATEMENT",
                s3_key=key,
                filename="late.csv",
                declared_content_type="text/csv",
                state=DocumentState.AWAITING_UPLOAD,
                upload_method="presigned",
                upload_expires_at=SYSTEM_CLOCK.now() - timedelta(minutes=1),
            )
        )
    return case.document(document_id)


def test_leftovers_go_after_the_retention_period_and_nothing_else(case: Case) -> None:
    accepted = case.document(case.verify(csv_statement_en(_rows()), "text/csv").document_id)
    rejected = case.document(case.verify(HOSTILE, "text/plain", "OTHER").document_id)
    pending = _never_completed(case)
    orphans = {f"appeals/{case.appeal_id}/{uuid.uuid4()}", f"evidence/{case.appeal_id}/{uuid.uuid4()}"}
    for key in orphans:  # an upload cut off before its commit; a forged form's own key
        case.s3.put_object(Bucket=case.settings.s3_bucket, Key=key, Body=b"x")
    before = _keys(case, "appeals/") | _keys(case, "evidence/")
    assert {accepted.s3_key, accepted.evidence_key, rejected.s3_key, pending.s3_key} | orphans <= before

    # Not yet: everything is younger than the retention period.
    now = SYSTEM_CLOCK.now()
    early = sweep_leftovers(case.engine, case.s3, case.settings, now=now, retention=RETENTION)
    assert (early.rejected, early.never_completed, early.orphans) == (0, 0, 0)
    assert _keys(case, "appeals/") | _keys(case, "evidence/") == before

    later = now + RETENTION + timedelta(days=1)
    report = sweep_leftovers(case.engine, case.s3, case.settings, now=later, retention=RETENTION)
    assert (report.rejected, report.never_completed, report.orphans, report.failed) == (1, 1, 2, 0)
    # Gone, every version and without a delete marker; the accepted file and its kept copy stay.
    assert _keys(case, "appeals/") | _keys(case, "evidence/") == {accepted.s3_key, accepted.evidence_key}
    for document in (rejected, pending):
        purged = case.document(document.id)
        assert purged.purged_at == later and purged.state == document.state
        assert withheld_reason(purged) is Withheld.REMOVED
    assert case.document(accepted.id).purged_at is None

    with session_scope(case.engine, read_only=True) as session:
        events = appeal_events(session, case.appeal_id)
    purges = {e.details["document_id"]: e for e in events if e.kind == PURGE_EVENT}
    assert set(purges) == {rejected.id, pending.id}
    assert purges[rejected.id].details["rejection_code"] == "FILE_ACTIVE_CONTENT"
    assert purges[rejected.id].details["versions_deleted"] >= 1
    assert verify_chain(events) is None

    # Run again: nothing left to do, nothing recorded twice.
    again = sweep_leftovers(case.engine, case.s3, case.settings, now=later, retention=RETENTION)
    assert (again.rejected, again.never_completed, again.orphans) == (0, 0, 0)
    with session_scope(case.engine, read_only=True) as session:
        assert [e.kind for e in appeal_events(session, case.appeal_id)].count(PURGE_EVENT) == 2


def test_a_forged_object_under_a_purged_files_key_is_swept_too(case: Case) -> None:
    rejected = case.document(case.verify(HOSTILE, "text/plain", "OTHER").document_id)
    later = SYSTEM_CLOCK.now() + RETENTION + timedelta(days=1)
    sweep_leftovers(case.engine, case.s3, case.settings, now=later, retention=RETENTION)
    # Someone posts to the old key again (a store without POST policies takes it).
    case.s3.put_object(Bucket=case.settings.s3_bucket, Key=rejected.s3_key, Body=HOSTILE)
    report = sweep_leftovers(
        case.engine, case.s3, case.settings, now=later + RETENTION + timedelta(days=1), retention=RETENTION
    )
    assert report.orphans == 1 and _keys(case, rejected.s3_key) == set()


def test_unfinished_multipart_uploads_are_aborted(case: Case) -> None:
    key = f"appeals/{case.appeal_id}/{uuid.uuid4()}"
    started: dict[str, Any] = case.s3.create_multipart_upload(Bucket=case.settings.s3_bucket, Key=key)
    later = SYSTEM_CLOCK.now() + RETENTION + timedelta(days=1)
    report = sweep_leftovers(case.engine, case.s3, case.settings, now=later, retention=RETENTION)
    assert report.multipart_aborted == 1
    uploads = case.s3.list_multipart_uploads(Bucket=case.settings.s3_bucket).get("Uploads", [])
    assert started["UploadId"] not in {u["UploadId"] for u in uploads}
