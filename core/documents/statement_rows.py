"""What CSV and text statements share: row markers, pending rows, the stated period, assembly."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Final

from core.documents.dates import (
    DateOrderError,
    RawDate,
    decide_day_first,
    find_dates,
    to_date,
)
from core.documents.statement_checks import reconcile
from core.documents.statement_model import (
    ParsedStatement,
    StatementFormat,
    Transaction,
    bad_date,
    mixed_date_order,
    no_transactions,
)

# Whole-cell markers only: a shop called "Total Fitness" is still a transaction.
TOTAL_ROW: Final = re.compile(
    r"\s*((本页|本期|累计)?(合计|总计|小计)|(sub)?totals?|sum)\s*[:：]?\s*", re.IGNORECASE
)
OPENING_ROW: Final = re.compile(
    r"opening balance|balance brought forward|brought forward|期初余额|上期余额|承前余额|上页余额",
    re.IGNORECASE,
)
CLOSING_ROW: Final = re.compile(
    r"closing balance|balance carried forward|carried forward|期末余额|本期余额|截止余额",
    re.IGNORECASE,
)
_PERIOD_WORDS: Final = re.compile(
    r"\b(period|from|to|between|start|end|statement dates?)\b"
    r"|期间|起止|起始|开始|终止|截止|结束|至|—|~",
    re.IGNORECASE,
)
_PLAUSIBLE_YEARS: Final = range(1990, 2101)


@dataclass(slots=True)
class PendingRow:
    """A transaction whose date waits for the column-wide day/month decision."""

    row: int
    raw_date: RawDate
    date_text: str
    description: str
    amount_minor: int
    balance_minor: int | None
    counterparty: str | None


@dataclass(slots=True)
class Collected:
    pending: list[PendingRow]
    opening: int | None = None
    closing: tuple[int, int] | None = None  # (row, balance)
    preamble: str = ""


def build_statement(collected: Collected, source: StatementFormat, skipped: list[int]) -> ParsedStatement:
    pending = collected.pending
    if not pending:
        raise no_transactions()
    try:
        day_first = decide_day_first([p.raw_date for p in pending])
    except DateOrderError:
        raise mixed_date_order() from None
    rows: list[Transaction] = []
    for p in pending:
        when = to_date(p.raw_date, day_first)
        if when is None or when.year not in _PLAUSIBLE_YEARS:
            raise bad_date(p.row, p.date_text)
        rows.append(Transaction(when, p.description, p.amount_minor, p.balance_minor, p.counterparty, p.row))
    rec = reconcile(rows, collected.opening, collected.closing)
    dates = [tx.date for tx in rec.transactions]
    stated = stated_period(collected.preamble, day_first)
    return ParsedStatement(
        transactions=rec.transactions,
        period_start=min(dates),
        period_end=max(dates),
        opening_balance_minor=rec.opening_minor,
        closing_balance_minor=rec.closing_minor,
        balance_mismatches=rec.mismatches,
        source_format=source,
        stated_period_start=stated[0] if stated else None,
        stated_period_end=stated[1] if stated else None,
        skipped_rows=tuple(skipped),
    )


def stated_period(preamble: str, day_first: bool) -> tuple[date, date] | None:
    """The period printed above the table: two dates on lines that talk about a period.

    Print and issue dates ("打印日期", "Statement date") are on lines without period words.
    """
    found: list[date] = []
    for line in preamble.splitlines():
        if not _PERIOD_WORDS.search(line):
            continue
        for raw in find_dates(line):
            when = to_date(raw, day_first)
            if when is not None and when.year in _PLAUSIBLE_YEARS:
                found.append(when)
    if len(found) < 2:
        return None
    return min(found[:2]), max(found[:2])
