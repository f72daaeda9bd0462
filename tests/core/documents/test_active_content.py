"""Active content (HTML, SVG, XML, script) is refused in anything that is not a PDF or an image,
however it is dressed: after comments, byte-order marks, whitespace or zero-width characters,
in another encoding, in mixed case, or deep inside an otherwise good statement (issue 13,
item 6). The gate sniffs the head; verification scans the whole file."""

from __future__ import annotations

import codecs
from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.documents.rejections import check_upload
from core.documents.sniff import SNIFF_BYTES, decode_text, has_active_content, sniff, starts_with_markup
from core.documents.types import SniffedType
from tests.core.documents import factories

TEXT_TYPES = ("text/plain", "text/csv")

HOSTILE_HEADS: list[bytes] = [
    b"<!-- x --><html><script>alert(1)</script>",  # the probe's file
    b"<!-- x -->\n<!-- y -->\n<p>hello</p>",  # comments, then any tag at all
    b"<!---->" + b"<body onload=alert(1)>",
    b"<!-- never closed <script>alert(1)</script>",
    codecs.BOM_UTF8 + b"<!-- x --><html><script>alert(1)</script>",
    codecs.BOM_UTF8 + "\ufeff\ufeff<svg onload=alert(1)>".encode(),  # BOMs after the BOM
    codecs.BOM_UTF16_LE + "<!-- x --><html><script>alert(1)</script>".encode("utf-16-le"),
    codecs.BOM_UTF16_BE + "  <svg xmlns='http://www.w3.org/2000/svg'/>".encode("utf-16-be"),
    "\u200b\u2060\u3000\u00a0<html>".encode(),  # zero-width and Unicode spaces
    b"\t\n\r\x0c <sCrIpT>alert(1)</ScRiPt>",
    b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><x>&xxe;</x>',
    b'<?xml-stylesheet type="text/xsl" href="evil.xsl"?><statement/>',
    b'<statement xmlns:h="http://www.w3.org/1999/xhtml"><h:script>alert(1)</h:script></statement>',
    b"<![CDATA[ x ]]>",
    b"+ADw-script+AD4-alert(1)+ADw-/script+AD4-",  # UTF-7
    b"date,description,amount\n2026-01-01,<img src=x onerror=alert(1)>,1.00\n",
    b"date,description,amount\n2026-01-01,<a href='javascript:alert(1)'>x</a>,1.00\n",
    b"Dear reviewer,\nsee <iframe srcdoc='<script>alert(1)</script>'></iframe>\n",
    b"Dear reviewer,\nsee data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==\n",
    "收入证明\n兹证明<script>alert(1)</script>为我司员工。\n".encode("gb18030"),
    b"Note:\n<meta http-equiv='refresh' content='0;url=https://evil.example/'>\n",
]


@pytest.mark.parametrize("head", HOSTILE_HEADS, ids=range(len(HOSTILE_HEADS)))
@pytest.mark.parametrize("content_type", TEXT_TYPES)
def test_hostile_text_is_refused_at_the_gate(head: bytes, content_type: str) -> None:
    check = check_upload(content_type, head[:SNIFF_BYTES], size=len(head))
    assert check.sniffed == SniffedType.MARKUP
    assert check.rejection is not None and check.rejection.code == "FILE_ACTIVE_CONTENT"
    assert "HTML" in check.rejection.message_en and "HTML" in check.rejection.message_zh


@pytest.mark.parametrize("content_type", ["application/pdf", "image/png", "image/jpeg", "image/svg+xml"])
def test_markup_declared_as_anything_is_refused_as_active_content(content_type: str) -> None:
    check = check_upload(content_type, HOSTILE_HEADS[0], size=len(HOSTILE_HEADS[0]))
    assert check.rejection is not None and check.rejection.code == "FILE_ACTIVE_CONTENT"


BENIGN_TEXTS: list[bytes] = [
    b"Dear reviewer,\nI owe < 5000 yuan now; a <3 for your help.\n",
    b"Total <= 100 and a > b.\nFrom: Li Wei (li.wei@example.com)\n",
    b"date,description,amount\n2026-01-01,Salary <ACME LTD>,8000.00\n2026-01-02,Rent,-2000.00\n",
    "收入证明\n兹证明张三为我司员工，月收入 <1 万元。\n".encode("gb18030"),
    b"Subscription: streaming, monthly\nscript writing course fee\n",
]


@pytest.mark.parametrize("data", BENIGN_TEXTS, ids=range(len(BENIGN_TEXTS)))
def test_ordinary_text_with_angle_brackets_is_still_text(data: bytes) -> None:
    assert sniff(data) in (SniffedType.TEXT, SniffedType.CSV)
    assert not has_active_content(data, decode_text(data))
    assert check_upload("text/plain", data, size=len(data)).rejection is None


# -- properties ------------------------------------------------------------------------------------

PAYLOADS = [
    "<html><body>x</body></html>",
    "<script>alert(1)</script>",
    "<svg onload=alert(1)>",
    "<img src=x onerror=alert(1)>",
    "<iframe src='https://evil.example'></iframe>",
    '<?xml version="1.0"?><x/>',
    "<!DOCTYPE html>",
    "<object data='x.swf'></object>",
    "<a href='javascript:alert(1)'>x</a>",
    "<math><mtext><script>alert(1)</script></mtext></math>",
]
# What a browser or an editor skips before the first tag; a comment never holds its own end.
padding = st.lists(
    st.one_of(
        st.sampled_from([" ", "\t", "\n", "\r\n", "\x0c", "\ufeff", "\u200b", "\u2060", "\u3000", "\u00a0"]),
        st.text(
            alphabet=st.characters(blacklist_characters="-<>", blacklist_categories=("Cs", "Cc")), max_size=20
        ).map(lambda inner: f"<!--{inner}-->"),
    ),
    max_size=12,
).map("".join)
ENCODINGS = ["utf-8", "utf-8-sig", "utf-16", "gb18030"]


def _random_case(text: str, flips: list[bool]) -> str:
    return "".join(
        c.upper() if flip else c for c, flip in zip(text, flips + [False] * len(text), strict=False)
    )


@settings(max_examples=300, deadline=None)
@given(
    padding,
    st.sampled_from(PAYLOADS),
    st.lists(st.booleans(), max_size=60),
    st.sampled_from(ENCODINGS),
    st.sampled_from(TEXT_TYPES),
)
def test_any_padding_any_case_any_encoding_is_refused(
    pad: str, payload: str, flips: list[bool], encoding: str, content_type: str
) -> None:
    data = (pad + _random_case(payload, flips)).encode(encoding)
    check = check_upload(content_type, data[:SNIFF_BYTES], size=len(data))
    assert check.sniffed == SniffedType.MARKUP, data[:120]
    assert check.rejection is not None and check.rejection.code == "FILE_ACTIVE_CONTENT"


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 400), st.sampled_from(PAYLOADS), st.sampled_from(["utf-8", "gb18030"]))
def test_a_payload_anywhere_in_a_statement_is_found_by_the_whole_file_scan(
    at_row: int, payload: str, encoding: str
) -> None:
    rows = factories.many_rows(400, start=date(2024, 1, 1))
    lines = factories.csv_statement_en(rows).decode().splitlines(keepends=True)
    at_row = min(at_row, len(lines) - 1)
    lines[at_row] = lines[at_row].rstrip("\n") + "," + payload + "\n"
    data = "".join(lines).encode(encoding)
    assert has_active_content(data, decode_text(data))


@settings(max_examples=40, deadline=None)
@given(st.integers(5, 300), st.integers(0, 10_000), st.booleans())
def test_good_statements_are_never_taken_for_markup(count: int, seed: int, chinese: bool) -> None:
    rows = factories.make_rows(date(2025, 1, 1), date(2025, 12, 31), seed=seed, chinese=chinese)[:count]
    data = factories.csv_statement_zh(rows) if chinese else factories.csv_statement_en(rows)
    assert sniff(data[:SNIFF_BYTES]) is SniffedType.CSV
    assert not has_active_content(data, decode_text(data))


def test_a_comment_only_hides_whitespace_not_the_start() -> None:
    assert starts_with_markup("<!-- a --> \n <!-- b --><p>")
    assert not starts_with_markup("<!-- a --> text after a comment")
    assert starts_with_markup("<!-- unterminated")
    assert not starts_with_markup("a < b")
