"""Bank statements as text extracted from a PDF, one transaction a line.

Accepted line shape (after NFKC, so full-width characters are fine):

    DATE [TIME] [DESCRIPTION] AMOUNT [BALANCE]

- DATE in any form of `dates.py` (2026-03-01, 2026/3/1, 20260301, 2026年3月1日, 01/03/2026,
  01 Mar 2026), at the start of the line; an hh:mm[:ss] time after it is skipped.
- AMOUNT and BALANCE are the last one or two money tokens on the line and have exactly two
  decimals (so card, account and reference numbers in the description are never taken for
  money), optionally with thousands commas and a ¥/$ sign.
- AMOUNT is signed: money out is written -12.50, (12.50), 12.50- or 12.50 DR; an unsigned
  amount is money in. Text extraction loses which column a number sat in, so a statement that
  shows money out unsigned in its own column cannot be read this way; ask for the CSV export.
- "Opening balance 1,000.00" / "期初余额 1,000.00" (and closing) lines set the stated balances.

Every other line (headers, page footers, account details) is ignored; its text still feeds the
stated-period search. Counterparties are not recoverable from text, so they are None.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from core.documents.amounts import AmountError, parse_amount_minor
from core.documents.dates import DATE_PATTERN, read_date
from core.documents.statement_model import ParsedStatement, StatementFormat, bad_amount
from core.documents.statement_rows import (
    CLOSING_ROW,
    OPENING_ROW,
    Collected,
    PendingRow,
    build_statement,
)

_MONEY: Final = r"[-+]?(?:[¥$]\s?)?\(?[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)\.\d{2}\)?-?(?:\s?(?:CR|DR|Cr|Dr))?"
_LINE: Final = re.compile(
    rf"^\s*(?P<date>{DATE_PATTERN})(?:[ T]\d{{1,2}}:\d{{2}}(?::\d{{2}})?)?"
    rf"(?:\s+(?P<desc>.*?))?\s+(?P<amount>{_MONEY})(?:\s+(?P<balance>{_MONEY}))?\s*$"
)
_BALANCE_LINE: Final = re.compile(rf"^(?:\s*{DATE_PATTERN})?\s*(?P<label>.*?)[:\s]\s*(?P<money>{_MONEY})\s*$")


def parse_text_statement(text: str) -> ParsedStatement:
    """Parse text extracted from a PDF statement (see the module docstring for the line shape)."""
    collected = Collected(pending=[])
    other_lines: list[str] = []
    for number, line in enumerate(unicodedata.normalize("NFKC", text).splitlines(), start=1):
        if not _take_line(number, line, collected):
            other_lines.append(line)
    collected.preamble = "\n".join(other_lines)
    return build_statement(collected, StatementFormat.PDF_TEXT, [])


def _take_line(number: int, line: str, collected: Collected) -> bool:
    match = _LINE.match(line)
    if match is not None:
        raw_date = read_date(match["date"])
        description = (match["desc"] or "").strip()
        if raw_date is not None and not _is_balance_label(description):
            collected.pending.append(
                PendingRow(
                    number,
                    raw_date,
                    match["date"],
                    description,
                    _money(number, match["amount"]),
                    _money(number, match["balance"]) if match["balance"] else None,
                    None,
                )
            )
            return True
    balance = _BALANCE_LINE.match(line)
    if balance is None:
        return False
    if OPENING_ROW.search(balance["label"]):
        if collected.opening is None:
            collected.opening = _money(number, balance["money"])
        return True
    if CLOSING_ROW.search(balance["label"]):
        collected.closing = (number, _money(number, balance["money"]))
        return True
    return False


def _is_balance_label(description: str) -> bool:
    return bool(OPENING_ROW.search(description) or CLOSING_ROW.search(description))


def _money(line: int, token: str) -> int:
    try:
        value = parse_amount_minor(token)
    except AmountError:
        raise bad_amount(line, token) from None
    if value is None:  # the pattern only matches digits, so this is unreachable in practice
        raise bad_amount(line, token)
    return value
