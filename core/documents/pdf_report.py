"""What PDF inspection found. Kept apart from the runner so the flag rules can import it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class PdfFailure(StrEnum):
    TIMEOUT = "TIMEOUT"  # the CPU limit, or the wall-clock deadline after the CPU budget was spent
    # Killed at the wall-clock deadline before it had used its CPU budget: the machine was too
    # busy to finish it in time. No verdict on the file; the caller inspects it again.
    INTERRUPTED = "INTERRUPTED"
    MEMORY_LIMIT = "MEMORY_LIMIT"  # the child hit its address-space limit
    # pypdf's own guards refused the file: decompressed size, object counts, reference cycles.
    RESOURCE_LIMIT = "RESOURCE_LIMIT"
    MALFORMED = "MALFORMED"
    ENCRYPTED = "ENCRYPTED"  # needs a password we do not have


@dataclass(frozen=True, slots=True)
class PdfReport:
    """Findings about one PDF. On failure the fields hold whatever was learnt before it."""

    ok: bool
    failure: PdfFailure | None
    # Technical detail for logs and reviewers, never shown to customers.
    failure_detail: str | None
    page_count: int | None
    producer: str | None
    creator: str | None
    xmp_producer: str | None
    xmp_creator_tool: str | None
    creation_date: datetime | None
    mod_date: datetime | None
    encrypted: bool
    has_javascript: bool
    has_launch_action: bool
    has_embedded_files: bool
    has_signature: bool
    # Revisions appended after the first save (linearization does not count).
    incremental_update_count: int
    text: str
    text_truncated: bool
    child_peak_rss_bytes: int | None
    elapsed_seconds: float
