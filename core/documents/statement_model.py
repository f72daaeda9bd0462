"""Parsed bank statements and the customer-facing parse errors."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from core.documents.types import Rejection


class StatementFormat(StrEnum):
    CSV = "CSV"
    PDF_TEXT = "PDF_TEXT"  # text extracted from a PDF, one transaction a line


@dataclass(frozen=True, slots=True)
class Transaction:
    date: date
    description: str
    amount_minor: int  # fen; credit (money in) positive, debit negative
    balance_minor: int | None  # balance after this transaction, when the statement shows it
    counterparty: str | None
    source_row: int = 0  # 1-based row (CSV record) or line (text) in the source, for reviewers


@dataclass(frozen=True, slots=True)
class BalanceMismatch:
    """The stated balance is not the previous balance plus this row's amount."""

    row: int
    expected_minor: int
    found_minor: int


@dataclass(frozen=True, slots=True)
class ParsedStatement:
    transactions: tuple[Transaction, ...]  # oldest first, whatever the source order
    period_start: date  # first and last transaction dates
    period_end: date
    opening_balance_minor: int | None  # stated, or derived from the first shown balance
    closing_balance_minor: int | None
    balance_mismatches: tuple[BalanceMismatch, ...]
    source_format: StatementFormat
    # The period printed above the table ("起止日期 2026-01-01 至 2026-03-31"), when there is one.
    stated_period_start: date | None = None
    stated_period_end: date | None = None
    # Rows that looked like data but carried no amount (notes, reversed-out lines), for audit.
    skipped_rows: tuple[int, ...] = ()


class StatementParseError(ValueError):
    """The statement cannot be read; the message tells the customer what to do."""

    def __init__(self, code: str, message_en: str, message_zh: str, row: int | None = None):
        super().__init__(message_en)
        self.code = code
        self.message_en = message_en
        self.message_zh = message_zh
        self.row = row

    @property
    def rejection(self) -> Rejection:
        return Rejection(self.code, self.message_en, self.message_zh)


_EXPORT_AGAIN_EN = "Please download the statement again from your bank as CSV or PDF and upload it."
_EXPORT_AGAIN_ZH = "请从银行重新下载 CSV 或 PDF 格式的对账单后上传。"


def empty_statement() -> StatementParseError:
    return StatementParseError(
        "STATEMENT_EMPTY", f"The file is empty. {_EXPORT_AGAIN_EN}", f"文件为空。{_EXPORT_AGAIN_ZH}"
    )


def unknown_encoding() -> StatementParseError:
    return StatementParseError(
        "STATEMENT_ENCODING",
        "We could not read the characters in this file. Please export it again as CSV in UTF-8 "
        "or the bank's default Chinese encoding.",
        "无法识别文件中的字符编码。请重新导出为 UTF-8 或银行默认中文编码的 CSV 文件。",
    )


def no_date_column() -> StatementParseError:
    return StatementParseError(
        "STATEMENT_NO_DATE_COLUMN",
        "We could not find a date column (for example 'Date' or '交易日期') in this statement. "
        f"Make sure it is the bank's transaction export, not a summary. {_EXPORT_AGAIN_EN}",
        "对账单中未找到日期列（例如“交易日期”或“Date”）。请确认上传的是银行导出的交易明细而非汇总，"
        f"{_EXPORT_AGAIN_ZH}",
    )


def no_amount_column() -> StatementParseError:
    return StatementParseError(
        "STATEMENT_NO_AMOUNT_COLUMN",
        "We found the dates but no amount column (for example 'Amount', or 'Credit' and 'Debit', "
        f"or '交易金额', or '收入' and '支出'). {_EXPORT_AGAIN_EN}",
        "找到了日期列，但未找到金额列"
        f"（例如“交易金额”，或“收入”和“支出”，或 Amount、Credit/Debit）。{_EXPORT_AGAIN_ZH}",
    )


def bad_date(row: int, value: str) -> StatementParseError:
    return StatementParseError(
        "STATEMENT_BAD_DATE",
        f"Row {row}: we could not read the date '{value}'. Dates should look like 2026-03-01 or "
        f"01/03/2026. If you edited the file, upload the bank's original instead.",
        f"第 {row} 行：无法识别日期“{value}”。日期应类似 2026-03-01 或 2026年3月1日。"
        "如您修改过文件，请改为上传银行导出的原始文件。",
        row,
    )


def bad_amount(row: int, value: str) -> StatementParseError:
    return StatementParseError(
        "STATEMENT_BAD_AMOUNT",
        f"Row {row}: we could not read the amount '{value}'. If you edited the file, upload the "
        "bank's original instead.",
        f"第 {row} 行：无法识别金额“{value}”。如您修改过文件，请改为上传银行导出的原始文件。",
        row,
    )


def mixed_date_order() -> StatementParseError:
    return StatementParseError(
        "STATEMENT_MIXED_DATE_ORDER",
        "The dates in this statement mix day/month and month/day order, so we cannot tell which "
        f"is which. {_EXPORT_AGAIN_EN}",
        f"对账单中的日期同时出现“日/月”和“月/日”两种顺序，无法判断。{_EXPORT_AGAIN_ZH}",
    )


def no_transactions() -> StatementParseError:
    return StatementParseError(
        "STATEMENT_NO_TRANSACTIONS",
        "We could not find any transactions in this statement. If it is a scanned image, please "
        "upload the bank's electronic statement (CSV or a PDF with selectable text) instead.",
        "对账单中未找到任何交易记录。如果是扫描件，请改为上传银行的电子对账单（CSV 或可选中文字的 PDF）。",
    )


def too_many_rows(limit: int) -> StatementParseError:
    return StatementParseError(
        "STATEMENT_TOO_MANY_ROWS",
        f"This statement has more than {limit:,} rows. Please export only the months we asked for.",
        f"对账单超过 {limit:,} 行，请仅导出所需月份的记录。",
    )


def malformed_csv(row: int) -> StatementParseError:
    return StatementParseError(
        "STATEMENT_MALFORMED_CSV",
        f"Row {row} of this CSV file is broken (for example an unclosed quote or a very long "
        f"cell). {_EXPORT_AGAIN_EN}",
        f"该 CSV 文件第 {row} 行格式有误（例如引号未闭合或单元格过长）。{_EXPORT_AGAIN_ZH}",
        row,
    )
