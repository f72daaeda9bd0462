"""Export the ledger as the CSV files `core.ledger.importer` reads (see its docstring).

Rows are written in a stable order, so an export of the same data is byte for byte the same
and export -> import -> export round-trips exactly.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import UTC, date, datetime
from enum import Enum
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Table, select
from sqlalchemy.engine import Connection

from core.csv_cells import neutralise
from core.db.ledger_tables import (
    Bill,
    CreditAccount,
    Customer,
    CustomerAttribute,
    LimitEvent,
    LoanApplication,
)
from core.ledger.importer import (
    ACCOUNTS,
    BILLS,
    COLUMNS,
    CUSTOMER_ATTRIBUTES,
    CUSTOMERS,
    LIMIT_EVENTS,
    LOAN_APPLICATIONS,
    TABLE_OF_FILE,
    TEXT_KINDS,
)

_ORDER: Final[dict[str, tuple[Any, tuple[str, ...]]]] = {
    CUSTOMERS: (Customer, ("id",)),
    ACCOUNTS: (CreditAccount, ("id",)),
    BILLS: (Bill, ("account_id", "due_date", "id")),
    LIMIT_EVENTS: (LimitEvent, ("account_id", "created_at", "kind", "id")),
    LOAN_APPLICATIONS: (LoanApplication, ("customer_id", "applied_on", "lender", "amount_minor", "id")),
    CUSTOMER_ATTRIBUTES: (CustomerAttribute, ("customer_id", "name")),
}
_BATCH: Final = 2_000


def format_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def ledger_rows(connection: Connection, name: str) -> Iterator[list[str]]:
    """The header, then one list of cells per row of the table behind file `name`. Free-text
    cells (names, phones, employers, reasons, lenders, attribute values) are spreadsheet-safe
    (core/csv_cells.py): one starting with =, +, - or @ gets a leading apostrophe, which the
    importer takes off."""
    model, order = _ORDER[name]
    table: Table = model.__table__
    columns = [c.name for c in COLUMNS[name]]
    text = [c.kind in TEXT_KINDS for c in COLUMNS[name]]
    yield columns
    statement = select(*(table.c[c] for c in columns)).order_by(*(table.c[c] for c in order))
    result = connection.execution_options(yield_per=_BATCH).execute(statement)
    for row in result:
        yield [
            neutralise(cell) if is_text else cell
            for cell, is_text in zip((format_cell(v) for v in row), text, strict=True)
        ]


def export_ledger(connection: Connection, folder: Path) -> dict[str, int]:
    """Write all six files into `folder`; returns the rows written per table."""
    folder.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    for name in _ORDER:
        rows = -1  # the header is not a row
        with (folder / name).open("w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            for cells in ledger_rows(connection, name):
                writer.writerow(cells)
                rows += 1
        counts[TABLE_OF_FILE[name]] = rows
    return counts
