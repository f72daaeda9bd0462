"""Vocabulary shared by the document checks: document and sniffed types, red flags, rejections."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class DocumentType(StrEnum):
    BANK_STATEMENT = "BANK_STATEMENT"
    INCOME_PROOF = "INCOME_PROOF"
    CREDIT_REPORT = "CREDIT_REPORT"
    EMPLOYMENT_PROOF = "EMPLOYMENT_PROOF"
    OTHER = "OTHER"


class SniffedType(StrEnum):
    """What the bytes are, whatever the upload claimed."""

    PDF = "PDF"
    PNG = "PNG"
    JPEG = "JPEG"
    GIF = "GIF"
    WEBP = "WEBP"
    CSV = "CSV"
    TEXT = "TEXT"
    # HTML, SVG or XML: text, but renders as active content in a browser, so never "text/plain".
    MARKUP = "MARKUP"
    EXECUTABLE = "EXECUTABLE"
    ARCHIVE = "ARCHIVE"
    # Legacy Microsoft Office (OLE2: .doc, .xls): can carry macros; not accepted.
    OLE = "OLE"
    EMPTY = "EMPTY"
    UNKNOWN = "UNKNOWN"


class Severity(StrEnum):
    """How strongly a red flag suggests tampering. Every flag forces manual review (DESIGN §8);
    severity only orders the reviewer's attention."""

    LOW = "LOW"
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


@dataclass(frozen=True, slots=True)
class RedFlag:
    """A reason for a human to look closer. `code` is stable: store it, branch on it."""

    code: str
    severity: Severity
    explanation_en: str
    explanation_zh: str

    def explanation(self, locale: str) -> str:
        return self.explanation_zh if locale.lower().startswith("zh") else self.explanation_en


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a file was refused, worded so the customer knows what to do next."""

    code: str
    message_en: str
    message_zh: str

    def message(self, locale: str) -> str:
        return self.message_zh if locale.lower().startswith("zh") else self.message_en


def flag_row(flag: RedFlag) -> dict[str, str]:
    """A red flag as a document row stores it (`Document.flags`)."""
    return {
        "code": flag.code,
        "severity": flag.severity.value,
        "en": flag.explanation_en,
        "zh-CN": flag.explanation_zh,
    }
