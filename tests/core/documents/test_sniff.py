import codecs
from datetime import date

import pytest

from core.documents.sniff import (
    ALLOWED_CONTENT_TYPES,
    SNIFF_BYTES,
    declared_content_type_matches,
    sniff,
)
from core.documents.types import SniffedType
from tests.core.documents import factories

CSV_EN = b"Date,Description,Amount,Balance\n2026-03-01,Salary,8000.00,9000.00\n" * 3


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (b"", SniffedType.EMPTY),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj", SniffedType.PDF),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", SniffedType.PNG),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", SniffedType.JPEG),
        (b"GIF89a\x01\x00", SniffedType.GIF),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", SniffedType.WEBP),
        (factories.elf_executable(), SniffedType.EXECUTABLE),
        (b"MZ\x90\x00\x03\x00\x00\x00\x04\x00", SniffedType.EXECUTABLE),
        (b"\xcf\xfa\xed\xfe\x07\x00\x00\x01", SniffedType.EXECUTABLE),
        (b"#!/bin/sh\nrm -rf /\n", SniffedType.EXECUTABLE),
        (b"PK\x03\x04\x14\x00\x06\x00", SniffedType.ARCHIVE),
        (b"\x1f\x8b\x08\x00\x00\x00", SniffedType.ARCHIVE),
        (b"Rar!\x1a\x07\x01\x00", SniffedType.ARCHIVE),
        (b"7z\xbc\xaf\x27\x1c\x00\x04", SniffedType.ARCHIVE),
        (b"BZh91AY&SY\x00", SniffedType.ARCHIVE),
        (b"x" * 257 + b"ustar\x0000", SniffedType.ARCHIVE),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00", SniffedType.OLE),
        (b"<!DOCTYPE html><html><script>alert(1)</script>", SniffedType.MARKUP),
        (b'  <svg xmlns="http://www.w3.org/2000/svg"/>', SniffedType.MARKUP),
        (CSV_EN, SniffedType.CSV),
        (CSV_EN.replace(b",", b";"), SniffedType.CSV),
        (CSV_EN.replace(b",", b"\t"), SniffedType.CSV),
        (codecs.BOM_UTF8 + CSV_EN, SniffedType.CSV),
        (b"Dear reviewer,\nI repaid everything last month.\nThanks\n", SniffedType.TEXT),
        ("收入证明\n兹证明张三为我司员工。\n".encode("gb18030"), SniffedType.TEXT),
        ("交易日期,摘要,金额\n20260301,工资,8000.00\n20260302,餐饮,-35.00\n".encode("gb18030"),
         SniffedType.CSV),
        (codecs.BOM_UTF16_LE + "Date\tAmount\n1\t2\n3\t4\n".encode("utf-16-le"), SniffedType.CSV),
        (b"\x00\x01\x02\x03binary\x00\xff", SniffedType.UNKNOWN),
        (bytes(range(256)) * 4, SniffedType.UNKNOWN),
    ],
)  # fmt: skip
def test_sniff_identifies_by_magic_and_structure(head: bytes, expected: SniffedType) -> None:
    assert sniff(head) == expected


def test_preamble_above_the_table_still_sniffs_as_csv() -> None:
    rows = factories.make_rows(date(2026, 1, 1), date(2026, 3, 31))
    data = factories.csv_statement_zh(rows)
    assert sniff(data[:SNIFF_BYTES]) == SniffedType.CSV


def test_truncated_multibyte_character_at_the_cut_is_not_binary() -> None:
    line = "2026-03-01,超市购物,-35.00\n".encode()
    data = b"Date,Description,Amount\n" + line * 1000
    head = data[:SNIFF_BYTES]
    with pytest.raises(UnicodeDecodeError):
        head.decode("utf-8")  # the cut really does split a character
    assert sniff(head) == SniffedType.CSV


@pytest.mark.parametrize(
    ("content_type", "sniffed", "matches"),
    [
        ("application/pdf", SniffedType.PDF, True),
        ("Application/PDF; name=x.pdf", SniffedType.PDF, True),
        ("application/pdf", SniffedType.EXECUTABLE, False),
        ("application/pdf", SniffedType.PNG, False),
        ("image/png", SniffedType.PNG, True),
        ("image/jpeg", SniffedType.JPEG, True),
        ("image/jpg", SniffedType.JPEG, True),
        ("image/jpeg", SniffedType.PNG, False),
        ("text/csv", SniffedType.CSV, True),
        ("text/csv; charset=gb18030", SniffedType.TEXT, True),
        ("text/plain", SniffedType.TEXT, True),
        ("text/plain", SniffedType.MARKUP, False),
        ("text/html", SniffedType.MARKUP, False),
        ("application/octet-stream", SniffedType.PDF, False),
        ("application/zip", SniffedType.ARCHIVE, False),
    ],
)
def test_declared_content_type_must_agree_with_the_bytes(
    content_type: str, sniffed: SniffedType, matches: bool
) -> None:
    assert declared_content_type_matches(content_type, sniffed) is matches


def test_allowed_content_types_are_the_five_document_types() -> None:
    assert {
        "application/pdf",
        "image/png",
        "image/jpeg",
        "text/csv",
        "text/plain",
    } == ALLOWED_CONTENT_TYPES
