"""Request and response bodies of the document endpoints: presigned uploads and listings."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class UploadRequest(BaseModel):
    """What the customer is about to upload; the policy the store enforces is built from it."""

    model_config = ConfigDict(extra="forbid")

    doc_type: str = Field(min_length=1, max_length=40, examples=["BANK_STATEMENT"])
    content_type: str = Field(min_length=1, max_length=100, examples=["application/pdf"])
    size_bytes: int = Field(gt=0, description="The exact size of the file in bytes.")
    filename: str = Field(
        min_length=1,
        max_length=255,
        description="Shown to reviewers and used for downloads; never part of the storage key.",
    )


class PresignedUpload(BaseModel):
    """POST the file to `url` as multipart/form-data: every entry of `fields` first, then the
    file as the last part named `file`; then call the `complete` endpoint."""

    document_id: str
    url: str
    fields: dict[str, Any]
    expires_at: datetime


class DocumentListItem(BaseModel):
    id: str
    doc_type: str
    filename: str
    declared_content_type: str
    size_bytes: int | None
    sha256: str | None
    state: str
    rejection_code: str | None = None
    rejection_reason: str | None
    upload_method: str
    created_at: datetime
    verified_at: datetime | None
    # Reviewers and admins only: a short-lived link that downloads the file as an attachment.
    download_url: str | None = None
    download_expires_at: datetime | None = None
    # Staff only, instead of a link: why the file is not served (`not_verified`,
    # `active_content`, `integrity_failed`, `removed`, `store_unavailable`;
    # core/documents/evidence.py).
    download_withheld: str | None = None


class DocumentList(BaseModel):
    items: list[DocumentListItem]


class DocumentLinkPublic(BaseModel):
    """A short-lived link to one verified document (staff only)."""

    url: str
    expires_at: datetime
    disposition: Literal["attachment", "inline"]
