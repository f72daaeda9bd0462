"""Re-verifies an uploaded object in S3 and records the verdict on the document row.

The store is never trusted to have enforced anything (moto enforces no POST policy), so
every property is checked again from the stored bytes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlmodel import Session

from core.db.case_tables import Document, DocumentState
from core.db.types import utcnow
from core.documents.sniff import declared_content_type_matches, sniff
from core.documents.types import Rejection
from core.errors import NotFound
from core.settings import Settings
from core.storage import head_object, iter_object

MISSING = Rejection(
    "upload_missing",
    "We did not receive the file. Please upload it again.",
    "我们没有收到该文件，请重新上传。",
)
EMPTY = Rejection(
    "file_empty",
    "The file is empty. Please upload the complete document.",
    "文件为空，请上传完整的文件。",
)


def _too_large(limit: int) -> Rejection:
    mib = limit // (1024 * 1024)
    return Rejection(
        "file_too_large",
        f"The file is larger than {mib} MiB. Please upload a smaller file or split it.",
        f"文件超过 {mib} MiB，请上传较小的文件或拆分后上传。",
    )


def _type_mismatch(declared: str, sniffed: str) -> Rejection:
    return Rejection(
        "type_mismatch",
        f"The file is not a valid {declared} (its content looks like {sniffed}). "
        "Please upload a PDF, PNG, JPEG or CSV file.",
        f"文件内容与声明的类型 {declared} 不符（实际为 {sniffed}），"
        "请上传 PDF、PNG、JPEG 或 CSV 文件。",
    )


def verify_document(
    session: Session, s3: Any, settings: Settings, *, appeal_id: str, document_id: str
) -> Document:
    document = session.get(Document, document_id)
    if document is None or document.appeal_id != appeal_id:
        raise NotFound(f"Document {document_id} was not found.", code="document_not_found")
    if document.state in (DocumentState.ACCEPTED, DocumentState.REJECTED):
        return document  # a retried activity: the verdict stands

    rejection = _check_object(s3, settings, document)
    document.verified_at = utcnow()
    if rejection is None:
        document.state = DocumentState.ACCEPTED
    else:
        document.state = DocumentState.REJECTED
        document.rejection_reason = rejection.message_en
        document.flags = [
            *document.flags,
            {"code": rejection.code, "en": rejection.message_en, "zh-CN": rejection.message_zh},
        ]
    session.add(document)
    session.flush()
    return document


def _check_object(s3: Any, settings: Settings, document: Document) -> Rejection | None:
    info = head_object(s3, settings.s3_bucket, document.s3_key)
    if info is None:
        return MISSING
    document.size_bytes = info.size
    if info.size == 0:
        return EMPTY
    if info.size > settings.document_max_bytes:
        return _too_large(settings.document_max_bytes)
    digest = hashlib.sha256()
    head = b""
    for chunk in iter_object(s3, settings.s3_bucket, document.s3_key):
        if len(head) < 8192:
            head += chunk[: 8192 - len(head)]
        digest.update(chunk)
    document.sha256 = digest.hexdigest()
    sniffed = sniff(head)
    document.sniffed_type = sniffed.value
    if not declared_content_type_matches(document.declared_content_type, sniffed):
        return _type_mismatch(document.declared_content_type, sniffed.value)
    return None
