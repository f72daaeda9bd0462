"""Identify a file from its first bytes, and compare that with the declared Content-Type.

The declared type comes from the customer's browser and proves nothing; the magic bytes decide.
"""

from __future__ import annotations

import codecs
import csv
import re
from typing import Final

from core.documents.types import SniffedType

# Enough for every magic number below (tar's sits at 257) and a few dozen CSV lines.
SNIFF_BYTES: Final = 8192

ALLOWED_CONTENT_TYPES: Final = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "text/csv", "text/plain"}
)

# Text and CSV are interchangeable here on purpose: a one-column CSV, or one whose first 8 KiB
# are mostly preamble, sniffs as TEXT, and the statement parser gives the precise error anyway.
_ACCEPTED_SNIFFS: Final[dict[str, frozenset[SniffedType]]] = {
    "application/pdf": frozenset({SniffedType.PDF}),
    "image/png": frozenset({SniffedType.PNG}),
    "image/jpeg": frozenset({SniffedType.JPEG}),
    "text/csv": frozenset({SniffedType.CSV, SniffedType.TEXT}),
    "text/plain": frozenset({SniffedType.TEXT, SniffedType.CSV}),
}

# Non-standard spellings that browsers and old clients still send.
_CONTENT_TYPE_ALIASES: Final = {
    "image/jpg": "image/jpeg",
    "image/pjpeg": "image/jpeg",
    "application/x-pdf": "application/pdf",
}

_EXECUTABLE_MAGIC: Final = (
    b"\x7fELF",  # Linux
    b"MZ",  # Windows PE and DOS
    b"\xfe\xed\xfa\xce",  # Mach-O 32-bit
    b"\xfe\xed\xfa\xcf",  # Mach-O 64-bit
    b"\xce\xfa\xed\xfe",  # Mach-O 32-bit, little-endian
    b"\xcf\xfa\xed\xfe",  # Mach-O 64-bit, little-endian
    b"\xca\xfe\xba\xbe",  # Mach-O universal binary (also Java class files: executable too)
    b"\x00asm",  # WebAssembly
    b"dex\n",  # Android
    b"#!",  # script with an interpreter line
)

_ARCHIVE_MAGIC: Final = (
    b"PK\x03\x04",  # zip, and therefore also .docx/.xlsx
    b"PK\x05\x06",  # empty zip
    b"PK\x07\x08",  # spanned zip
    b"\x1f\x8b",  # gzip
    b"Rar!\x1a\x07",  # rar 4 and 5
    b"7z\xbc\xaf\x27\x1c",
    b"\xfd7zXZ\x00",  # xz
    b"\x28\xb5\x2f\xfd",  # zstd
    b"MSCF",  # Windows cabinet
)

_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"

# Control characters that real text files contain; any other one means binary.
_TEXT_CONTROLS: Final = frozenset("\t\n\r\f\v\x1a")

# Characters a browser or editor shows as nothing before the first tag: whitespace (Unicode's
# too), byte-order marks (also repeated ones after the encoding's own) and zero-width spaces.
_IGNORABLE: Final = frozenset("\ufeff\u200b\u200c\u200d\u2060\u180e")

# A tag, a declaration (`<!DOCTYPE`, `<![CDATA[`) or a processing instruction (`<?xml`) where a
# document starts: a browser sniffing the file would take it for HTML or XML. Plain text and
# statements never start with one (`<3` or `< 5` are not tags).
_TAG_START: Final = re.compile(r"<[a-zA-Z!?/]")

# Active content anywhere in a text file: what runs, loads or navigates when a browser renders
# it as HTML, SVG or XML. Scanned over the decoded text and over the raw bytes (every pattern is
# ASCII, so the bytes catch it in any ASCII-compatible encoding whatever the decoder chose), and
# over the whole file at verification, not only its head. Bounded repeats only (`[^<>]*` stops
# at the next bracket), so a hostile file cannot make the scan slow.
_ACTIVE_PATTERN: Final = (
    rb"<\s*/?\s*(?:script|iframe|frame|frameset|object|embed|applet|svg|math|html|body|meta|link|"
    rb"style|base|form|img|image|video|audio|portal|xml|xsl:|foreignobject)\b"
    rb"|<!\s*(?:doctype|entity|\[cdata\[)"
    rb"|<\?\s*xml"
    rb"|<[a-z][^<>]*?[\s/\"'](?:on[a-z]+|href|src|action|formaction|xlink:href|style|srcdoc)\s*="
    rb"|(?:java|vb|live)script\s*:"
    rb"|data\s*:\s*(?:text/html|image/svg|application/(?:xhtml|xml))"
    rb"|(?-i:\+ADw)"  # UTF-7 for `<` (old browsers sniffed UTF-7 into script)
)
_ACTIVE_BYTES: Final = re.compile(_ACTIVE_PATTERN, re.IGNORECASE)
_ACTIVE_TEXT: Final = re.compile(_ACTIVE_PATTERN.decode("ascii"), re.IGNORECASE)

_CSV_DELIMITERS: Final = (",", ";", "\t", "|")
_CSV_SAMPLE_LINES: Final = 60


def sniff(head: bytes) -> SniffedType:
    """Classify a file by its first bytes (pass at least `SNIFF_BYTES` when the file is longer)."""
    if not head:
        return SniffedType.EMPTY
    binary = _sniff_binary(head)
    if binary is not None:
        return binary
    text = _decode_text(head)
    if text is None:
        return SniffedType.UNKNOWN
    if starts_with_markup(text) or has_active_content(head, text):
        return SniffedType.MARKUP
    # A head cut at SNIFF_BYTES ends mid-line; that last line says nothing about structure.
    truncated = len(head) >= SNIFF_BYTES
    return SniffedType.CSV if _looks_delimited(text, truncated) else SniffedType.TEXT


def starts_with_markup(text: str) -> bool:
    """True when the text, past whitespace, byte-order marks, zero-width characters and HTML
    comments, starts with a tag, a declaration or a processing instruction. A comment that never
    ends hides nothing: it is markup too (browsers sniff `<!--` as HTML)."""
    position = 0
    while True:
        while position < len(text) and (text[position].isspace() or text[position] in _IGNORABLE):
            position += 1
        if text.startswith("<!--", position):
            end = text.find("-->", position + 4)
            if end < 0:
                return True
            position = end + 3
            continue
        return _TAG_START.match(text, position) is not None


def has_active_content(data: bytes, text: str | None = None) -> bool:
    """True when the bytes (and their decoded `text`, when given: UTF-16 hides ASCII from a
    byte scan) contain HTML, SVG, XML or script that a browser would run or follow."""
    if _ACTIVE_BYTES.search(data) is not None:
        return True
    return text is not None and _ACTIVE_TEXT.search(text) is not None


def decode_text(data: bytes) -> str | None:
    """The bytes as text (UTF-8, UTF-16 with its BOM, or GB18030), or None when they are not text."""
    return _decode_text(data)


def normalize_content_type(content_type: str) -> str:
    """`Text/CSV; charset=utf-8` -> `text/csv`, with common aliases folded in."""
    base = content_type.split(";", 1)[0].strip().lower()
    return _CONTENT_TYPE_ALIASES.get(base, base)


def declared_content_type_matches(content_type: str, sniffed: SniffedType) -> bool:
    """True when the declared type is one we accept and the bytes are of that kind."""
    accepted = _ACCEPTED_SNIFFS.get(normalize_content_type(content_type))
    return accepted is not None and sniffed in accepted


def _sniff_binary(head: bytes) -> SniffedType | None:
    if head.startswith(b"%PDF-"):
        return SniffedType.PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return SniffedType.PNG
    if head.startswith(b"\xff\xd8\xff"):
        return SniffedType.JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return SniffedType.GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return SniffedType.WEBP
    if head.startswith(_EXECUTABLE_MAGIC):
        return SniffedType.EXECUTABLE
    if head.startswith(_ARCHIVE_MAGIC) or _is_bzip2(head) or head[257:262] == b"ustar":
        return SniffedType.ARCHIVE
    if head.startswith(_OLE_MAGIC):
        return SniffedType.OLE
    return None


def _is_bzip2(head: bytes) -> bool:
    # "BZh" alone could start an ordinary word; the block-size digit and block magic make it sure.
    return head[:3] == b"BZh" and head[3:4].isdigit() and head[4:10] == b"1AY&SY"


def _decode_text(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        candidates: tuple[str, ...] = ("utf-8-sig",)
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        candidates = ("utf-16",)
    else:
        # UTF-8 first: GB18030 accepts most UTF-8 byte sequences too, as the wrong characters.
        candidates = ("utf-8", "gb18030")
    for encoding in candidates:
        decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
        try:
            # final=False: the head may end in the middle of a multi-byte character.
            text = decoder.decode(head, final=False)
        except UnicodeDecodeError:
            continue
        if _is_plain_text(text):
            return text
    return None


def _is_plain_text(text: str) -> bool:
    return all(ch >= " " or ch in _TEXT_CONTROLS for ch in text) and "\x7f" not in text


def _looks_delimited(text: str, truncated: bool) -> bool:
    lines = text.splitlines()
    if truncated and lines:
        lines.pop()
    lines = [line for line in lines if line.strip()][:_CSV_SAMPLE_LINES]
    if len(lines) < 2:
        return False
    needed = 2 if len(lines) < 4 else 3
    return any(_longest_uniform_run(lines, d) >= needed for d in _CSV_DELIMITERS)


def _longest_uniform_run(lines: list[str], delimiter: str) -> int:
    """Longest run of consecutive lines splitting into the same number (>= 2) of fields.

    A run rather than a majority, because bank exports put account details above the table.
    """
    best = run = 0
    previous = -1
    for fields in csv.reader(lines, delimiter=delimiter):
        count = len(fields)
        run = run + 1 if count == previous and count >= 2 else (1 if count >= 2 else 0)
        previous = count
        best = max(best, run)
    return best
