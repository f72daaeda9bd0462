"""Rejections a customer can act on: the upload gate and the PDF verdicts.

Checked in this order at upload: size, type sniffed from the bytes, declared type. Markup
(HTML, SVG, XML, script: sniff.py) is refused as active content whatever type was declared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from core.documents.pdf_report import PdfFailure, PdfReport
from core.documents.sniff import (
    ALLOWED_CONTENT_TYPES,
    declared_content_type_matches,
    normalize_content_type,
    sniff,
)
from core.documents.types import Rejection, SniffedType

_ACCEPTED_EN: Final = "PDF, PNG, JPEG, CSV or plain text"
_ACCEPTED_ZH: Final = "PDF、PNG、JPEG、CSV 或纯文本"

FILE_EMPTY: Final = Rejection(
    "FILE_EMPTY",
    "The file is empty. Please upload the document again.",
    "文件为空，请重新上传。",
)
FILE_EXECUTABLE: Final = Rejection(
    "FILE_EXECUTABLE",
    f"This file is a program, not a document. Please upload a {_ACCEPTED_EN} file.",
    f"该文件是程序而不是文档，请上传 {_ACCEPTED_ZH} 文件。",
)
FILE_ARCHIVE: Final = Rejection(
    "FILE_ARCHIVE",
    "This file is a compressed archive (for example .zip, .rar, .docx or .xlsx). Please upload "
    f"each document separately as a {_ACCEPTED_EN} file.",
    f"该文件是压缩包（例如 .zip、.rar、.docx 或 .xlsx），请将每份文件单独以 {_ACCEPTED_ZH} 格式上传。",
)
FILE_TYPE_NOT_ALLOWED: Final = Rejection(
    "FILE_TYPE_NOT_ALLOWED",
    f"We cannot accept this kind of file. Please upload a {_ACCEPTED_EN} file.",
    f"暂不支持该文件类型，请上传 {_ACCEPTED_ZH} 文件。",
)
FILE_ACTIVE_CONTENT: Final = Rejection(
    "FILE_ACTIVE_CONTENT",
    "This file contains web page code (HTML, SVG, XML or script), which we do not accept in a "
    f"document. Please upload the original statement or proof as a {_ACCEPTED_EN} file.",
    "该文件包含网页代码（HTML、SVG、XML 或脚本），我们不接受此类文件。"
    f"请以 {_ACCEPTED_ZH} 格式上传原始对账单或证明。",
)
CONTENT_TYPE_MISMATCH: Final = Rejection(
    "CONTENT_TYPE_MISMATCH",
    "The file's contents do not match its type (for example a renamed file). Please upload the "
    "original document without renaming it.",
    "文件内容与其类型不符（例如被改过扩展名），请上传未经改名的原始文件。",
)

_PDF_REJECTIONS: Final = {
    PdfFailure.ENCRYPTED: Rejection(
        "PDF_ENCRYPTED",
        "This PDF is protected by a password. Please open it, save or print a copy without the "
        "password, and upload that copy.",
        "该 PDF 设有打开密码。请打开文件后另存或打印一份不带密码的副本再上传。",
    ),
    PdfFailure.MALFORMED: Rejection(
        "PDF_MALFORMED",
        "This PDF is damaged and cannot be read. Please download it again from your bank or "
        "issuer and upload the new copy.",
        "该 PDF 已损坏，无法读取。请从银行或出具方重新下载后上传。",
    ),
    PdfFailure.TIMEOUT: Rejection(
        "PDF_TOO_COMPLEX",
        "This PDF is too complex for us to check. Please upload a shorter document, for example "
        "only the months we asked for.",
        "该 PDF 过于复杂，无法完成检查。请上传更精简的文件，例如仅包含所需月份的对账单。",
    ),
}
# A bomb and an honest but huge file look the same from here; the advice is the same too.
_PDF_REJECTIONS[PdfFailure.MEMORY_LIMIT] = _PDF_REJECTIONS[PdfFailure.TIMEOUT]
_PDF_REJECTIONS[PdfFailure.RESOURCE_LIMIT] = _PDF_REJECTIONS[PdfFailure.TIMEOUT]

_ACCEPTED_SNIFFS: Final = frozenset(
    {SniffedType.PDF, SniffedType.PNG, SniffedType.JPEG, SniffedType.CSV, SniffedType.TEXT}
)


@dataclass(frozen=True, slots=True)
class UploadCheck:
    sniffed: SniffedType
    rejection: Rejection | None


def file_too_large(max_bytes: int) -> Rejection:
    mib = max_bytes / (1024 * 1024)
    return Rejection(
        "FILE_TOO_LARGE",
        f"The file is larger than {mib:g} MB. Please upload a smaller file, for example only the "
        "pages or months we asked for.",
        f"文件超过 {mib:g} MB。请上传更小的文件，例如仅包含所需页面或月份。",
    )


def check_upload(content_type: str, head: bytes, size: int, max_bytes: int | None = None) -> UploadCheck:
    """Gate an upload on its first bytes (`head`, see sniff.SNIFF_BYTES) and its total size."""
    sniffed = sniff(head)
    if size == 0 or sniffed is SniffedType.EMPTY:
        return UploadCheck(sniffed, FILE_EMPTY)
    if max_bytes is not None and size > max_bytes:
        return UploadCheck(sniffed, file_too_large(max_bytes))
    if sniffed is SniffedType.EXECUTABLE:
        return UploadCheck(sniffed, FILE_EXECUTABLE)
    if sniffed is SniffedType.ARCHIVE:
        return UploadCheck(sniffed, FILE_ARCHIVE)
    if sniffed is SniffedType.MARKUP:
        return UploadCheck(sniffed, FILE_ACTIVE_CONTENT)
    if sniffed not in _ACCEPTED_SNIFFS:
        return UploadCheck(sniffed, FILE_TYPE_NOT_ALLOWED)
    if normalize_content_type(content_type) not in ALLOWED_CONTENT_TYPES:
        return UploadCheck(sniffed, FILE_TYPE_NOT_ALLOWED)
    if not declared_content_type_matches(content_type, sniffed):
        return UploadCheck(sniffed, CONTENT_TYPE_MISMATCH)
    return UploadCheck(sniffed, None)


def pdf_rejection(report: PdfReport) -> Rejection | None:
    """Why the customer must upload again, or None when the PDF could be read."""
    return None if report.failure is None else _PDF_REJECTIONS[report.failure]
