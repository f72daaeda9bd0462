"""Document endpoints: presigned uploads, multipart uploads through the API, listings."""

from __future__ import annotations

from typing import Annotated, Any

from anyio import to_thread
from fastapi import APIRouter, Body, Query, Request, Response, status

from api import document_uploads
from api import openapi_examples as ex
from api.deps import (
    ClockDep,
    CustomerDep,
    EngineDep,
    GatewayDep,
    PrincipalDep,
    ReviewerDep,
    S3Dep,
    SettingsDep,
)
from api.openapi import AUTHENTICATED, WITH_ROLE, problems
from api.routers.appeals import IdempotencyKey
from api.schemas.appeals import DocumentPublic
from api.schemas.documents import DocumentLinkPublic, DocumentList, PresignedUpload, UploadRequest
from core.documents.sniff import ALLOWED_CONTENT_TYPES
from core.documents.types import DocumentType

router = APIRouter(prefix="/appeals/{appeal_id}/documents", tags=["documents"])

# The multipart route reads its body itself (streamed), so FastAPI cannot describe it.
_MULTIPART_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "doc_type": {
                            "type": "string",
                            "enum": [t.value for t in DocumentType],
                            "default": DocumentType.BANK_STATEMENT.value,
                            "description": "Send it before the file so a bad value fails fast.",
                        },
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "The part's Content-Type is the declared type: "
                            + ", ".join(sorted(ALLOWED_CONTENT_TYPES)),
                        },
                    },
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DocumentPublic,
    openapi_extra=_MULTIPART_BODY,
    summary="Upload a document through the API (streamed to storage)",
    responses={
        **ex.ok(201, "DOCUMENT", "Stored; its checks run next (state UPLOADED, then ACCEPTED or REJECTED)."),
        200: {
            "description": "A retry with an `Idempotency-Key` used before on this appeal: the "
            "document that request saved, as it stands now (nothing stored again).",
            "model": DocumentPublic,
        },
        **problems(
            *WITH_ROLE,
            "appeal_not_found",
            "not_collecting_documents",
            "document_too_large",
            "unsupported_document_type",
            "multipart_required",
            "validation_failed",
            "unknown_document_type",
            "malformed_multipart",
            "too_many_parts",
            "one_file_per_request",
            "field_too_long",
            "bad_length",
            "upload_interrupted",
            "document_store_unavailable",
        ),
    },
)
async def upload_document(
    appeal_id: str,
    request: Request,
    principal: CustomerDep,
    engine: EngineDep,
    s3: S3Dep,
    settings: SettingsDep,
    gateway: GatewayDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> DocumentPublic:
    """One file per request, streamed to storage as it arrives (never held whole in memory),
    while the appeal is AWAITING_DOCUMENTS. Files over the size limit, of a type the checks
    cannot read, or for a closed checklist are refused before anything is stored. The
    document's checks (type sniffing, statement coverage, PDF red flags) run in the workflow:
    follow its `state` on the appeal's checklist. Send an `Idempotency-Key` so that a retry
    whose first attempt was saved (its answer lost) gets that document back (200) instead of
    storing the file twice or being refused because the appeal has moved on."""
    uploaded = await document_uploads.upload_request(
        engine,
        s3,
        settings,
        gateway,
        principal,
        request,
        appeal_id=appeal_id,
        idempotency_key=idempotency_key,
    )
    if not uploaded.created:
        response.status_code = status.HTTP_200_OK
    return DocumentPublic.model_validate(uploaded.document, from_attributes=True)


@router.post(
    "/uploads",
    status_code=status.HTTP_201_CREATED,
    response_model=PresignedUpload,
    summary="Start a direct upload to storage (presigned POST)",
    responses={
        **ex.ok(201, "PRESIGNED_UPLOAD", "POST the file to `url` with `fields` before `expires_at`."),
        **problems(
            *WITH_ROLE,
            "appeal_not_found",
            "not_collecting_documents",
            "document_too_large",
            "unsupported_document_type",
            "unknown_document_type",
            "validation_failed",
        ),
    },
)
async def start_presigned_upload(
    appeal_id: str,
    body: Annotated[UploadRequest, Body(openapi_examples=ex.UPLOAD_REQUEST)],
    principal: CustomerDep,
    engine: EngineDep,
    s3: S3Dep,
    settings: SettingsDep,
) -> PresignedUpload:
    """For large files or slow links: the client sends the file straight to storage with a
    presigned POST (`url` and `fields`, valid for minutes; its policy limits type and size, and
    the file is checked again once it arrives), then calls
    `POST /appeals/{appeal_id}/documents/{document_id}/complete`. Until then the document is
    AWAITING_UPLOAD."""
    return await document_uploads.create_presigned_upload(
        engine, s3, settings, principal, appeal_id=appeal_id, request=body
    )


@router.post(
    "/{document_id}/complete",
    response_model=DocumentPublic,
    summary="Tell us the direct upload finished",
    responses={
        **ex.ok(200, "DOCUMENT", "Taken (UPLOADED); a repeated call answers the same."),
        **problems(
            *WITH_ROLE,
            "appeal_not_found",
            "document_not_found",
            "not_collecting_documents",
            "upload_missing",
            "upload_size_mismatch",
            "upload_expired",
            "document_store_unavailable",
        ),
    },
)
async def complete_presigned_upload(
    appeal_id: str,
    document_id: str,
    principal: CustomerDep,
    engine: EngineDep,
    s3: S3Dep,
    settings: SettingsDep,
    gateway: GatewayDep,
) -> DocumentPublic:
    """Checks that the file is in storage (and arrived before the link expired), then hands it
    to the workflow's checks. Safe to repeat."""
    document = await document_uploads.complete_presigned_upload(
        engine, s3, settings, gateway, principal, appeal_id=appeal_id, document_id=document_id
    )
    return DocumentPublic.model_validate(document, from_attributes=True)


@router.get(
    "",
    response_model=DocumentList,
    summary="List an appeal's documents (reviewers also get download links)",
    responses=problems(*AUTHENTICATED, "appeal_not_found"),
)
async def list_documents(
    appeal_id: str,
    principal: PrincipalDep,
    engine: EngineDep,
    s3: S3Dep,
    settings: SettingsDep,
    clock: ClockDep,
) -> DocumentList:
    """Staff get a short-lived `download_url` for each verified file, after its bytes are
    checked against the SHA-256 recorded when it was verified; each link issued is recorded on
    the appeal's audit trail. A file not served says why in `download_withheld`: not verified
    yet, refused as active content, changed in storage since it was checked (now a red flag and
    an audit event), removed after its retention period, or the store not answering."""
    return await to_thread.run_sync(
        lambda: document_uploads.list_documents(engine, s3, settings, principal, appeal_id, clock=clock)
    )


@router.get(
    "/{document_id}/link",
    response_model=DocumentLinkPublic,
    summary="A short-lived link to one document (staff)",
    responses={
        **ex.ok(200, "DOCUMENT_LINK", "Open `url` before `expires_at`; the link is on the audit trail."),
        **problems(
            *WITH_ROLE,
            "appeal_not_found",
            "document_not_found",
            "document_withheld",
            "document_integrity_failed",
            "unsupported_document_type",
            "validation_failed",
            "document_store_unavailable",
        ),
    },
)
async def document_link(
    appeal_id: str,
    document_id: str,
    principal: ReviewerDep,
    engine: EngineDep,
    s3: S3Dep,
    settings: SettingsDep,
    clock: ClockDep,
    inline: Annotated[
        bool, Query(description="A preview the browser shows (verified PDFs and images only).")
    ] = False,
) -> DocumentLinkPublic:
    """A presigned GET, valid for `APPEALS_DOWNLOAD_LINK_EXPIRY`, to the copy of the file that
    was verified (its version, where the store keeps versions), issued only after its bytes
    are read again and match the SHA-256 recorded when it was checked. A file that no longer
    matches is a red flag and an audit event on the appeal, and is not served (409
    `document_integrity_failed`); a file not verified yet, refused as active content or
    removed after its retention period is not linked (409 `document_withheld`, with `reason`).
    Every link issued is an audit event `document_link_issued`."""
    link = await to_thread.run_sync(
        lambda: document_uploads.document_link(
            engine,
            s3,
            settings,
            principal,
            appeal_id=appeal_id,
            document_id=document_id,
            inline=inline,
            clock=clock,
        )
    )
    return DocumentLinkPublic(
        url=link.url, expires_at=link.expires_at, disposition="inline" if inline else "attachment"
    )
