"""Evidence kept apart from the upload, re-checked whenever it is used, and served only when safe.

An upload key can be written again: its presigned POST stays valid for minutes, and a store that
enforces no POST policy (moto) takes a form with any key. So the bytes a verdict is about are
first copied server-side under `evidence/` (core/storage.py `keep_copy`) and the copy is what
verification inspects; an accepted copy's version is recorded (where the bucket is versioned)
and locked (where it has S3 Object Lock). Every later use of the file (a download link, a
preview, a re-assessment) re-reads that copy and compares its SHA-256 with the recorded one. A
mismatch, or a copy that is gone, puts a HIGH red flag on the document and an audit event
`document_integrity_failed` on the appeal, and the file is not served.

Links are issued only for files whose bytes were verified: an accepted file, or a rejected one
sniffed as a PDF, an image, CSV or plain text with no active content; never a file not checked
yet, one rejected as active content or of a type we do not read, one found changed, or one the
sweep removed (`withheld_reason`). Every link issued is an audit event `document_link_issued`.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.appeals.audit import append_event
from core.appeals.service import lock_appeal
from core.db import session_scope
from core.db.case_tables import Document, DocumentState
from core.documents.types import RedFlag, Severity, SniffedType, flag_row
from core.settings import Settings
from core.storage import KeptCopy, delete_all_versions, evidence_key, keep_copy, lock_version, read_object

log = logging.getLogger(__name__)

INTEGRITY_FLAG: Final = RedFlag(
    "DOCUMENT_CHANGED_IN_STORE",
    Severity.HIGH,
    "The stored file no longer matches the file that was checked (its SHA-256 differs, or it is "
    "gone): it may have been replaced. It is no longer served.",
    "存储中的文件与核验时的文件不一致（SHA-256 不同或文件已不存在），可能已被替换，已停止提供。",
)
INTEGRITY_EVENT: Final = "document_integrity_failed"
LINK_EVENT: Final = "document_link_issued"

# Rejected files whose bytes are a kind we read and that carry nothing active: a reviewer may
# still open them (a statement refused for its period, say). Anything else rejected is not linked.
_SAFE_REJECTED_SNIFFS: Final = frozenset(
    {SniffedType.PDF, SniffedType.PNG, SniffedType.JPEG, SniffedType.CSV, SniffedType.TEXT}
)
_ACTIVE_REJECTIONS: Final = frozenset(
    {"FILE_ACTIVE_CONTENT", "FILE_EXECUTABLE", "FILE_ARCHIVE", "FILE_TYPE_NOT_ALLOWED"}
)


class Purpose(StrEnum):
    """Why a kept file is being read again."""

    DOWNLOAD = "download"
    PREVIEW = "preview"
    ASSESSMENT = "assessment"  # before an assessment (a re-assessment too) reads the kept files


class Withheld(StrEnum):
    """Why no link is issued for a document (the `reason` of a `document_withheld` problem)."""

    NOT_VERIFIED = "not_verified"
    ACTIVE_CONTENT = "active_content"
    INTEGRITY_FAILED = "integrity_failed"
    REMOVED = "removed"
    # Not the document's doing: the store did not answer the re-check (a listing still answers).
    STORE_UNAVAILABLE = "store_unavailable"


# -- keeping ---------------------------------------------------------------------------------


def keep_for_inspection(s3: Any, settings: Settings, document: Document) -> KeptCopy | None:
    """The upload copied server-side to the document's evidence key; None when the upload is
    not in the store. Verification inspects this copy, so the verdict is about the kept bytes."""
    return keep_copy(
        s3, settings, source=document.s3_key, target=evidence_key(document.appeal_id, document.id)
    )


def lock_kept(s3: Any, settings: Settings, kept: KeptCopy, *, today: date) -> datetime | None:
    """Locks an accepted copy for `evidence_lock_days` from `today`; the day it is locked until,
    or None where the store cannot lock it (or the settings say not to)."""
    if settings.evidence_lock_days <= 0:
        return None
    until = datetime.combine(today + timedelta(days=settings.evidence_lock_days), time(0), UTC)
    return until if lock_version(s3, settings, kept, until=until) else None


def discard(s3: Any, settings: Settings, key: str) -> None:
    """Deletes every version at `key`; a failure is logged (the sweep takes what is left)."""
    try:
        delete_all_versions(s3, settings.s3_bucket, key)
    except (BotoCoreError, ClientError):
        log.warning("could not delete %s", key, exc_info=True)


# -- re-checking -----------------------------------------------------------------------------


def served_copy(document: Document) -> KeptCopy:
    """What is served and re-checked: the kept copy, or the upload itself for a document
    verified before copies were kept (or rejected: only accepted copies are kept)."""
    if document.evidence_key:
        return KeptCopy(document.evidence_key, document.evidence_version_id)
    return KeptCopy(document.s3_key, None)


@dataclass(frozen=True)
class IntegrityCheck:
    document_id: str
    expected_sha256: str | None
    found_sha256: str | None  # None: the copy is gone, or larger than any upload may be
    copy: KeptCopy

    @property
    def intact(self) -> bool:
        return self.expected_sha256 is not None and self.found_sha256 == self.expected_sha256


def check_integrity(s3: Any, settings: Settings, document: Document) -> IntegrityCheck:
    """Reads the served copy (its recorded version) and hashes it. Run in a worker thread."""
    copy = served_copy(document)
    stored = read_object(
        s3, settings.s3_bucket, copy.key, max_bytes=settings.document_max_bytes, version_id=copy.version_id
    )
    found = None
    if stored is not None and stored.data is not None:
        found = hashlib.sha256(stored.data).hexdigest()
    return IntegrityCheck(document.id, document.sha256, found, copy)


def record_integrity_failure(
    session: Session, check: IntegrityCheck, *, at: datetime, actor: str, purpose: Purpose
) -> None:
    """The red flag on the document (once) and an audit event (each time it is found)."""
    document = session.get(Document, check.document_id)
    if document is None:
        return
    lock_appeal(session, document.appeal_id)
    if all(flag.get("code") != INTEGRITY_FLAG.code for flag in document.flags):
        document.flags = [*document.flags, flag_row(INTEGRITY_FLAG)]
        session.add(document)
    append_event(
        session,
        appeal_id=document.appeal_id,
        at=at,
        actor=actor,
        kind=INTEGRITY_EVENT,
        details={
            "document_id": document.id,
            "doc_type": document.doc_type,
            "purpose": purpose.value,
            "expected_sha256": check.expected_sha256,
            "found_sha256": check.found_sha256,
            "key": check.copy.key,
            "version_id": check.copy.version_id,
        },
    )
    log.warning(
        "document %s of appeal %s does not match its SHA-256 (%s): flagged, not served",
        document.id,
        document.appeal_id,
        purpose.value,
    )


def recheck_kept_documents(
    engine: Engine,
    s3: Any,
    settings: Settings,
    appeal_id: str,
    *,
    at: datetime,
    actor: str,
    skip: frozenset[str] = frozenset(),
) -> list[IntegrityCheck]:
    """Before an assessment (a re-assessment too): every accepted file of the appeal but those
    in `skip` (checked moments ago) is read again and compared with its SHA-256; the failures
    are recorded, so their red flags reach the assessment. Returns the failed checks."""
    with session_scope(engine, read_only=True) as session:
        accepted = session.exec(
            select(Document)
            .where(Document.appeal_id == appeal_id, Document.state == DocumentState.ACCEPTED)
            .order_by(col(Document.created_at), col(Document.id))
        ).all()
    checks = [check_integrity(s3, settings, d) for d in accepted if d.id not in skip]
    failed = [check for check in checks if not check.intact]
    if failed:
        with session_scope(engine) as session:
            for check in failed:
                record_integrity_failure(session, check, at=at, actor=actor, purpose=Purpose.ASSESSMENT)
    return failed


# -- serving ---------------------------------------------------------------------------------


def withheld_reason(document: Document) -> Withheld | None:
    """Why this document gets no link, or None when one may be issued (after the SHA-256
    re-check). Pure: reads the row only."""
    if document.purged_at is not None:
        return Withheld.REMOVED
    if document.state not in (DocumentState.ACCEPTED, DocumentState.REJECTED) or not document.sha256:
        return Withheld.NOT_VERIFIED
    if any(flag.get("code") == INTEGRITY_FLAG.code for flag in document.flags):
        return Withheld.INTEGRITY_FAILED
    if document.state == DocumentState.REJECTED and (
        document.sniffed_type not in _SAFE_REJECTED_SNIFFS or document.rejection_code in _ACTIVE_REJECTIONS
    ):
        return Withheld.ACTIVE_CONTENT
    return None


@dataclass(frozen=True)
class IssuedLink:
    document_id: str
    disposition: str  # "attachment" or "inline"
    expires_at: datetime
    copy: KeptCopy


def record_links_issued(
    session: Session, appeal_id: str, links: list[IssuedLink], *, at: datetime, actor: str
) -> None:
    """One audit event per link handed out: who, which file (and version), how, until when."""
    if not links:
        return
    lock_appeal(session, appeal_id)
    for link in links:
        append_event(
            session,
            appeal_id=appeal_id,
            at=at,
            actor=actor,
            kind=LINK_EVENT,
            details={
                "document_id": link.document_id,
                "disposition": link.disposition,
                "expires_at": link.expires_at.isoformat(),
                "version_id": link.copy.version_id,
            },
        )
