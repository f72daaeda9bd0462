"""Spreadsheet-safe CSV text cells (CSV or "formula" injection, OWASP).

A spreadsheet opening a CSV file runs a cell that starts with `=`, `+`, `-` or `@` (and, in
some, a tab or carriage return) as a formula: a customer's name, employer or phone number, or
a line of a bank statement, could then run in a member of staff's spreadsheet. Text cells are
written with a leading apostrophe (`'=1+1`), which spreadsheets show as the text itself; a
text that already starts with apostrophes before such a character gets one more, so that
`restore` gives back exactly what was written (the ledger's export -> import round trip)."""

from __future__ import annotations

from typing import Final

FORMULA_STARTS: Final = frozenset("=+-@\t\r")


def _after_apostrophes(text: str) -> str:
    return text.lstrip("'")[:1]


def neutralise(text: str) -> str:
    """The cell to write for `text`: as it is, or with a leading apostrophe."""
    if text[:1] in FORMULA_STARTS or (text[:1] == "'" and _after_apostrophes(text) in FORMULA_STARTS):
        return "'" + text
    return text


def restore(cell: str) -> str:
    """The text a cell written by `neutralise` stands for."""
    if cell[:1] == "'" and _after_apostrophes(cell) in FORMULA_STARTS:
        return cell[1:]
    return cell
