"""Use cases of the document endpoints: the two upload paths and the document listing.

Both upload paths end the same way: an UPLOADED document row and a `document_uploaded` signal,
after which the workflow's verification activity re-checks the stored bytes. Blocking work
(database, boto3) runs in worker threads, never on the event loop.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import AsyncIterable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anyio import to_thread
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import Request
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.requests import ClientDisconnect

from api.schemas.documents import DocumentList, DocumentListItem, PresignedUpload, UploadRequest
from api.streaming_form import (
    ENVELOPE_ALLOWANCE,
    ByteChannel,
    FilePart,
    read_streamed_form,
)
from core.appeals.service import appeal_documents, get_appeal
from core.auth import STAFF_ROLES, Principal, Role
from core.clock import SYSTEM_CLOCK, Clock
from core.db import session_scope
from core.db.case_tables import Appeal, Document, DocumentState
from core.db.types import utcnow
from core.documents.evidence import (
    IntegrityCheck,
    IssuedLink,
    Purpose,
    Withheld,
    check_integrity,
    record_integrity_failure,
    record_links_issued,
    withheld_reason,
)
from core.documents.sniff import ALLOWED_CONTENT_TYPES, normalize_content_type
from core.documents.types import DocumentType, SniffedType
from core.errors import (
    Conflict,
    DomainError,
    Forbidden,
    Gone,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
)
from core.idempotency import check_same_request, fingerprint
from core.settings import Settings
from core.status import AppealStatus
from core.storage import (
    INLINE_PREVIEW_TYPES,
    KeptCopy,
    StoredObject,
    delete_all_versions,
    delete_other_versions,
    document_key,
    head_object,
    presigned_get,
    presigned_post,
    put_stream,
)
from gateway.temporal import TemporalGateway

log = logging.getLogger(__name__)

PRESIGNED = "presigned"
MULTIPART = "multipart"
DEFAULT_DOC_TYPE = DocumentType.BANK_STATEMENT


# -- validation shared by both paths ---------------------------------------------------------


def _document_type(value: str) -> DocumentType:
    try:
        return DocumentType(value)
    except ValueError as exc:
        raise InvalidInput(
            f"Unknown document type {value!r}; use one of {', '.join(DocumentType)}.",
            code="unknown_document_type",
        ) from exc


def _content_type(value: str) -> str:
    content_type = normalize_content_type(value)
    if content_type not in ALLOWED_CONTENT_TYPES:
        raise UnsupportedMediaType(
            f"Files of type {value or 'unknown'} are not accepted; upload a PDF, PNG, JPEG or CSV file.",
            code="unsupported_document_type",
        )
    return content_type


def _too_large(settings: Settings) -> PayloadTooLarge:
    limit = settings.document_max_bytes
    return PayloadTooLarge(
        f"The file is larger than the {limit // (1024 * 1024)} MiB limit.",
        code="document_too_large",
        max_bytes=limit,
    )


def _display_name(filename: str) -> str:
    # Kept for reviewers and downloads only; storage keys are server-generated.
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    return name[:255] or "upload"


def _collecting_appeal(session: Session, appeal_id: str, customer_id: str, *, lock: bool = False) -> Appeal:
    """`lock`: the appeal's row is held until the transaction ends, as the workflow's steps
    hold it (core/appeals/steps.py): a file is recorded before a step reads the appeal's
    documents, or refused after the status moved on, never saved unseen in between."""
    appeal = (
        _locked_appeal(session, appeal_id, customer_id)
        if lock
        else get_appeal(session, appeal_id, customer_id=customer_id)
    )
    _require_collecting(appeal)
    return appeal


def _locked_appeal(session: Session, appeal_id: str, customer_id: str) -> Appeal:
    get_appeal(session, appeal_id, customer_id=customer_id)  # NotFound for another's appeal
    return session.exec(select(Appeal).where(Appeal.id == appeal_id).with_for_update()).one()


def _require_collecting(appeal: Appeal) -> None:
    if appeal.status != AppealStatus.AWAITING_DOCUMENTS:
        raise Conflict(
            f"The appeal is {appeal.status.value} and is not collecting documents.",
            code="not_collecting_documents",
            appeal_status=appeal.status.value,
        )


@contextmanager
def _store_errors() -> Iterator[None]:
    """The store being down is the caller's to retry, not a 500."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(
            "The document store is unreachable; nothing was stored, please retry.",
            code="document_store_unavailable",
        ) from exc


def _delete_quietly(s3: Any, settings: Settings, key: str) -> None:
    try:
        # Every version: on a versioned bucket a plain delete only hides the bytes.
        delete_all_versions(s3, settings.s3_bucket, key)
    except (BotoCoreError, ClientError):
        log.warning("could not delete abandoned object %s", key, exc_info=True)


async def _signal_uploaded(gateway: TemporalGateway, appeal_id: str, document_id: str) -> None:
    # Not fatal: the reconciler re-signals UPLOADED documents whose signal never arrived.
    try:
        await gateway.document_uploaded(appeal_id, document_id)
    except Exception:
        log.warning("document_uploaded signal for %s deferred", document_id, exc_info=True)


# -- presigned POST --------------------------------------------------------------------------


async def create_presigned_upload(
    engine: Engine,
    s3: Any,
    settings: Settings,
    principal: Principal,
    *,
    appeal_id: str,
    request: UploadRequest,
) -> PresignedUpload:
    doc_type = _document_type(request.doc_type)
    content_type = _content_type(request.content_type)
    if request.size_bytes > settings.document_max_bytes:
        raise _too_large(settings)

    def _create() -> PresignedUpload:
        document_id = str(uuid.uuid4())
        key = document_key(appeal_id, document_id)
        expires_at = utcnow() + settings.presigned_upload_expiry
        with session_scope(engine) as session:
            _collecting_appeal(session, appeal_id, principal.subject)
            # Signing is local: no request reaches the store here.
            # The policy admits exactly the declared size (stores that enforce policies refuse
            # anything else; completion checks it again for those that do not).
            post = presigned_post(
                s3,
                settings,
                key=key,
                content_type=content_type,
                min_bytes=request.size_bytes,
                max_bytes=request.size_bytes,
                expires=settings.presigned_upload_expiry,
            )
            session.add(
                Document(
                    id=document_id,
                    appeal_id=appeal_id,
                    customer_id=principal.subject,
                    doc_type=doc_type.value,
                    s3_key=key,
                    filename=_display_name(request.filename),
                    declared_content_type=content_type,
                    size_bytes=request.size_bytes,  # declared; the stored size once completed
                    state=DocumentState.AWAITING_UPLOAD,
                    upload_method=PRESIGNED,
                    upload_expires_at=expires_at,
                )
            )
        return PresignedUpload(
            document_id=document_id, url=post["url"], fields=post["fields"], expires_at=expires_at
        )

    return await to_thread.run_sync(_create)


@dataclass(frozen=True)
class _Completion:
    document: Document
    newly_uploaded: bool


async def complete_presigned_upload(
    engine: Engine,
    s3: Any,
    settings: Settings,
    gateway: TemporalGateway,
    principal: Principal,
    *,
    appeal_id: str,
    document_id: str,
) -> Document:
    completion = await to_thread.run_sync(
        _complete, engine, s3, settings, principal.subject, appeal_id, document_id
    )
    if completion.newly_uploaded:
        await _signal_uploaded(gateway, appeal_id, document_id)
    return completion.document


def _load_document(session: Session, appeal_id: str, document_id: str) -> Document:
    document = session.get(Document, document_id)
    if document is None or document.appeal_id != appeal_id:
        raise NotFound(f"Document {document_id} was not found.", code="document_not_found")
    return document


def _complete(
    engine: Engine,
    s3: Any,
    settings: Settings,
    customer_id: str,
    appeal_id: str,
    document_id: str,
) -> _Completion:
    with session_scope(engine, read_only=True) as session:
        appeal = get_appeal(session, appeal_id, customer_id=customer_id)
        document = _load_document(session, appeal_id, document_id)
    if document.state != DocumentState.AWAITING_UPLOAD:
        return _Completion(document, newly_uploaded=False)  # a repeated call: same answer
    _require_collecting(appeal)

    with _store_errors():
        info = head_object(s3, settings.s3_bucket, document.s3_key)
    expires_at = document.upload_expires_at
    if expires_at is not None and utcnow() > expires_at:
        # Late completion is fine for a file that arrived in time; a file that arrived after
        # the link expired was not covered by the policy and is not taken.
        arrived_in_time = (
            info is not None and info.last_modified is not None and info.last_modified <= expires_at
        )
        if not arrived_in_time:
            if info is not None:
                _delete_quietly(s3, settings, document.s3_key)
            raise Gone(
                "The upload link expired before the file arrived. "
                "Please request a new upload and send the file again.",
                code="upload_expired",
                expired_at=expires_at,
            )
    if info is None:
        raise Conflict(
            "We did not receive the file. Upload it to the URL you were given, then retry.",
            code="upload_missing",
        )
    declared = document.size_bytes
    if declared is not None and info.size != declared:
        # The policy admitted only the declared size; a store that enforces no policy took
        # another. Not taken: the link stays usable for the right file until it expires.
        _delete_quietly(s3, settings, document.s3_key)
        raise InvalidInput(
            f"The file that arrived has {info.size} bytes, not the {declared} bytes you declared. "
            "Upload the file you declared, or start a new upload for this one.",
            code="upload_size_mismatch",
            declared_bytes=declared,
            received_bytes=info.size,
        )
    if settings.s3_server_side_encryption and info.server_side_encryption is None:
        # The policy demands encryption, but a store that enforces no policy (moto, some MinIO
        # setups) may have stored the object in the clear: re-write it encrypted, in place, and
        # drop the clear version a versioned bucket keeps.
        with _store_errors():
            copied = s3.copy_object(
                Bucket=settings.s3_bucket,
                Key=document.s3_key,
                CopySource={"Bucket": settings.s3_bucket, "Key": document.s3_key},
                MetadataDirective="REPLACE",
                ContentType=document.declared_content_type,
                ServerSideEncryption=settings.s3_server_side_encryption,
            )
            delete_other_versions(s3, settings.s3_bucket, document.s3_key, keep=copied.get("VersionId"))

    with session_scope(engine) as session:
        # The appeal first, then the file: the order the workflow's steps take them in.
        appeal = _locked_appeal(session, appeal_id, customer_id)
        current = session.get(Document, document_id, with_for_update=True)
        if current is None or current.state != DocumentState.AWAITING_UPLOAD:
            # A concurrent call completed it first.
            return _Completion(current or document, newly_uploaded=False)
        _require_collecting(appeal)  # it may have moved on while the store was asked
        current.state = DocumentState.UPLOADED
        current.size_bytes = info.size
        session.add(current)
    return _Completion(current, newly_uploaded=True)


# -- multipart through the API ---------------------------------------------------------------


def declared_length(headers: Mapping[str, str]) -> int | None:
    """The request's Content-Length, if it sent one; a malformed one is refused."""
    raw = headers.get("content-length")
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise InvalidInput("The Content-Length header is not a number.", code="bad_length") from exc
    if value < 0:
        raise InvalidInput("The Content-Length header is negative.", code="bad_length")
    return value


async def upload_request(
    engine: Engine,
    s3: Any,
    settings: Settings,
    gateway: TemporalGateway,
    principal: Principal,
    request: Request,
    *,
    appeal_id: str,
    check_fields: Callable[[dict[str, str]], None] | None = None,
    idempotency_key: str | None = None,
) -> Uploaded:
    """`upload_multipart` on an HTTP request's own body (the API's route and the portal's)."""
    try:
        return await upload_multipart(
            engine,
            s3,
            settings,
            gateway,
            principal,
            appeal_id=appeal_id,
            body=request.stream(),
            content_type=request.headers.get("content-type", ""),
            content_length=declared_length(request.headers),
            check_fields=check_fields,
            idempotency_key=idempotency_key,
        )
    except ClientDisconnect as exc:
        # Nobody is listening any more; answer anyway instead of logging a server error.
        raise DomainError(
            "The upload was interrupted; nothing was stored.", code="upload_interrupted"
        ) from exc


async def upload_multipart(
    engine: Engine,
    s3: Any,
    settings: Settings,
    gateway: TemporalGateway,
    principal: Principal,
    *,
    appeal_id: str,
    body: AsyncIterable[bytes],
    content_type: str,
    content_length: int | None,
    check_fields: Callable[[dict[str, str]], None] | None = None,
    idempotency_key: str | None = None,
) -> Uploaded:
    """Streams the `file` part straight to S3; the size limit holds while bytes arrive.
    `check_fields` sees the form fields sent before the file and may refuse the request before
    a byte is stored (the web page's upload checks its CSRF field there). With an
    `idempotency_key` the file is saved once: a retry (its answer lost, say) gets the document
    the first attempt saved, whatever the appeal's status is by then."""
    max_bytes = settings.document_max_bytes
    if content_length is not None and content_length > max_bytes + ENVELOPE_ALLOWANCE:
        raise _too_large(settings)  # refused before a byte is read

    def _check_appeal() -> Document | None:
        with session_scope(engine, read_only=True) as session:
            if idempotency_key is not None:
                get_appeal(session, appeal_id, customer_id=principal.subject)
                saved = _saved_upload(session, appeal_id, idempotency_key)
                if saved is not None:
                    return saved
            _collecting_appeal(session, appeal_id, principal.subject)
        return None

    saved = await to_thread.run_sync(_check_appeal)
    if not content_type and not content_length:
        raise _file_required()
    if saved is not None:
        # A retry: the same file again gets the saved document; another file, 422.
        await _same_upload_or_refuse(saved, principal, appeal_id, body, content_type, max_bytes)
        return Uploaded(saved, created=False)

    document_id = str(uuid.uuid4())
    key = document_key(appeal_id, document_id)

    def _check_file(part: FilePart, fields: dict[str, str]) -> None:
        # Refuse before anything is stored, with whatever fields came before the file.
        if check_fields is not None:
            check_fields(fields)
        _content_type(part.content_type)
        _document_type(fields.get("doc_type", DEFAULT_DOC_TYPE))

    stored_keys: list[str] = []

    def _store(part: FilePart, channel: ByteChannel) -> StoredObject:
        stored = put_stream(
            s3,
            settings,
            key=key,
            stream=channel,
            content_type=normalize_content_type(part.content_type),
            max_bytes=max_bytes,
        )
        stored_keys.append(key)
        return stored

    try:
        form = await read_streamed_form(
            body,
            content_type,
            file_field="file",
            max_file_bytes=max_bytes,
            check_file=_check_file,
            consume=_store,
        )
        if form.file is None or form.stored is None:
            raise _file_required()
        uploaded = await to_thread.run_sync(
            _record_multipart,
            engine,
            principal.subject,
            appeal_id,
            document_id,
            form.file,
            form.stored,
            form.fields,
            idempotency_key,
            upload_fingerprint(
                principal,
                appeal_id,
                form.fields.get("doc_type", DEFAULT_DOC_TYPE),
                form.stored.sha256,
                form.stored.size,
            ),
        )
    except Exception:
        # No row, no object: a refused or failed upload leaves nothing behind. (An upload that
        # failed while streaming was aborted by boto3 and never became an object.)
        if stored_keys:
            await to_thread.run_sync(_delete_quietly, s3, settings, key)
        raise
    if not uploaded.created:  # the same key's first attempt won a race with this one
        await to_thread.run_sync(_delete_quietly, s3, settings, key)
        return uploaded
    await _signal_uploaded(gateway, appeal_id, uploaded.document.id)
    return uploaded


@dataclass(frozen=True)
class Uploaded:
    document: Document
    created: bool  # False: a retry, answered with what its first attempt saved


def upload_fingerprint(principal: Principal, appeal_id: str, doc_type: str, sha256: str, size: int) -> str:
    """An upload's fingerprint (core/idempotency.py). Its body is a stream, so it covers what is
    known of it once read: the document type and the file's SHA-256 and size as stored (the
    file name and part headers are left out: the same file sent again is the same request)."""
    body = {"doc_type": doc_type, "sha256": sha256, "size": size}
    return fingerprint("POST", f"/appeals/{appeal_id}/documents", principal.actor, body)


def _hash_file(part: FilePart, channel: ByteChannel) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    while chunk := channel.read(1024 * 1024):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


async def _same_upload_or_refuse(
    saved: Document,
    principal: Principal,
    appeal_id: str,
    body: AsyncIterable[bytes],
    content_type: str,
    max_bytes: int,
) -> None:
    """Reads a retried upload's body without storing it (hashing the file as it streams) and
    refuses it (422 `idempotency_key_reused`) unless it is the request the key was used for."""
    if saved.idempotency_fingerprint is None:
        return  # saved before fingerprints: nothing to compare
    form = await read_streamed_form(
        body,
        content_type,
        file_field="file",
        max_file_bytes=max_bytes,
        check_file=lambda part, fields: None,
        consume=_hash_file,
    )
    if form.file is None or form.stored is None:
        raise _file_required()
    sha256, size = form.stored
    doc_type = form.fields.get("doc_type", DEFAULT_DOC_TYPE)
    check_same_request(
        saved.idempotency_fingerprint, upload_fingerprint(principal, appeal_id, doc_type, sha256, size)
    )


def _saved_upload(session: Session, appeal_id: str, idempotency_key: str) -> Document | None:
    return session.exec(
        select(Document).where(Document.appeal_id == appeal_id, Document.idempotency_key == idempotency_key)
    ).first()


def _record_multipart(
    engine: Engine,
    customer_id: str,
    appeal_id: str,
    document_id: str,
    file: FilePart,
    stored: StoredObject,
    fields: dict[str, str],
    idempotency_key: str | None,
    request_fingerprint: str,
) -> Uploaded:
    with session_scope(engine) as session:
        appeal = _locked_appeal(session, appeal_id, customer_id)
        if idempotency_key is not None:
            saved = _saved_upload(session, appeal_id, idempotency_key)
            if saved is not None:
                check_same_request(saved.idempotency_fingerprint, request_fingerprint)
                return Uploaded(saved, created=False)
        # The appeal may have moved on (withdrawn, expired) while the file streamed.
        _require_collecting(appeal)
        document = Document(
            id=document_id,
            appeal_id=appeal_id,
            customer_id=customer_id,
            doc_type=_document_type(fields.get("doc_type", DEFAULT_DOC_TYPE)).value,
            s3_key=stored.key,
            filename=_display_name(file.filename),
            declared_content_type=normalize_content_type(file.content_type),
            size_bytes=stored.size,
            sha256=stored.sha256,
            state=DocumentState.UPLOADED,
            upload_method=MULTIPART,
            idempotency_key=idempotency_key,
            idempotency_fingerprint=request_fingerprint if idempotency_key is not None else None,
        )
        session.add(document)
    return Uploaded(document, created=True)


def _file_required() -> InvalidInput:
    return InvalidInput(
        "The request is not valid: body.file: Field required",
        code="validation_failed",
        errors=[{"location": ["body", "file"], "message": "Field required", "type": "missing"}],
    )


# -- reading ---------------------------------------------------------------------------------


def list_documents(
    engine: Engine,
    s3: Any,
    settings: Settings,
    principal: Principal,
    appeal_id: str,
    *,
    clock: Clock = SYSTEM_CLOCK,
) -> DocumentList:
    """Customers see their own appeal's documents; reviewers and admins any appeal's, each
    verified one with a short-lived download link to the bytes that were checked (re-hashed
    first: see core/documents/evidence.py), or `download_withheld` saying why there is none.
    Every link issued is an audit event. With the store unreachable the listing still answers,
    its files withheld as `store_unavailable`. Run in a worker thread."""
    owner = principal.subject if principal.role is Role.CUSTOMER else None
    with session_scope(engine, read_only=True) as session:
        get_appeal(session, appeal_id, customer_id=owner)
        documents = appeal_documents(session, appeal_id)
    with_links = principal.role in STAFF_ROLES
    now = clock.now()
    items: list[DocumentListItem] = []
    issued: list[IssuedLink] = []
    failed: list[IntegrityCheck] = []
    for document in documents:
        item = DocumentListItem.model_validate(document, from_attributes=True)
        items.append(item)
        if not with_links or document.state == DocumentState.AWAITING_UPLOAD:
            continue
        withheld = withheld_reason(document)
        if withheld is not None:
            item.download_withheld = withheld.value
            continue
        try:
            check = check_integrity(s3, settings, document)
        except (BotoCoreError, ClientError):
            log.warning("document store unavailable: no link for %s", document.id, exc_info=True)
            item.download_withheld = Withheld.STORE_UNAVAILABLE.value
            continue
        if not check.intact:
            failed.append(check)
            item.download_withheld = Withheld.INTEGRITY_FAILED.value
            continue
        link = _sign(s3, settings, document, check.copy, inline_content_type=None, now=now)
        item.download_url, item.download_expires_at = link.url, link.expires_at
        issued.append(link.issued)
    _record_serving(
        engine, appeal_id, issued, failed, at=now, actor=principal.actor, purpose=Purpose.DOWNLOAD
    )
    return DocumentList(items=items)


@dataclass(frozen=True)
class _Signed:
    url: str
    expires_at: datetime
    issued: IssuedLink


def _sign(
    s3: Any,
    settings: Settings,
    document: Document,
    copy: KeptCopy,
    *,
    inline_content_type: str | None,
    now: datetime,
) -> _Signed:
    """A presigned GET of the copy that was just re-checked (its version, where it has one).
    Signing is local: no request reaches the store."""
    expires_at = now + settings.download_link_expiry
    url = presigned_get(
        s3,
        settings,
        key=copy.key,
        filename=document.filename,
        expires=settings.download_link_expiry,
        inline_content_type=inline_content_type,
        version_id=copy.version_id,
    )
    disposition = "inline" if inline_content_type else "attachment"
    return _Signed(url, expires_at, IssuedLink(document.id, disposition, expires_at, copy))


def _record_serving(
    engine: Engine,
    appeal_id: str,
    issued: list[IssuedLink],
    failed: list[IntegrityCheck],
    *,
    at: datetime,
    actor: str,
    purpose: Purpose,
) -> None:
    """The audit trail of what was served (and of what was found changed), in one transaction."""
    if not issued and not failed:
        return
    with session_scope(engine) as session:
        for check in failed:
            record_integrity_failure(session, check, at=at, actor=actor, purpose=purpose)
        record_links_issued(session, appeal_id, issued, at=at, actor=actor)


_SNIFFED_AS: dict[str, str] = {
    SniffedType.PDF: "application/pdf",
    SniffedType.PNG: "image/png",
    SniffedType.JPEG: "image/jpeg",
}


def preview_type(document: Document) -> str | None:
    """The content type a document may be previewed as in a browser: a PDF or an image whose
    stored type is what its bytes were verified to be, and that may be linked at all
    (core.documents.evidence.withheld_reason); None for anything else."""
    if document.sniffed_type is None or withheld_reason(document) is not None:
        return None
    verified = _SNIFFED_AS.get(document.sniffed_type)
    if verified not in INLINE_PREVIEW_TYPES or verified != document.declared_content_type:
        return None
    return verified


@dataclass(frozen=True)
class DocumentLink:
    url: str
    expires_at: datetime


def document_link(
    engine: Engine,
    s3: Any,
    settings: Settings,
    principal: Principal,
    *,
    appeal_id: str,
    document_id: str,
    inline: bool,
    clock: Clock = SYSTEM_CLOCK,
) -> DocumentLink:
    """A short-lived link to one document, for staff: a download (`attachment`), or with
    `inline` a preview the browser shows (PDFs and images only, see `preview_type`). The copy
    is re-hashed first: a file that no longer matches its SHA-256 is flagged, recorded and not
    served (409 `document_integrity_failed`); one that may not be linked is a 409
    `document_withheld` with its `reason`. The link issued is an audit event. Run in a worker
    thread."""
    if principal.role not in STAFF_ROLES:
        raise Forbidden("Only staff open documents through links.", code="role_required")
    with session_scope(engine, read_only=True) as session:
        get_appeal(session, appeal_id)
        document = _load_document(session, appeal_id, document_id)
    if document.state == DocumentState.AWAITING_UPLOAD:
        raise NotFound("This file has not been uploaded yet.", code="document_not_found")
    withheld = withheld_reason(document)
    if withheld is not None:
        raise _withheld(withheld)
    content_type = preview_type(document) if inline else None
    if inline and content_type is None:
        raise UnsupportedMediaType(
            "Only verified PDFs and images are shown in the browser; download this file instead.",
            code="unsupported_document_type",
        )
    now = clock.now()
    purpose = Purpose.PREVIEW if inline else Purpose.DOWNLOAD
    with _store_errors():
        check = check_integrity(s3, settings, document)
    if not check.intact:
        _record_serving(engine, appeal_id, [], [check], at=now, actor=principal.actor, purpose=purpose)
        raise Conflict(
            "This file no longer matches the one we checked (its SHA-256 differs): it may have "
            "been replaced in storage. It has been flagged on the case and is not served.",
            code="document_integrity_failed",
            document_id=document.id,
        )
    link = _sign(s3, settings, document, check.copy, inline_content_type=content_type, now=now)
    _record_serving(engine, appeal_id, [link.issued], [], at=now, actor=principal.actor, purpose=purpose)
    return DocumentLink(url=link.url, expires_at=link.expires_at)


_WITHHELD_DETAIL: dict[Withheld, str] = {
    Withheld.NOT_VERIFIED: "This file has not been verified yet; it can be opened once its checks are done.",
    Withheld.ACTIVE_CONTENT: "This file was refused as active content or a type we do not read; "
    "it is never served.",
    Withheld.INTEGRITY_FAILED: "This file no longer matched the one we checked; it is flagged on "
    "the case and not served.",
    Withheld.REMOVED: "This refused file was removed from storage after its retention period.",
    Withheld.STORE_UNAVAILABLE: "The document store did not answer; please retry.",
}


def _withheld(reason: Withheld) -> Conflict:
    return Conflict(_WITHHELD_DETAIL[reason], code="document_withheld", reason=reason.value)
