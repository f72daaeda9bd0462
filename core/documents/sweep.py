"""The document sweep: what storage keeps of files nobody will use is deleted after a retention
period (`APPEALS_DOCUMENT_LEFTOVER_RETENTION`, 30 days by default).

- Rejected files: every version of the upload (and of a kept copy a failed check left) goes,
  `retention` after the verdict. The row stays (a refusal notice is keyed by the file's place
  among the appeal's files, and the audit trail names it), marked `purged_at`, with an audit
  event `document_purged` on the appeal.
- Presigned uploads never completed: `retention` after their link expired (by then completion
  refuses them anyway), the same way.
- Objects no row claims, under the upload and evidence prefixes: an upload cut off between the
  store and its commit, a form posted with a key of its own (a store that enforces no POST
  policy takes it), a check's copy whose verdict was never recorded; once `retention` old.
- S3 multipart uploads begun more than `retention` ago and never finished (a stream that died
  before boto3 could abort it).

Accepted files, their kept copies and their uploads are never touched; neither is anything
younger than `retention`. Each run does at most `batch` documents and looks at at most `batch`
pages of the listing, so one run stays short; the schedule runs it again (workflows/sweep.py).
Run in a worker thread (the sweep activity).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError
from sqlalchemy.engine import Engine
from sqlmodel import and_, col, or_, select

from core.appeals.audit import append_event
from core.appeals.service import lock_appeal
from core.db import session_scope
from core.db.case_tables import Document, DocumentState
from core.settings import Settings
from core.storage import EVIDENCE_PREFIX, delete_all_versions, evidence_key

log = logging.getLogger(__name__)

UPLOAD_PREFIX: Final = "appeals/"
PURGE_EVENT: Final = "document_purged"
ACTOR: Final = "system:document-sweep"


@dataclass
class SweepReport:
    rejected: int = 0  # rejected files deleted
    never_completed: int = 0  # presigned uploads never completed, deleted
    orphans: int = 0  # objects no document row claims, deleted
    multipart_aborted: int = 0  # unfinished S3 multipart uploads aborted
    failed: int = 0  # deletions the store refused (left for the next run)


def sweep_leftovers(
    engine: Engine, s3: Any, settings: Settings, *, now: datetime, retention: timedelta, batch: int = 200
) -> SweepReport:
    report = SweepReport()
    cutoff = now - retention
    for document in _due(engine, cutoff, batch):
        if _purge(engine, s3, settings, document, now=now):
            if document.state == DocumentState.REJECTED:
                report.rejected += 1
            else:
                report.never_completed += 1
        else:
            report.failed += 1
    for prefix in (UPLOAD_PREFIX, EVIDENCE_PREFIX):
        _sweep_orphans(engine, s3, settings, prefix, cutoff, batch, report)
    report.multipart_aborted = _abort_stale_multipart(s3, settings, cutoff, batch)
    log.info(
        "document sweep: %s rejected, %s never completed, %s orphan objects, %s multipart uploads "
        "aborted, %s refused by the store",
        report.rejected,
        report.never_completed,
        report.orphans,
        report.multipart_aborted,
        report.failed,
    )
    return report


def _due(engine: Engine, cutoff: datetime, batch: int) -> list[Document]:
    with session_scope(engine, read_only=True) as session:
        return list(
            session.exec(
                select(Document)
                .where(
                    col(Document.purged_at).is_(None),
                    or_(
                        and_(
                            col(Document.state) == DocumentState.REJECTED, col(Document.verified_at) <= cutoff
                        ),
                        and_(
                            col(Document.state) == DocumentState.AWAITING_UPLOAD,
                            col(Document.upload_expires_at) <= cutoff,
                        ),
                    ),
                )
                .order_by(col(Document.created_at), col(Document.id))
                .limit(batch)
            ).all()
        )


def _purge(engine: Engine, s3: Any, settings: Settings, document: Document, *, now: datetime) -> bool:
    keys = [document.s3_key, evidence_key(document.appeal_id, document.id)]
    deleted = 0
    try:
        for key in keys:
            deleted += delete_all_versions(s3, settings.s3_bucket, key)
    except (BotoCoreError, ClientError):
        log.warning("document sweep: could not delete %s; next run", document.id, exc_info=True)
        return False
    with session_scope(engine) as session:
        current = session.get(Document, document.id)
        if current is None or current.purged_at is not None or current.state != document.state:
            return True  # another run took it, or it moved on (a late completion): nothing to say
        lock_appeal(session, document.appeal_id)
        current.purged_at = now
        session.add(current)
        append_event(
            session,
            appeal_id=document.appeal_id,
            at=now,
            actor=ACTOR,
            kind=PURGE_EVENT,
            details={
                "document_id": document.id,
                "doc_type": document.doc_type,
                "state": document.state.value,
                "rejection_code": document.rejection_code,
                "versions_deleted": deleted,
            },
        )
    return True


def _listing(s3: Any, settings: Settings, prefix: str, pages: int) -> Iterator[list[dict[str, Any]]]:
    """The bucket's versions under `prefix`, a page at a time (at most `pages`)."""
    paginator = s3.get_paginator("list_object_versions")
    for number, page in enumerate(paginator.paginate(Bucket=settings.s3_bucket, Prefix=prefix)):
        if number >= pages:
            return
        yield [*page.get("Versions", []), *page.get("DeleteMarkers", [])]


def _sweep_orphans(
    engine: Engine,
    s3: Any,
    settings: Settings,
    prefix: str,
    cutoff: datetime,
    pages: int,
    report: SweepReport,
) -> None:
    for entries in _listing(s3, settings, prefix, pages):
        newest: dict[str, datetime] = {}
        for entry in entries:
            key, modified = entry["Key"], entry["LastModified"]
            newest[key] = max(newest.get(key, modified), modified)
        old = [key for key, modified in newest.items() if modified <= cutoff]
        if not old:
            continue
        claimed = _claimed(engine, old)
        for key in old:
            if key in claimed:
                continue
            try:
                delete_all_versions(s3, settings.s3_bucket, key)
                report.orphans += 1
            except (BotoCoreError, ClientError):
                log.warning("document sweep: could not delete orphan %s", key, exc_info=True)
                report.failed += 1


def _claimed(engine: Engine, keys: list[str]) -> set[str]:
    """The keys a document row still claims: its upload while it is not purged, and its kept
    copy unless it was rejected (a rejected file keeps none) or purged."""
    document_ids = {key.rsplit("/", 1)[-1] for key in keys}
    with session_scope(engine, read_only=True) as session:
        documents = session.exec(
            select(Document).where(
                or_(col(Document.s3_key).in_(keys), col(Document.id).in_(document_ids)),
            )
        ).all()
    claimed: set[str] = set()
    for document in documents:
        if document.purged_at is not None:
            continue
        claimed.add(document.s3_key)
        if document.state != DocumentState.REJECTED:
            claimed.add(evidence_key(document.appeal_id, document.id))
        if document.evidence_key:
            claimed.add(document.evidence_key)
    return claimed


def _abort_stale_multipart(s3: Any, settings: Settings, cutoff: datetime, limit: int) -> int:
    aborted = 0
    try:
        listing = s3.list_multipart_uploads(Bucket=settings.s3_bucket, Prefix=UPLOAD_PREFIX, MaxUploads=limit)
    except (BotoCoreError, ClientError):
        log.warning("document sweep: could not list multipart uploads", exc_info=True)
        return 0
    for upload in listing.get("Uploads", []):
        if upload["Initiated"] > cutoff:
            continue
        try:
            s3.abort_multipart_upload(
                Bucket=settings.s3_bucket, Key=upload["Key"], UploadId=upload["UploadId"]
            )
            aborted += 1
        except (BotoCoreError, ClientError):
            log.warning("document sweep: could not abort %s", upload["Key"], exc_info=True)
    return aborted
