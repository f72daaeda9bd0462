"""CSV bank statements: encoding, delimiter and header found from the data, rows streamed."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import re
import unicodedata
from collections.abc import Sequence
from typing import Final

from core.documents.amounts import AmountError, parse_amount_minor
from core.documents.dates import read_date
from core.documents.headers import HEADER_SEARCH_ROWS, Role, has_amount, map_columns
from core.documents.statement_model import (
    ParsedStatement,
    StatementFormat,
    bad_amount,
    bad_date,
    empty_statement,
    malformed_csv,
    no_amount_column,
    no_date_column,
    too_many_rows,
    unknown_encoding,
)
from core.documents.statement_rows import (
    CLOSING_ROW,
    OPENING_ROW,
    TOTAL_ROW,
    Collected,
    PendingRow,
    build_statement,
)

DEFAULT_MAX_ROWS: Final = 100_000
_DELIMITERS: Final = (",", ";", "\t", "|")
_DEBIT_WORDS: Final = frozenset({"借", "借方", "支", "支出", "出", "付", "dr", "d", "debit", "-"})
_CREDIT_WORDS: Final = frozenset({"贷", "贷方", "收", "收入", "入", "存", "cr", "c", "credit", "+"})
# Spreadsheet exports prefix cells with "'" or "=" and quotes to keep them text: ="2026-03-01".
_TEXT_GUARD: Final = re.compile(r'^(?:=\s*"(.*)"|\'(.*))$', re.DOTALL)


def parse_csv_statement(data: bytes, *, max_rows: int = DEFAULT_MAX_ROWS) -> ParsedStatement:
    """Parse a bank's CSV export. Raises StatementParseError with a customer-facing message."""
    text = _decode(data)
    if not text.strip():
        raise empty_statement()
    delimiter, header_index, columns = _find_header(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    preamble = [" ".join(r) for r in itertools.islice(reader, header_index)]
    next(reader)  # the header itself
    collected = Collected(pending=[], preamble="\n".join(preamble))
    skipped: list[int] = []
    row_number = header_index + 1
    try:
        for row_number, record in enumerate(reader, start=header_index + 2):
            if row_number - header_index > max_rows:
                raise too_many_rows(max_rows)
            _take_row(row_number, record, columns, collected, skipped)
    except csv.Error:
        raise malformed_csv(row_number + 1) from None
    return build_statement(collected, StatementFormat.CSV, skipped)


def _decode(data: bytes) -> str:
    if not data:
        raise empty_statement()
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="strict")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")  # Excel's "Unicode text" export
        except UnicodeDecodeError:
            raise unknown_encoding() from None
    # UTF-8 first: valid UTF-8 Chinese is also valid GB18030 (as other characters), not vice versa.
    for encoding in ("utf-8", "gb18030"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise unknown_encoding()


def _find_header(text: str) -> tuple[str, int, dict[Role, int]]:
    """Delimiter, header row index and column map: the first row naming a date column.

    Trying every delimiter against the header vocabulary is what makes preambles harmless; a
    statistical sniffer is fooled by account-details lines of a different shape.
    """
    date_only: dict[Role, int] | None = None
    for delimiter in _DELIMITERS:
        reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            for index, row in enumerate(itertools.islice(reader, HEADER_SEARCH_ROWS)):
                columns = map_columns(row)
                if Role.DATE not in columns:
                    continue
                if has_amount(columns):
                    return delimiter, index, columns
                date_only = date_only or columns
        except csv.Error:
            continue
    raise no_amount_column() if date_only else no_date_column()


def _cell(record: Sequence[str], columns: dict[Role, int], role: Role) -> str:
    index = columns.get(role)
    if index is None or index >= len(record):
        return ""
    value = record[index].strip()
    if value[:1] in ("=", "'"):
        guarded = _TEXT_GUARD.match(value)
        if guarded:
            value = next(g for g in guarded.groups() if g is not None).strip()
    return value


def _take_row(
    row: int,
    record: list[str],
    columns: dict[Role, int],
    collected: Collected,
    skipped: list[int],
) -> None:
    if not any(cell.strip() for cell in record):
        return
    date_text = _cell(record, columns, Role.DATE)
    description = _cell(record, columns, Role.DESCRIPTION)
    if TOTAL_ROW.fullmatch(date_text) or (not date_text and TOTAL_ROW.fullmatch(description)):
        return  # totals repeat the rows above; their cells may hold text like "共 12 笔"
    amount = _amount(row, record, columns)
    balance = _money(row, _cell(record, columns, Role.BALANCE))
    if amount is None and _is_balance_line(row, date_text, description, balance, collected):
        return
    raw_date = read_date(date_text) if date_text else None
    if raw_date is None:
        if amount is None:
            return  # a note or footer line such as "以下空白" under the table
        raise bad_date(row, date_text)
    if amount is None:
        skipped.append(row)
        return
    counterparty = _cell(record, columns, Role.COUNTERPARTY) or None
    collected.pending.append(PendingRow(row, raw_date, date_text, description, amount, balance, counterparty))


def _is_balance_line(
    row: int, date_text: str, description: str, balance: int | None, collected: Collected
) -> bool:
    label = f"{date_text} {description}"
    if balance is None:
        return False
    if OPENING_ROW.search(label):
        # Wherever it sits (newest-first exports put it last), it is the balance before the
        # oldest transaction.
        if collected.opening is None:
            collected.opening = balance
        return True
    if CLOSING_ROW.search(label):
        collected.closing = (row, balance)
        return True
    return False


def _amount(row: int, record: list[str], columns: dict[Role, int]) -> int | None:
    if Role.CREDIT in columns and Role.DEBIT in columns:
        credit = _money(row, _cell(record, columns, Role.CREDIT))
        debit = _money(row, _cell(record, columns, Role.DEBIT))
        if credit is None and debit is None:
            return None
        # Some banks print debits as negative numbers in the debit column; both mean money out.
        return (credit or 0) - abs(debit or 0)
    amount = _money(row, _cell(record, columns, Role.AMOUNT))
    if amount is None or Role.DIRECTION not in columns:
        return amount
    direction = unicodedata.normalize("NFKC", _cell(record, columns, Role.DIRECTION)).lower()
    if direction in _DEBIT_WORDS:
        return -abs(amount)
    if direction in _CREDIT_WORDS:
        return abs(amount)
    return amount


def _money(row: int, cell: str) -> int | None:
    if not cell:
        return None
    try:
        return parse_amount_minor(cell)
    except AmountError:
        raise bad_amount(row, cell) from None
