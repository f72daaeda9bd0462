"""Test documents built in code: statements (CSV and PDF), tampered, hostile and broken PDFs."""

from __future__ import annotations

import csv
import dataclasses
import io
import random
import shutil
import struct
import subprocess
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from fpdf import FPDF
from pypdf import PdfWriter

from core.documents.amounts import format_minor
from core.documents.pdf_report import PdfReport
from core.months import full_calendar_months_range

GIB = 1 << 30
MIB = 1 << 20
OPENING_MINOR = 500_000  # a generated statement's opening balance


@dataclass(frozen=True, slots=True)
class Row:
    date: date
    description: str
    counterparty: str
    amount_minor: int
    balance_minor: int


def make_rows(
    start: date,
    end: date,
    *,
    opening_minor: int = OPENING_MINOR,
    per_week: int = 3,
    seed: int = 7,
    chinese: bool = False,
) -> list[Row]:
    """A consistent statement: salary on the 10th of each month, spending in between."""
    rng = random.Random(seed)
    spend = ["超市购物", "餐饮消费", "水电费", "交通出行"] if chinese else [
        "Supermarket", "Restaurant", "Utilities", "Metro card",
    ]  # fmt: skip
    shops = ["永辉超市", "美团外卖", "国家电网", "北京地铁"] if chinese else [
        "Tesco", "Pizza Express", "Power Co", "City Metro",
    ]  # fmt: skip
    rows: list[Row] = []
    balance = opening_minor
    day = start
    while day <= end:
        if day.day == 10:
            amount, desc, who = 1_200_000, "工资" if chinese else "Salary", "ACME Ltd"
            balance += amount
            rows.append(Row(day, desc, who, amount, balance))
        if rng.random() < per_week / 7:
            pick = rng.randrange(len(spend))
            amount = -rng.randrange(1_000, 60_000)
            balance += amount
            rows.append(Row(day, spend[pick], shops[pick], amount, balance))
        day += timedelta(days=1)
    return rows


def rows_covering(
    today: date, months: int = 3, *, lead_days: int = 2, seed: int = 7, chinese: bool = False
) -> list[Row]:
    """A consistent statement from `lead_days` before the last `months` full calendar months
    (`core.months.full_calendar_months_range`) up to yesterday."""
    window = full_calendar_months_range(today, months)
    start, end = window.start - timedelta(days=lead_days), today - timedelta(days=1)
    return _from_first_to_last_day(make_rows(start, end, seed=seed, chinese=chinese), start, end, chinese)


def _from_first_to_last_day(rows: list[Row], start: date, end: date, chinese: bool) -> list[Row]:
    """`rows` with a small purchase on `start` and on `end` where they have none: a statement's
    coverage is read from its first and last transactions, and random days could leave either
    edge more than the checks' slack away (on the 1st of a month, about one seed in fifty)."""
    desc, shop = ("超市购物", "永辉超市") if chinese else ("Supermarket", "Tesco")
    amount = -1_000
    if not rows or rows[0].date > start:
        opening = rows[0].balance_minor - rows[0].amount_minor if rows else OPENING_MINOR
        rows = [
            Row(start, desc, shop, amount, opening + amount),
            *(dataclasses.replace(row, balance_minor=row.balance_minor + amount) for row in rows),
        ]
    if rows[-1].date < end:
        rows.append(Row(end, desc, shop, amount, rows[-1].balance_minor + amount))
    return rows


def many_rows(count: int, *, start: date = date(2016, 1, 1), per_day: int = 3) -> list[Row]:
    """Exactly `count` consistent rows, `per_day` a day: a long, busy account."""
    rng = random.Random(count)
    rows: list[Row] = []
    balance = 10_000_000
    day = start
    while len(rows) < count:
        for _ in range(min(per_day, count - len(rows))):
            amount = rng.randrange(-80_000, 60_000)
            balance += amount
            rows.append(Row(day, "Card payment 商户消费", "Shop 商户", amount, balance))
        day += timedelta(days=1)
    return rows


def with_wrong_balance(rows: list[Row], index: int, delta_minor: int) -> list[Row]:
    """The same rows with one amount changed but the balances left alone, as a forger might."""
    changed = list(rows)
    row = changed[index]
    changed[index] = Row(
        row.date, row.description, row.counterparty, row.amount_minor + delta_minor,
        row.balance_minor,
    )  # fmt: skip
    return changed


def _money(minor: int) -> str:
    return format_minor(minor)


def csv_statement_en(
    rows: Sequence[Row],
    *,
    delimiter: str = ",",
    split_columns: bool = False,
    date_format: str = "%Y-%m-%d",
    preamble: Sequence[str] = (),
    newest_first: bool = False,
) -> bytes:
    out = io.StringIO()
    for line in preamble:
        out.write(line + "\r\n")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    if split_columns:
        writer.writerow(["Date", "Details", "Payee", "Paid out", "Paid in", "Balance"])
    else:
        writer.writerow(["Transaction Date", "Description", "Counterparty", "Amount", "Balance"])
    for row in reversed(rows) if newest_first else rows:
        when = row.date.strftime(date_format)
        if split_columns:
            out_cell = _money(-row.amount_minor) if row.amount_minor < 0 else ""
            in_cell = _money(row.amount_minor) if row.amount_minor > 0 else ""
            cells = [when, row.description, row.counterparty, out_cell, in_cell]
        else:
            cells = [when, row.description, row.counterparty, _money(row.amount_minor)]
        writer.writerow([*cells, _money(row.balance_minor)])
    return out.getvalue().encode("utf-8")


def csv_statement_zh(
    rows: Sequence[Row],
    *,
    encoding: str = "gb18030",
    account: str = "6222 0212 3456 7890 123",
) -> bytes:
    """A mainland-style export: account lines first, 收入/支出 columns, ¥ amounts, a total row."""
    start, end = rows[0].date, rows[-1].date
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["中国示例银行个人账户交易明细"])
    writer.writerow(["账号", account])
    writer.writerow(["户名", "张三"])
    writer.writerow(["起止日期", f"{start:%Y%m%d} 至 {end:%Y%m%d}"])
    writer.writerow(["打印日期", "2026-04-02"])
    writer.writerow([])
    writer.writerow(["交易日期", "交易摘要", "对方户名", "收入金额(元)", "支出金额(元)", "账户余额"])
    credit = debit = 0
    for row in rows:
        income = f"¥{_money(row.amount_minor)}" if row.amount_minor > 0 else ""
        spend = f"¥{_money(-row.amount_minor)}" if row.amount_minor < 0 else ""
        credit += max(row.amount_minor, 0)
        debit += max(-row.amount_minor, 0)
        when = f"{row.date.year}年{row.date.month}月{row.date.day}日"
        writer.writerow([when, row.description, row.counterparty, income, spend, _money(row.balance_minor)])
    writer.writerow(["合计", "", "", _money(credit), _money(debit), ""])
    writer.writerow(["以下空白"])
    return out.getvalue().encode(encoding)


def statement_lines(rows: Sequence[Row]) -> list[str]:
    """Text lines in the shape parse_text_statement accepts (signed amount, then balance)."""
    return [
        f"{r.date:%Y-%m-%d} {r.description} {_money(r.amount_minor)} {_money(r.balance_minor)}" for r in rows
    ]


@cache
def cjk_font() -> Path | None:
    """A font with Chinese glyphs if this machine has one (fc-list, then the usual places)."""
    candidates: list[Path] = []
    if shutil.which("fc-list"):
        listing = subprocess.run(
            ["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=False
        ).stdout
        candidates += [Path(line.split(":")[0].strip()) for line in listing.splitlines()]
    for root in (Path("/usr/share/fonts"), Path("/usr/local/share/fonts")):
        if root.is_dir():
            candidates += [p for p in root.rglob("*") if "cjk" in p.name.lower()]
            candidates += [p for p in root.rglob("wqy*")]
    for path in candidates:
        if path.suffix.lower() in (".ttf", ".otf") and path.is_file():
            return path
    return None


def pdf_statement(
    rows: Sequence[Row],
    *,
    producer: str = "BankCore Statement Service 4.2",
    created: datetime = datetime(2026, 4, 1, 2, 0, tzinfo=UTC),
    chinese: bool = False,
) -> bytes:
    """A text PDF statement; Chinese headings only if a CJK font is installed."""
    pdf = FPDF()
    font = cjk_font() if chinese else None
    if font is not None:
        pdf.add_font("cjk", fname=str(font))
        family = "cjk"
    else:
        family = "helvetica"
    pdf.set_producer(producer)
    pdf.set_creator("BankCore")
    pdf.set_creation_date(created)
    pdf.add_page()
    pdf.set_font(family, size=9)
    title = "个人账户交易明细" if font is not None else "Account statement"
    pdf.cell(text=title, new_x="LMARGIN", new_y="NEXT")
    period = f"Statement period: {rows[0].date:%Y-%m-%d} to {rows[-1].date:%Y-%m-%d}"
    pdf.cell(text=period, new_x="LMARGIN", new_y="NEXT")
    pdf.cell(text="Date Description Amount Balance", new_x="LMARGIN", new_y="NEXT")
    printable = rows if font is not None else [_ascii_row(r) for r in rows]
    for line in statement_lines(printable):
        pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def _ascii_row(row: Row) -> Row:
    desc = row.description if row.description.isascii() else "Transfer"
    return Row(row.date, desc, row.counterparty, row.amount_minor, row.balance_minor)


def tampered_pdf(original: bytes, *, modified: datetime) -> bytes:
    """The original plus an incremental update that re-stamps the metadata, as an editor does."""
    writer = PdfWriter(io.BytesIO(original), incremental=True)
    writer.add_metadata(
        {
            "/Producer": "Adobe Photoshop 25.0 (Windows)",
            "/ModDate": modified.strftime("D:%Y%m%d%H%M%SZ"),
        }
    )
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def encrypted_pdf(*, user_password: str | None) -> bytes:
    """Encrypted with RC4; without a user password anyone can open it, as banks often do."""
    pdf = FPDF()
    pdf.set_encryption(owner_password="owner-secret", user_password=user_password)
    pdf.add_page()
    pdf.set_font("helvetica", size=10)
    pdf.cell(text="2026-03-01 Salary 8,000.00 12,000.00")
    return bytes(pdf.output())


def raw_pdf(objects: Sequence[bytes]) -> bytes:
    """A PDF from object bodies (object 1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


_FONT = b"/Resources << /Font << /F1 << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> >> >>"
_PAGE = b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] " + _FONT + b" /Contents %d 0 R "


def _stream(data: bytes, flate: bool = False) -> bytes:
    filt = b" /Filter /FlateDecode" if flate else b""
    return b"<< /Length %d%s >>\nstream\n%s\nendstream" % (len(data), filt, data)


def _pages(contents: Sequence[bytes], catalog_extra: bytes = b"", page_extra: bytes = b"") -> list[bytes]:
    objects = [b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>", b""]
    kids = []
    for content in contents:
        page_number = len(objects) + 1
        objects.append(_PAGE % (page_number + 1) + page_extra + b">>")
        objects.append(content)
        kids.append(b"%d 0 R" % page_number)
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(kids), len(kids))
    return objects


_HELLO = _stream(b"BT /F1 12 Tf 72 720 Td (2026-03-01 Salary 8,000.00 12,000.00) Tj ET")


def javascript_pdf(*, where: str = "open_action") -> bytes:
    """JavaScript on open, in the names tree, or on a page's additional actions (obfuscated)."""
    if where == "names":
        extra = b"/Names << /JavaScript << /Names [(x) << /S /JavaScript /JS (app.alert(1)) >>] >> >>"
        return raw_pdf(_pages([_HELLO], extra))
    if where == "page_aa_escaped":
        # "#61" is "a": a name written this way still means /JavaScript to every viewer.
        page_extra = b"/AA << /O << /S /J#61vaScript /J#53 (app.alert(1)) >> >> "
        return raw_pdf(_pages([_HELLO], page_extra=page_extra))
    return raw_pdf(_pages([_HELLO], b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >> "))


def launch_pdf() -> bytes:
    return raw_pdf(_pages([_HELLO], b"/OpenAction << /S /Launch /F (cmd.exe) >> "))


def plain_raw_pdf() -> bytes:
    return raw_pdf(_pages([_HELLO]))


def zlib_bomb(inflated: int, *, chunk: int = MIB) -> bytes:
    """A zlib stream of `inflated` spaces, built in milliseconds.

    A full flush resets the compressor, so one compressed chunk can be repeated verbatim; the
    stream then only needs a final empty block and the Adler-32 of the whole output.
    """
    block_input = b" " * chunk
    compressor = zlib.compressobj(9)
    first = compressor.compress(block_input) + compressor.flush(zlib.Z_FULL_FLUSH)
    repeat = compressor.compress(block_input) + compressor.flush(zlib.Z_FULL_FLUSH)
    count = inflated // chunk
    return first + repeat * (count - 1) + b"\x03\x00" + _adler32_of_spaces(count * chunk)


def _adler32_of_spaces(n: int) -> bytes:
    # Closed form for n equal bytes c: A = 1 + n*c, B = n + c*n*(n+1)/2 (mod 65521); hashing
    # gigabytes the slow way would dominate the test run.
    c, mod = ord(" "), 65521
    a = (1 + n * c) % mod
    b = (n + c * n * (n + 1) // 2) % mod
    return ((b << 16) | a).to_bytes(4, "big")


def bomb_pdf(inflated: int = 4 * GIB) -> bytes:
    """One page whose content stream inflates to `inflated` bytes (4 GiB from ~4 MB)."""
    return raw_pdf(_pages([_stream(zlib_bomb(inflated), flate=True)]))


def split_bomb_pdf(pages: int = 8, per_page: int = 70 * MIB) -> bytes:
    """Many pages each just under pypdf's own per-stream cap (75 MB): only our limits stop it."""
    content = _stream(zlib_bomb(per_page), flate=True)
    return raw_pdf(_pages([content] * pages))


def busy_pdf(operators: int = 1_500_000) -> bytes:
    """Small on disk, slow to parse: many cheap text operators (for the timeout path)."""
    body = b"BT /F1 1 Tf " + b"(a) Tj " * operators + b"ET"
    return raw_pdf(_pages([_stream(zlib.compress(body, 9), flate=True)]))


def elf_executable() -> bytes:
    """A minimal ELF64 header (x86-64 executable) followed by padding."""
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    header = struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x400078, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    return ident + header + bytes(4096)


def pdf_report(**changes: Any) -> PdfReport:
    """A clean report, with `changes` applied: for testing the flag rules without a child."""
    clean = PdfReport(
        ok=True,
        failure=None,
        failure_detail=None,
        page_count=1,
        producer=None,
        creator=None,
        xmp_producer=None,
        xmp_creator_tool=None,
        creation_date=None,
        mod_date=None,
        encrypted=False,
        has_javascript=False,
        has_launch_action=False,
        has_embedded_files=False,
        has_signature=False,
        incremental_update_count=0,
        text="",
        text_truncated=False,
        child_peak_rss_bytes=None,
        elapsed_seconds=0.0,
    )
    return dataclasses.replace(clean, **changes)
