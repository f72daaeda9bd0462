"""Re-verifies an uploaded object in S3 and records the verdict.

The store is never trusted to have enforced anything (moto enforces no POST policy), so every
property is checked again from the stored bytes: existence, size, type sniffed from the bytes
against the declared type, active content (HTML, SVG, XML, script) anywhere in a text file,
SHA-256, duplicates, PDF structure (in a sandboxed child process), and for bank statements the
transactions, running balance and covered period. The bytes inspected are a server-side copy
under evidence/ (core/documents/evidence.py): an accepted file is kept there, version-pinned
and locked where the store can, and a rejected file's copy is deleted again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.db import session_scope
from core.db.case_tables import ChecklistItem, Document, DocumentState, StatementTransaction
from core.db.types import utcnow
from core.documents.checklist import missing_types, record_document_state
from core.documents.evidence import discard, keep_for_inspection, lock_kept
from core.documents.pdf_flags import red_flags as pdf_red_flags
from core.documents.pdf_inspect import PdfLimits, inspect_pdf
from core.documents.pdf_report import PdfFailure
from core.documents.rejections import FILE_ACTIVE_CONTENT, check_upload, file_too_large, pdf_rejection
from core.documents.sniff import SNIFF_BYTES, decode_text, has_active_content
from core.documents.statement_checks import coverage_gaps, statement_red_flags
from core.documents.statement_model import ParsedStatement, StatementParseError
from core.documents.statements import parse_csv_statement, parse_text_statement
from core.documents.types import DocumentType, RedFlag, Rejection, Severity, SniffedType, flag_row
from core.errors import NotFound
from core.settings import Settings
from core.storage import KeptCopy, read_object


class InspectionInterrupted(RuntimeError):
    """A file could not be read to a verdict because the machine was too busy: retryable."""


UPLOAD_MISSING = Rejection(
    "UPLOAD_MISSING",
    "We did not receive the file. Please upload it again.",
    "我们没有收到该文件，请重新上传。",
)
DUPLICATE_ELSEWHERE = RedFlag(
    "DUPLICATE_OTHER_CUSTOMER",
    Severity.HIGH,
    "The same file (identical SHA-256) was submitted by another customer.",
    "另一位客户提交过完全相同的文件（SHA-256 一致）。",
)
IMAGE_STATEMENT = RedFlag(
    "STATEMENT_NOT_MACHINE_READABLE",
    Severity.LOW,
    "The bank statement is an image; a reviewer has to read it.",
    "银行流水为图片格式，需人工审阅。",
)


def _coverage_rejection(gaps: list[Any], months: int) -> Rejection:
    missing = ", ".join(f"{gap.start.isoformat()} – {gap.end.isoformat()}" for gap in gaps)
    return Rejection(
        "STATEMENT_PERIOD_SHORT",
        f"The statement must cover the last {months} full months; it does not cover {missing}. "
        "Please upload a statement for the whole period.",
        f"对账单需覆盖最近 {months} 个完整自然月，缺少 {missing}，请上传覆盖完整期间的对账单。",
    )


@dataclass
class Inspection:
    """What the bytes say, before the database is consulted."""

    size: int
    sha256: str | None = None
    sniffed: SniffedType | None = None
    rejection: Rejection | None = None
    flags: list[RedFlag] = field(default_factory=list)
    statement: ParsedStatement | None = None
    # The kept copy these bytes were read from, and until when it is locked (accepted files).
    kept: KeptCopy | None = None
    locked_until: datetime | None = None


def inspect_object(
    s3: Any,
    settings: Settings,
    document: Document,
    *,
    today: date,
    statement_months: int | None,
    source: KeptCopy | None = None,
) -> Inspection:
    """Inspects the object at `source` (a kept copy; default: the upload's own key)."""
    source = source or KeptCopy(document.s3_key, None)
    stored = read_object(
        s3,
        settings.s3_bucket,
        source.key,
        max_bytes=settings.document_max_bytes,
        version_id=source.version_id,
    )
    if stored is None:
        return Inspection(size=0, rejection=UPLOAD_MISSING)
    if stored.data is None or stored.size > settings.document_max_bytes:
        # Never read an oversize object: the store did not enforce the presigned limit.
        return Inspection(size=stored.size, rejection=file_too_large(settings.document_max_bytes))
    data = stored.data
    result = Inspection(size=len(data), sha256=hashlib.sha256(data).hexdigest())
    upload = check_upload(
        document.declared_content_type, data[:SNIFF_BYTES], len(data), settings.document_max_bytes
    )
    result.sniffed = upload.sniffed
    if upload.rejection is not None:
        result.rejection = upload.rejection
        return result
    if upload.sniffed in (SniffedType.CSV, SniffedType.TEXT) and has_active_content(data, decode_text(data)):
        # The head was clean; markup further down is refused all the same.
        result.sniffed = SniffedType.MARKUP
        result.rejection = FILE_ACTIVE_CONTENT
        return result

    text: str | None = None
    if upload.sniffed is SniffedType.PDF:
        report = inspect_pdf(
            data,
            PdfLimits(
                memory_bytes=settings.pdf_child_memory_bytes,
                timeout_seconds=settings.pdf_child_timeout_seconds,
            ),
        )
        if report.failure is PdfFailure.INTERRUPTED:
            # No verdict on a file the machine was too busy to read: the activity tries again.
            raise InspectionInterrupted(f"PDF inspection of document {document.id}: {report.failure_detail}")
        result.flags += pdf_red_flags(report)
        result.rejection = pdf_rejection(report)
        if result.rejection is not None:
            return result
        text = report.text

    if document.doc_type == DocumentType.BANK_STATEMENT:
        _inspect_statement(result, data, text, today=today, months=statement_months)
    return result


def _inspect_statement(
    result: Inspection, data: bytes, pdf_text: str | None, *, today: date, months: int | None
) -> None:
    if result.sniffed in (SniffedType.PNG, SniffedType.JPEG):
        result.flags.append(IMAGE_STATEMENT)
        return
    try:
        parsed = parse_text_statement(pdf_text) if pdf_text is not None else parse_csv_statement(data)
    except StatementParseError as exc:
        result.rejection = exc.rejection
        return
    result.statement = parsed
    result.flags += statement_red_flags(parsed)
    if months:
        gaps = coverage_gaps(parsed, months, today)
        if gaps:
            result.rejection = _coverage_rejection(gaps, months)


@dataclass(frozen=True)
class VerificationOutcome:
    document_id: str
    doc_type: str
    accepted: bool
    rejection_code: str | None
    rejection_reason: str | None
    rejection_reason_zh: str | None
    flags: list[str]
    checklist_complete: bool
    missing: list[str]


def verify_document(
    engine: Engine, s3: Any, settings: Settings, *, appeal_id: str, document_id: str, today: date
) -> VerificationOutcome:
    """Three short units of work: claim the document, inspect it without holding a
    transaction, record the verdict (`settle_document`); then the verdict as recorded. A retry
    after a recorded verdict returns it."""
    settle_document(engine, s3, settings, appeal_id=appeal_id, document_id=document_id, today=today)
    with session_scope(engine, read_only=True) as session:
        document = _load(session, appeal_id, document_id)
        missing = missing_types(session, appeal_id)
    return VerificationOutcome(
        document_id=document.id,
        doc_type=document.doc_type,
        accepted=document.state == DocumentState.ACCEPTED,
        rejection_code=document.rejection_code,
        rejection_reason=document.rejection_reason,
        rejection_reason_zh=document.rejection_reason_zh,
        flags=[flag["code"] for flag in document.flags],
        checklist_complete=not missing,
        missing=missing,
    )


def settle_document(
    engine: Engine, s3: Any, settings: Settings, *, appeal_id: str, document_id: str, today: date
) -> None:
    """verify_document without reading the verdict back, for a caller that reads the appeal's
    documents next anyway (the appeal's check step): claim, inspect, record."""
    with session_scope(engine) as session:
        document = _load(session, appeal_id, document_id)
        if document.state not in (DocumentState.ACCEPTED, DocumentState.REJECTED):
            document.state = DocumentState.VERIFYING
            session.add(document)
            record_document_state(session, document)
        item = session.exec(
            select(ChecklistItem).where(
                ChecklistItem.appeal_id == appeal_id, ChecklistItem.doc_type == document.doc_type
            )
        ).first()
        months = item.min_full_months if item else None
    if document.state == DocumentState.VERIFYING:
        inspection = _inspect_kept_copy(s3, settings, document, today=today, statement_months=months)
        with session_scope(engine) as session:
            document = _load(session, appeal_id, document_id)
            if document.state == DocumentState.VERIFYING:
                _record(session, document, inspection)


def _inspect_kept_copy(
    s3: Any, settings: Settings, document: Document, *, today: date, statement_months: int | None
) -> Inspection:
    """Copies the upload to its evidence key and inspects the copy: what is accepted is exactly
    what is kept, whatever is written to the upload key meanwhile. An accepted copy is locked
    where the store can; a rejected one is deleted."""
    kept = keep_for_inspection(s3, settings, document)
    if kept is None:
        return Inspection(size=0, rejection=UPLOAD_MISSING)
    inspection = inspect_object(
        s3, settings, document, today=today, statement_months=statement_months, source=kept
    )
    if inspection.rejection is None:
        inspection.kept = kept
        inspection.locked_until = lock_kept(s3, settings, kept, today=today)
    else:
        discard(s3, settings, kept.key)
    return inspection


def _load(session: Session, appeal_id: str, document_id: str) -> Document:
    document = session.get(Document, document_id)
    if document is None or document.appeal_id != appeal_id:
        raise NotFound(f"Document {document_id} was not found.", code="document_not_found")
    return document


def _record(session: Session, document: Document, inspection: Inspection) -> None:
    document.size_bytes = inspection.size
    document.sha256 = inspection.sha256
    document.sniffed_type = inspection.sniffed.value if inspection.sniffed else None
    document.verified_at = utcnow()
    flags = list(inspection.flags)
    if inspection.rejection is None and inspection.sha256 is not None:
        same_file = session.exec(
            select(Document).where(
                Document.sha256 == inspection.sha256,
                col(Document.id) != document.id,
                Document.state != DocumentState.REJECTED,
            )
        ).all()
        if any(other.customer_id != document.customer_id for other in same_file):
            flags.append(DUPLICATE_ELSEWHERE)
        resent = [
            o for o in same_file if o.appeal_id == document.appeal_id and o.state == DocumentState.ACCEPTED
        ]
        if resent:
            # The same customer sent the same file again: keep one copy of its evidence.
            document.duplicate_of = resent[0].id
    document.flags = [flag_row(flag) for flag in flags]
    if inspection.rejection is not None:
        document.state = DocumentState.REJECTED
        document.rejection_code = inspection.rejection.code
        document.rejection_reason = inspection.rejection.message_en
        document.rejection_reason_zh = inspection.rejection.message_zh
    else:
        document.state = DocumentState.ACCEPTED
        if inspection.kept is not None:
            document.evidence_key = inspection.kept.key
            document.evidence_version_id = inspection.kept.version_id
            document.evidence_locked_until = inspection.locked_until
        if inspection.statement is not None and document.duplicate_of is None:
            _store_transactions(session, document, inspection.statement)
    session.add(document)
    record_document_state(session, document)


def _store_transactions(session: Session, document: Document, statement: ParsedStatement) -> None:
    if not statement.transactions:
        return
    # One multi-row INSERT (a statement has hundreds of lines; ORM objects cost ~1 ms per 10).
    session.execute(
        insert(StatementTransaction),
        [
            {
                "document_id": document.id,
                "appeal_id": document.appeal_id,
                "customer_id": document.customer_id,
                "row": index,
                "posted_on": tx.date,
                "description": tx.description[:500],
                "amount_minor": tx.amount_minor,
                "balance_minor": tx.balance_minor,
                "counterparty": tx.counterparty[:200] if tx.counterparty else None,
            }
            for index, tx in enumerate(statement.transactions, start=1)
        ],
    )
