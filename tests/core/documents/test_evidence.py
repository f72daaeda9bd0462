"""Kept evidence on the real S3 server and both databases (issue 13, item 7): an accepted file
is a server-side copy under evidence/, pinned by version and locked where the bucket can; what
is written to its keys later never changes what is served or assessed, and a copy found changed
is a red flag and an audit event."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.appeals.assessment import build_input
from core.appeals.audit import appeal_events, verify_chain
from core.db import session_scope
from core.db.case_tables import Document
from core.documents.evidence import (
    INTEGRITY_EVENT,
    INTEGRITY_FLAG,
    Withheld,
    check_integrity,
    recheck_kept_documents,
    withheld_reason,
)
from core.settings import Settings
from core.storage import evidence_key, make_s3_client
from tests.core.documents.factories import csv_statement_en, many_rows
from tests.core.documents.test_verification import NOW, TODAY, Case, _rows


@pytest.fixture
def case(engine: Engine, settings: Settings) -> Case:
    return Case(engine, settings, make_s3_client(settings))


@pytest.fixture
def plain_case(engine: Engine, settings: Settings) -> Case:
    """A bucket without versioning or object lock, as some stores are."""
    plain = settings.model_copy(update={"s3_bucket": f"plain-{uuid.uuid4().hex[:8]}"})
    s3 = make_s3_client(plain)
    s3.create_bucket(Bucket=plain.s3_bucket)
    return Case(engine, plain, s3)


def _versions(case: Case, key: str) -> list[dict[str, Any]]:
    listing = case.s3.list_object_versions(Bucket=case.settings.s3_bucket, Prefix=key)
    return [v for v in listing.get("Versions", []) if v["Key"] == key]


def _read(case: Case, key: str, version: str | None = None) -> bytes:
    params = {"Bucket": case.settings.s3_bucket, "Key": key}
    if version:
        params["VersionId"] = version
    body: bytes = case.s3.get_object(**params)["Body"].read()
    return body


def test_an_accepted_file_is_kept_as_a_locked_version_apart_from_its_upload(case: Case) -> None:
    content = csv_statement_en(_rows())
    outcome = case.verify(content, "text/csv")
    assert outcome.accepted
    document = case.document(outcome.document_id)
    assert document.evidence_key == evidence_key(case.appeal_id, document.id) != document.s3_key
    assert document.evidence_version_id and document.sha256 == hashlib.sha256(content).hexdigest()
    assert document.evidence_locked_until is not None and document.evidence_locked_until.date() > TODAY
    assert _read(case, document.evidence_key, document.evidence_version_id) == content
    # Object lock: the kept version cannot be deleted.
    with pytest.raises(ClientError) as refused:
        case.s3.delete_object(
            Bucket=case.settings.s3_bucket, Key=document.evidence_key, VersionId=document.evidence_version_id
        )
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert withheld_reason(document) is None


def test_writing_over_both_keys_changes_nothing_that_is_served(case: Case) -> None:
    """The probe's attack: forms with another customer's keys (a store that enforces no POST
    policy takes them). The upload and the evidence key get new versions; the pinned one stays."""
    content = csv_statement_en(_rows())
    document = case.document(case.verify(content, "text/csv").document_id)
    assert document.evidence_key is not None
    for key in (document.s3_key, document.evidence_key):
        case.s3.put_object(Bucket=case.settings.s3_bucket, Key=key, Body=b"date,amount\n2026-01-01,1.00\n")
    check = check_integrity(case.s3, case.settings, document)
    assert check.intact and check.copy.version_id == document.evidence_version_id
    assert (
        recheck_kept_documents(case.engine, case.s3, case.settings, case.appeal_id, at=NOW, actor="system")
        == []
    )


def test_a_rejected_file_keeps_no_copy(case: Case) -> None:
    outcome = case.verify(b"<!-- x --><html><script>alert(1)</script>", "text/plain")
    assert not outcome.accepted and outcome.rejection_code == "FILE_ACTIVE_CONTENT"
    document = case.document(outcome.document_id)
    assert document.evidence_key is None and document.sniffed_type == "MARKUP"
    assert _versions(case, evidence_key(case.appeal_id, document.id)) == []
    assert withheld_reason(document) is Withheld.ACTIVE_CONTENT


def test_active_content_deep_in_a_statement_is_refused_by_verification(case: Case) -> None:
    """The first 8 KiB are a clean statement; the markup comes after the head the gate sniffs."""
    lines = csv_statement_en(many_rows(600)).decode().splitlines(keepends=True)
    lines.insert(500, "2016-06-01,<svg/onload=alert(1)>,Shop,-1.00,1.00\n")
    content = "".join(lines).encode()
    assert content.index(b"<svg") > 8192
    outcome = case.verify(content, "text/csv")
    assert not outcome.accepted and outcome.rejection_code == "FILE_ACTIVE_CONTENT"
    assert case.document(outcome.document_id).sniffed_type == "MARKUP"
    assert case.transactions() == []


def test_a_kept_copy_found_changed_is_a_red_flag_and_an_audit_event(plain_case: Case) -> None:
    case = plain_case
    content = csv_statement_en(_rows())
    document = case.document(case.verify(content, "text/csv").document_id)
    assert document.evidence_key is not None and document.evidence_version_id is None  # no versions here
    assert document.evidence_locked_until is None  # nor object lock
    forged = csv_statement_en(_rows(seed=99))
    case.s3.put_object(Bucket=case.settings.s3_bucket, Key=document.evidence_key, Body=forged)

    failed = recheck_kept_documents(
        case.engine, case.s3, case.settings, case.appeal_id, at=NOW, actor="system"
    )
    assert [check.document_id for check in failed] == [document.id]
    assert failed[0].found_sha256 == hashlib.sha256(forged).hexdigest()
    changed = case.document(document.id)
    assert [flag["code"] for flag in changed.flags] == [INTEGRITY_FLAG.code]
    assert withheld_reason(changed) is Withheld.INTEGRITY_FAILED
    with session_scope(case.engine, read_only=True) as session:
        events = appeal_events(session, case.appeal_id)
        # The red flag reaches the assessment: it forces a manual review.
        assert INTEGRITY_FLAG.code in {
            flag.code for flag in build_input(session, case.appeal_id, TODAY).red_flags
        }
    [event] = [e for e in events if e.kind == INTEGRITY_EVENT]
    assert event.details["document_id"] == document.id and event.details["purpose"] == "assessment"
    assert event.details["expected_sha256"] == document.sha256
    assert event.details["found_sha256"] == hashlib.sha256(forged).hexdigest()
    assert verify_chain(events) is None

    # Found again: another event, still one flag.
    recheck_kept_documents(case.engine, case.s3, case.settings, case.appeal_id, at=NOW, actor="system")
    with session_scope(case.engine, read_only=True) as session:
        again = session.exec(select(Document).where(Document.id == document.id)).one()
        assert len(again.flags) == 1
        assert [e.kind for e in appeal_events(session, case.appeal_id)].count(INTEGRITY_EVENT) == 2


def test_a_kept_copy_that_is_gone_is_a_failure_too(plain_case: Case) -> None:
    case = plain_case
    document = case.document(case.verify(csv_statement_en(_rows()), "text/csv").document_id)
    assert document.evidence_key is not None
    case.s3.delete_object(Bucket=case.settings.s3_bucket, Key=document.evidence_key)
    check = check_integrity(case.s3, case.settings, document)
    assert not check.intact and check.found_sha256 is None
