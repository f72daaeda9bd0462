import pytest

from core.documents.pdf_report import PdfFailure
from core.documents.rejections import check_upload, pdf_rejection
from core.documents.types import SniffedType
from tests.core.documents import factories


@pytest.mark.parametrize(
    ("content_type", "data", "code", "sniffed"),
    [
        ("application/pdf", factories.elf_executable(), "FILE_EXECUTABLE", SniffedType.EXECUTABLE),
        ("application/pdf", b"PK\x03\x04rest", "FILE_ARCHIVE", SniffedType.ARCHIVE),
        ("image/png", b"%PDF-1.7\n", "CONTENT_TYPE_MISMATCH", SniffedType.PDF),
        ("text/plain", b"<html><body>hi", "FILE_ACTIVE_CONTENT", SniffedType.MARKUP),
        ("image/png", b"<!-- x --><svg onload=alert(1)>", "FILE_ACTIVE_CONTENT", SniffedType.MARKUP),
        ("application/msword", b"hello", "FILE_TYPE_NOT_ALLOWED", SniffedType.TEXT),
        ("text/plain", b"", "FILE_EMPTY", SniffedType.EMPTY),
        ("application/pdf", b"%PDF-1.7\n", None, SniffedType.PDF),
        ("text/csv", b"Date,Amount\n2026-03-01,1.00\n", None, SniffedType.CSV),
    ],
)
def test_upload_gate(content_type: str, data: bytes, code: str | None, sniffed: SniffedType) -> None:
    check = check_upload(content_type, data[:8192], size=len(data))
    assert check.sniffed == sniffed
    assert (check.rejection.code if check.rejection else None) == code
    if check.rejection:
        assert check.rejection.message_en and check.rejection.message_zh
        assert check.rejection.message("zh-CN") == check.rejection.message_zh


def test_upload_over_the_size_limit_is_refused_with_the_limit_in_the_message() -> None:
    check = check_upload("application/pdf", b"%PDF-1.7\n", size=11 * 1024 * 1024,
                         max_bytes=10 * 1024 * 1024)  # fmt: skip
    assert check.rejection is not None
    assert check.rejection.code == "FILE_TOO_LARGE"
    assert "10 MB" in check.rejection.message_en


@pytest.mark.parametrize(
    ("failure", "code"),
    [
        (PdfFailure.ENCRYPTED, "PDF_ENCRYPTED"),
        (PdfFailure.MALFORMED, "PDF_MALFORMED"),
        (PdfFailure.TIMEOUT, "PDF_TOO_COMPLEX"),
        (PdfFailure.MEMORY_LIMIT, "PDF_TOO_COMPLEX"),
        (PdfFailure.RESOURCE_LIMIT, "PDF_TOO_COMPLEX"),
        (None, None),
    ],
)
def test_every_pdf_failure_has_a_customer_message(failure: PdfFailure | None, code: str | None) -> None:
    rejection = pdf_rejection(factories.pdf_report(ok=failure is None, failure=failure))
    assert (rejection.code if rejection else None) == code
