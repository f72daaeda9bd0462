"""Import ledger data from CSV files, all or nothing.

Six files, each optional (an import needs at least one). UTF-8 (a BOM, as Excel writes it, is
fine), comma separated, the first row is the header; columns may come in any order, a blank
cell means "not given" (the default, or no value). Column names are the ledger's field names.
`*` = required. Updating a customer or an account leaves the fields whose column the file does
not have as they are.

customers.csv: upsert by `id`
    id *                            at most 64 letters, digits, '.', '_', ':' or '-'
    name *                          at most 200 characters
    locale                          zh-CN (default) or en
    email, phone                    contact
    declared_monthly_income_minor   whole fen (minor units), >= 0
    employer                        the employer the customer declared
    created_at                      customer since: ISO 8601 with an offset (2024-03-01T09:00:00Z)
                                    or a date; default: the time of import (kept on re-import)

credit_accounts.csv: upsert by `id`
    id *, customer_id *             the customer: in customers.csv or already in the ledger
    status *                        ACTIVE, FROZEN, REDUCED or CLOSED
    currency                        three capital letters, default CNY
    original_limit_minor *, current_limit_minor *   whole fen, >= 0
    opened_on *                     YYYY-MM-DD

bills.csv: one bill per (account_id, due_date); repayments are the paid_* columns
    account_id *, due_date *        YYYY-MM-DD
    amount_due_minor *              whole fen
    paid_minor                      whole fen repaid so far, default 0
    paid_at                         when it was (last) repaid: ISO 8601 with an offset, or a date
    days_past_due                   blank: computed, from paid_at for a bill repaid in full, from the
                                    import date for one still owing
    Re-importing: a new (account_id, due_date) is inserted, an identical one left alone, a changed
    one has its amounts and repayment updated (a repayment recorded since).

limit_events.csv: the FREEZE / REDUCE / RESTORE history; one event per (account_id, kind, created_at)
    account_id *, kind *            FREEZE (to <= from), REDUCE (to < from) or RESTORE (to > from)
    from_limit_minor *, to_limit_minor *
    reason *                        a reason code: letters, digits, '_', '.', ':', '-' (late_repayment)
    source *                        who decided it (risk-engine, appeal, ops)
    created_at *                    ISO 8601 with an offset, or a date
    appeal_id                       the appeal a RESTORE applied, if any
    Events are history: an identical event is skipped, a different one under the same key is an
    error.

loan_applications.csv: applications at other lenders (the multi-lending signal)
    customer_id *, applied_on *     YYYY-MM-DD
    lender *, amount_minor *
    small_loan *                    true/false (also 1/0, yes/no)
    Exact duplicates (every column equal) are skipped.

customer_attributes.csv: facts about a customer from outside the ledger (a credit bureau, a data
partner), what a policy characteristic `source = "input:NAME"` reads; upsert by (customer_id, name)
    customer_id *                   the customer: in customers.csv or already in the ledger
    name *                          the input field: a letter or '_', then at most 63 letters,
                                    digits, '_', '.' or '-' (as in the policy's `input:NAME`)
    value                           at most 200 characters; the column is required, a blank cell
                                    means the value is missing
    source                          who supplied it, at most 64 characters, default ledger-import
    updated_at                      ISO 8601 with an offset, or a date; default: the time of import
                                    for a new or changed attribute (kept for an unchanged one)
    A (customer_id, name) may appear once per file. Re-importing: a new one is inserted, an
    identical one left alone, a changed one updated; a source column the file does not have
    leaves the source as it is.

Every problem is reported, all of them at once, as "FILE row N, field F: message" (the header is
row 1, so row N is the spreadsheet row). Nothing is written unless every row of every file is
valid: the import is one transaction.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from enum import Enum
from pathlib import Path
from typing import Any, Final

from sqlalchemy import Table, bindparam, insert, select, update
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session

from core.csv_cells import restore
from core.db import session_scope
from core.db.ledger_tables import (
    AccountStatus,
    Bill,
    CreditAccount,
    Customer,
    CustomerAttribute,
    LimitEvent,
    LimitEventKind,
    LoanApplication,
)
from core.db.types import utcnow

CUSTOMERS: Final = "customers.csv"
ACCOUNTS: Final = "credit_accounts.csv"
BILLS: Final = "bills.csv"
LIMIT_EVENTS: Final = "limit_events.csv"
LOAN_APPLICATIONS: Final = "loan_applications.csv"
CUSTOMER_ATTRIBUTES: Final = "customer_attributes.csv"
LEDGER_FILES: Final = (CUSTOMERS, ACCOUNTS, BILLS, LIMIT_EVENTS, LOAN_APPLICATIONS, CUSTOMER_ATTRIBUTES)
# The summary names tables, not files.
TABLE_OF_FILE: Final = {
    CUSTOMERS: "customers",
    ACCOUNTS: "credit_accounts",
    BILLS: "bills",
    LIMIT_EVENTS: "limit_events",
    LOAN_APPLICATIONS: "loan_applications",
    CUSTOMER_ATTRIBUTES: "customer_attributes",
}
# The summary's table column: as wide as the longest name.
TABLE_WIDTH: Final = max(len(table) for table in TABLE_OF_FILE.values())
DEFAULT_ATTRIBUTE_SOURCE: Final = "ledger-import"

MAX_MINOR: Final = 2**31 - 1  # the columns are 32-bit integers on PostgreSQL
LOCALES: Final = ("zh-CN", "en")
_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_CODE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
# A policy's input field name (core/policy/model.py, `input:NAME`).
_FIELD_NAME: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")
_INTEGER: Final = re.compile(r"[+-]?\d+")
_DECIMAL: Final = re.compile(r"[+-]?\d*[.,]\d+")
_DATE: Final = re.compile(r"\d{4}-\d{2}-\d{2}")
_CURRENCY: Final = re.compile(r"[A-Z]{3}")
_TRUE: Final = frozenset({"true", "1", "yes", "y", "t"})
_FALSE: Final = frozenset({"false", "0", "no", "n", "f"})
_IN_CHUNK: Final = 500  # ids per IN (...) lookup
_WRITE_CHUNK: Final = 5_000  # rows per executemany


# --------------------------------------------------------------------------------------------
# Errors and the summary


@dataclass(frozen=True, slots=True)
class LedgerError:
    file: str
    row: int | None  # 1 = the header
    field: str | None
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f" row {self.row}"
        if self.field is not None:
            where += f"{',' if self.row is not None else ''} field {self.field}"
        return f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "row": self.row, "field": self.field, "message": self.message}


class LedgerImportFailed(Exception):
    """The import was refused; nothing was written. `errors` lists every problem found."""

    def __init__(self, errors: Sequence[LedgerError]) -> None:
        order = {name: index for index, name in enumerate(LEDGER_FILES)}
        self.errors: list[LedgerError] = sorted(
            errors, key=lambda e: (order.get(e.file, len(order)), e.file, e.row or 0)
        )
        super().__init__(f"{len(self.errors)} error(s); first: {self.errors[0] if self.errors else '-'}")


@dataclass(slots=True)
class TableCounts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def rows(self) -> int:
        return self.inserted + self.updated + self.unchanged


@dataclass(slots=True)
class ImportSummary:
    tables: dict[str, TableCounts] = field(
        default_factory=lambda: {table: TableCounts() for table in TABLE_OF_FILE.values()}
    )

    def lines(self) -> list[str]:
        return [
            f"{table:<{TABLE_WIDTH}} {c.rows:>8} rows: {c.inserted} inserted, {c.updated} updated, "
            f"{c.unchanged} unchanged"
            for table, c in self.tables.items()
        ]


# --------------------------------------------------------------------------------------------
# Columns


class Kind(Enum):
    ID = "id"
    TEXT = "text"
    CODE = "code"
    LOCALE = "locale"
    EMAIL = "email"
    MINOR = "minor"
    DAYS = "days"
    DATE = "date"
    DATETIME = "datetime"
    BOOL = "bool"
    CURRENCY = "currency"
    STATUS = "status"
    EVENT_KIND = "event_kind"
    FIELD_NAME = "field_name"


# Free text, written spreadsheet-safe by the exporter (core/csv_cells.py).
TEXT_KINDS: Final = frozenset({Kind.TEXT, Kind.EMAIL, Kind.CODE})


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    kind: Kind
    required: bool = False
    max_length: int = 200
    # The header must have the column even though a cell may be blank (`required` implies it).
    column_required: bool = False


COLUMNS: Final[dict[str, tuple[Column, ...]]] = {
    CUSTOMERS: (
        Column("id", Kind.ID, True),
        Column("name", Kind.TEXT, True, 200),
        Column("locale", Kind.LOCALE),
        Column("email", Kind.EMAIL, max_length=254),
        Column("phone", Kind.TEXT, max_length=32),
        Column("declared_monthly_income_minor", Kind.MINOR),
        Column("employer", Kind.TEXT, max_length=200),
        Column("created_at", Kind.DATETIME),
    ),
    ACCOUNTS: (
        Column("id", Kind.ID, True),
        Column("customer_id", Kind.ID, True),
        Column("status", Kind.STATUS, True),
        Column("currency", Kind.CURRENCY),
        Column("original_limit_minor", Kind.MINOR, True),
        Column("current_limit_minor", Kind.MINOR, True),
        Column("opened_on", Kind.DATE, True),
    ),
    BILLS: (
        Column("account_id", Kind.ID, True),
        Column("due_date", Kind.DATE, True),
        Column("amount_due_minor", Kind.MINOR, True),
        Column("paid_minor", Kind.MINOR),
        Column("paid_at", Kind.DATETIME),
        Column("days_past_due", Kind.DAYS),
    ),
    LIMIT_EVENTS: (
        Column("account_id", Kind.ID, True),
        Column("kind", Kind.EVENT_KIND, True),
        Column("from_limit_minor", Kind.MINOR, True),
        Column("to_limit_minor", Kind.MINOR, True),
        Column("reason", Kind.CODE, True, 200),
        Column("source", Kind.TEXT, True, 64),
        Column("created_at", Kind.DATETIME, True),
        Column("appeal_id", Kind.TEXT, max_length=36),
    ),
    LOAN_APPLICATIONS: (
        Column("customer_id", Kind.ID, True),
        Column("applied_on", Kind.DATE, True),
        Column("lender", Kind.TEXT, True, 200),
        Column("amount_minor", Kind.MINOR, True),
        Column("small_loan", Kind.BOOL, True),
    ),
    CUSTOMER_ATTRIBUTES: (
        Column("customer_id", Kind.ID, True),
        Column("name", Kind.FIELD_NAME, True, 64),
        Column("value", Kind.TEXT, max_length=200, column_required=True),
        Column("source", Kind.TEXT, max_length=64),
        Column("updated_at", Kind.DATETIME),
    ),
}


class _Invalid(ValueError):
    pass


def _convert(column: Column, raw: str) -> Any:
    """The typed value of one non-blank cell; raises _Invalid with a message for the user."""
    kind = column.kind
    if kind is Kind.ID:
        if not _ID.fullmatch(raw):
            raise _Invalid("not a valid id (at most 64 letters, digits, '.', '_', ':' or '-')")
        return raw
    if kind is Kind.FIELD_NAME:
        if not _FIELD_NAME.fullmatch(raw):
            raise _Invalid(
                "not a field name (a letter or '_', then at most 63 letters, digits, '_', '.' or '-')"
            )
        return raw
    if kind in (Kind.TEXT, Kind.EMAIL, Kind.CODE):
        if len(raw) > column.max_length:
            raise _Invalid(f"longer than {column.max_length} characters")
        if kind is Kind.EMAIL and (raw.count("@") != 1 or any(ch.isspace() for ch in raw)):
            raise _Invalid("not an email address")
        if kind is Kind.CODE and not _CODE.fullmatch(raw):
            raise _Invalid("not a reason code (letters, digits, '_', '.', ':' or '-', e.g. late_repayment)")
        return raw
    if kind is Kind.LOCALE:
        for locale in LOCALES:
            if raw.lower() == locale.lower():
                return locale
        raise _Invalid(f"not a supported locale ({' or '.join(LOCALES)})")
    if kind in (Kind.MINOR, Kind.DAYS):
        if not _INTEGER.fullmatch(raw):
            if kind is Kind.MINOR and _DECIMAL.fullmatch(raw):
                raise _Invalid("not a whole number of fen (minor units): write 450.00 yuan as 45000")
            raise _Invalid("not a whole number")
        value = int(raw)
        if value < 0:
            raise _Invalid("must not be negative")
        if value > MAX_MINOR:
            raise _Invalid(f"too large (at most {MAX_MINOR})")
        return value
    if kind is Kind.DATE:
        return _parse_date(raw)
    if kind is Kind.DATETIME:
        return _parse_datetime(raw)
    if kind is Kind.BOOL:
        if raw.lower() in _TRUE:
            return True
        if raw.lower() in _FALSE:
            return False
        raise _Invalid("not true or false")
    if kind is Kind.CURRENCY:
        if not _CURRENCY.fullmatch(raw):
            raise _Invalid("not a currency code (three capital letters, e.g. CNY)")
        return raw
    if kind is Kind.STATUS:
        return _enum(AccountStatus, raw)
    return _enum(LimitEventKind, raw)


def _parse_date(raw: str) -> date:
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError
        return date.fromisoformat(raw)
    except ValueError:
        raise _Invalid("not a date (expected YYYY-MM-DD)") from None


def _parse_datetime(raw: str) -> datetime:
    if _DATE.fullmatch(raw):
        return datetime.combine(_parse_date(raw), time(0), UTC)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise _Invalid("not a date-time (expected ISO 8601, e.g. 2025-03-01T10:00:00+08:00)") from None
    if value.tzinfo is None:
        raise _Invalid("a date-time without a time zone (add one, e.g. 2025-03-01T10:00:00+08:00 or ...Z)")
    return value.astimezone(UTC)


def _enum(kind: type[AccountStatus] | type[LimitEventKind], raw: str) -> Any:
    try:
        return kind(raw.upper())
    except ValueError:
        raise _Invalid(f"not one of {', '.join(m.value for m in kind)}") from None


# --------------------------------------------------------------------------------------------
# Reading one file


@dataclass(slots=True)
class Record:
    row: int
    values: dict[str, Any]  # a field that failed to parse is None
    complete: bool = True  # every field parsed and the row's own rules hold
    given: frozenset[str] = frozenset()  # the columns the file has


def _decode(name: str, data: bytes, errors: list[LedgerError]) -> str | None:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        errors.append(
            LedgerError(name, None, None, f"not UTF-8 text (byte {exc.start}); save it as 'CSV UTF-8'")
        )
        return None
    if not text.strip():
        errors.append(LedgerError(name, None, None, "empty file: expected a header row"))
        return None
    return text


def parse_file(name: str, data: bytes, errors: list[LedgerError]) -> list[Record]:
    """Typed records of one file; every problem is appended to `errors` and its row marked
    incomplete (still checked against the other files, never written)."""
    text = _decode(name, data, errors)
    if text is None:
        return []
    columns = {c.name: c for c in COLUMNS[name]}
    reader = csv.reader(io.StringIO(text, newline=""))
    row = 1
    try:
        header = [cell.strip() for cell in next(reader)]
        positions = _header(name, header, columns, errors)
        if positions is None:
            return []
        records: list[Record] = []
        for row, cells in enumerate(reader, start=2):
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                errors.append(
                    LedgerError(name, row, None, f"{len(cells)} cells, but the header has {len(header)}")
                )
                continue
            records.append(_record(name, row, cells, positions, errors))
    except csv.Error as exc:
        errors.append(LedgerError(name, row + 1, None, f"not valid CSV: {exc}"))
        return []
    return records


def _header(
    name: str, header: list[str], columns: dict[str, Column], errors: list[LedgerError]
) -> dict[str, int] | None:
    positions: dict[str, int] = {}
    ok = True
    for index, cell in enumerate(header):
        key = cell.lower()
        if key not in columns:
            expected = ", ".join(columns)
            errors.append(
                LedgerError(name, 1, cell or f"#{index + 1}", f"unknown column (expected {expected})")
            )
        elif key in positions:
            errors.append(LedgerError(name, 1, key, "column appears twice"))
            ok = False
        else:
            positions[key] = index
    for column in columns.values():
        if (column.required or column.column_required) and column.name not in positions:
            errors.append(LedgerError(name, 1, column.name, "required column is missing"))
            ok = False
    return positions if ok else None


def _record(
    name: str, row: int, cells: list[str], positions: dict[str, int], errors: list[LedgerError]
) -> Record:
    values: dict[str, Any] = {}
    before = len(errors)
    for column in COLUMNS[name]:
        raw = cells[positions[column.name]].strip() if column.name in positions else ""
        values[column.name] = None
        if not raw:
            if column.required:
                errors.append(LedgerError(name, row, column.name, "required but blank"))
            continue
        if column.kind in TEXT_KINDS:
            raw = restore(raw)  # the exporter's spreadsheet-safe apostrophe (core/csv_cells.py)
        try:
            values[column.name] = _convert(column, raw)
        except _Invalid as exc:
            errors.append(LedgerError(name, row, column.name, str(exc)))
    if len(errors) == before:
        for message_field, message in _row_rules(name, values):
            errors.append(LedgerError(name, row, message_field, message))
    return Record(row, values, complete=len(errors) == before, given=frozenset(positions))


def _row_rules(name: str, v: dict[str, Any]) -> Iterator[tuple[str, str]]:
    if name == BILLS:
        paid = v["paid_minor"] or 0
        if v["paid_at"] is not None and paid == 0:
            yield "paid_at", "given, but paid_minor is 0 (nothing was repaid)"
        if v["days_past_due"] is None and paid >= v["amount_due_minor"] and v["paid_at"] is None:
            yield "days_past_due", "blank, and cannot be computed without paid_at for a bill repaid in full"
    elif name == LIMIT_EVENTS:
        kind, before, after = v["kind"], v["from_limit_minor"], v["to_limit_minor"]
        if kind is LimitEventKind.REDUCE and not after < before:
            yield "to_limit_minor", "a REDUCE must lower the limit (to_limit_minor below from_limit_minor)"
        elif kind is LimitEventKind.RESTORE and not after > before:
            yield "to_limit_minor", "a RESTORE must raise the limit (to_limit_minor above from_limit_minor)"
        elif kind is LimitEventKind.FREEZE and after > before:
            yield "to_limit_minor", "a FREEZE cannot raise the limit"


# --------------------------------------------------------------------------------------------
# Defaults and natural keys


def _with_defaults(name: str, values: dict[str, Any], today: date) -> dict[str, Any]:
    v = dict(values)
    if name == CUSTOMERS:
        v["locale"] = v["locale"] or "zh-CN"
    elif name == ACCOUNTS:
        v["currency"] = v["currency"] or "CNY"
    elif name == CUSTOMER_ATTRIBUTES:
        v["value"] = v["value"] or ""  # blank: missing (the column is not nullable)
        v["source"] = v["source"] or DEFAULT_ATTRIBUTE_SOURCE
    elif name == BILLS:
        v["paid_minor"] = v["paid_minor"] or 0
        if v["days_past_due"] is None:
            v["days_past_due"] = computed_days_past_due(
                v["due_date"], v["amount_due_minor"], v["paid_minor"], v["paid_at"], today
            )
    return v


def computed_days_past_due(
    due: date, amount_due: int, paid: int, paid_at: datetime | None, today: date
) -> int:
    """Days late: until the repayment for a bill repaid in full, until today for one still owing."""
    if paid >= amount_due:
        return 0 if paid_at is None else max((paid_at.astimezone(UTC).date() - due).days, 0)
    return max((today - due).days, 0)


_BILL_KEY: Final = ("account_id", "due_date")
_EVENT_KEY: Final = ("account_id", "kind", "created_at")
_LOAN_KEY: Final = ("customer_id", "applied_on", "lender", "amount_minor", "small_loan")
_ATTRIBUTE_KEY: Final = ("customer_id", "name")


def _key(values: Mapping[str, Any], names: Sequence[str]) -> tuple[Any, ...]:
    return tuple(values[n] for n in names)


def _same(a: Mapping[str, Any], b: Mapping[str, Any], names: Iterable[str]) -> bool:
    return all(a[n] == b[n] for n in names)


def _fields(name: str) -> tuple[str, ...]:
    return tuple(c.name for c in COLUMNS[name])


# --------------------------------------------------------------------------------------------
# The import


def read_ledger_dir(folder: Path) -> dict[str, bytes]:
    """The ledger files present in `folder` (other files are ignored)."""
    if not folder.is_dir():
        raise LedgerImportFailed([LedgerError(str(folder), None, None, "not a folder")])
    files = {name: (folder / name).read_bytes() for name in LEDGER_FILES if (folder / name).is_file()}
    if not files:
        raise LedgerImportFailed(
            [
                LedgerError(
                    str(folder), None, None, f"no ledger files (expected any of {', '.join(LEDGER_FILES)})"
                )
            ]
        )
    return files


def import_ledger_dir(engine: Engine, folder: Path, *, today: date) -> ImportSummary:
    files = read_ledger_dir(folder)
    with session_scope(engine) as session:
        return import_ledger_files(session, files, today=today)


def import_ledger_files(session: Session, files: Mapping[str, bytes], *, today: date) -> ImportSummary:
    """Validate every file, then write them in the caller's transaction.

    Raises LedgerImportFailed listing every problem before anything is written; the caller's
    session scope rolls back whatever else it did.
    """
    errors: list[LedgerError] = []
    unknown = [n for n in files if n not in LEDGER_FILES]
    for name in unknown:
        errors.append(
            LedgerError(name, None, None, f"not a ledger file (expected any of {', '.join(LEDGER_FILES)})")
        )
    if not files:
        errors.append(
            LedgerError("(upload)", None, None, f"no files (expected any of {', '.join(LEDGER_FILES)})")
        )
    parsed: dict[str, list[Record]] = {
        name: parse_file(name, files[name], errors) if name in files else [] for name in LEDGER_FILES
    }
    records = {
        name: [
            Record(r.row, _with_defaults(name, r.values, today), given=r.given) if r.complete else r
            for r in rows
        ]
        for name, rows in parsed.items()
    }
    plan = _Plan(session.connection(), records, errors)
    plan.validate()
    if errors:
        raise LedgerImportFailed(errors)
    return plan.write()


def _table(model: Any) -> Table:
    table: Table = model.__table__
    return table


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _Plan:
    """Cross-file checks against the batch and the ledger, then the writes."""

    def __init__(self, connection: Connection, records: dict[str, list[Record]], errors: list[LedgerError]):
        self.connection = connection
        self.records = records
        self.errors = errors
        self.summary = ImportSummary()
        self.customers: dict[str, Record] = {}
        self.accounts: dict[str, Record] = {}
        self.existing_customers: dict[str, dict[str, Any]] = {}
        self.existing_accounts: dict[str, dict[str, Any]] = {}
        self.bills: dict[tuple[Any, ...], Record] = {}
        self.events: dict[tuple[Any, ...], Record] = {}
        self.loans: dict[tuple[Any, ...], Record] = {}
        self.attributes: dict[tuple[Any, ...], Record] = {}

    def error(self, name: str, row: int, column: str, message: str) -> None:
        self.errors.append(LedgerError(name, row, column, message))

    # -- lookups ------------------------------------------------------------------------------

    def _rows_where_in(self, table: Table, column: str, values: Iterable[Any]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        ordered = sorted(set(values))
        for chunk in _chunks(ordered, _IN_CHUNK):
            result = self.connection.execute(select(table).where(table.c[column].in_(chunk)))
            out.extend(dict(row) for row in result.mappings())
        return out

    def _known_ids(self, table: Table, ids: Iterable[str]) -> set[str]:
        found: set[str] = set()
        for chunk in _chunks(sorted(set(ids)), _IN_CHUNK):
            found.update(self.connection.execute(select(table.c.id).where(table.c.id.in_(chunk))).scalars())
        return found

    # -- validation ---------------------------------------------------------------------------

    def validate(self) -> None:
        self.customers = self._unique_ids(CUSTOMERS)
        self.accounts = self._unique_ids(ACCOUNTS)
        self.existing_customers = {
            r["id"]: r for r in self._rows_where_in(_table(Customer), "id", self.customers)
        }
        self.existing_accounts = {
            r["id"]: r for r in self._rows_where_in(_table(CreditAccount), "id", self.accounts)
        }
        self._check_references(
            CUSTOMERS,
            _table(Customer),
            "customer_id",
            (ACCOUNTS, LOAN_APPLICATIONS, CUSTOMER_ATTRIBUTES),
            "customer",
        )
        self._check_references(
            ACCOUNTS, _table(CreditAccount), "account_id", (BILLS, LIMIT_EVENTS), "credit account"
        )
        for account_id, record in self.accounts.items():
            existing = self.existing_accounts.get(account_id)
            if existing is not None and existing["customer_id"] != record.values["customer_id"]:
                self.error(
                    ACCOUNTS,
                    record.row,
                    "customer_id",
                    f"account {account_id} belongs to customer {existing['customer_id']} in the ledger; "
                    "an account cannot move to another customer",
                )
        self.bills = self._by_natural_key(
            BILLS, _BILL_KEY, "due_date", "a second bill for this account and due date"
        )
        self.events = self._by_natural_key(
            LIMIT_EVENTS,
            _EVENT_KEY,
            "created_at",
            "a second event of this kind for this account at this time",
        )
        # Every column is in the key: a repeat is always identical.
        self.loans = self._by_natural_key(LOAN_APPLICATIONS, _LOAN_KEY, "lender", "a repeated application")
        self.attributes = self._unique_attributes()
        self._check_event_history()

    def _complete(self, name: str) -> Iterator[Record]:
        return (r for r in self.records[name] if r.complete)

    def _check_references(
        self, parent: str, table: Table, column: str, children: Sequence[str], what: str
    ) -> None:
        """Every child row whose key parsed names a parent in the files or in the ledger. A parent
        row with errors of its own still counts as there: its errors are reported already."""
        in_files = {r.values["id"] for r in self.records[parent] if r.values["id"] is not None}
        wanted = {r.values[column] for n in children for r in self.records[n] if r.values[column] is not None}
        known = in_files | self._known_ids(table, wanted - in_files)
        for name in children:
            for record in self.records[name]:
                key = record.values[column]
                if key is not None and key not in known:
                    self.error(name, record.row, column, _unknown(what, key, parent))

    def _unique_ids(self, name: str) -> dict[str, Record]:
        seen: dict[str, Record] = {}
        for record in self._complete(name):
            key = record.values["id"]
            if key in seen:
                self.error(name, record.row, "id", f"duplicate id {key!r} (also on row {seen[key].row})")
            else:
                seen[key] = record
        return seen

    def _unique_attributes(self) -> dict[tuple[Any, ...], Record]:
        """One row per (customer_id, name): a second one is an error even when identical."""
        seen: dict[tuple[Any, ...], Record] = {}
        for record in self._complete(CUSTOMER_ATTRIBUTES):
            key = _key(record.values, _ATTRIBUTE_KEY)
            first = seen.get(key)
            if first is None:
                seen[key] = record
            else:
                self.error(
                    CUSTOMER_ATTRIBUTES,
                    record.row,
                    "name",
                    f"duplicate attribute {key[1]!r} for customer {key[0]!r} (also on row {first.row})",
                )
        return seen

    def _by_natural_key(
        self, name: str, key_names: Sequence[str], blame: str, conflict: str
    ) -> dict[tuple[Any, ...], Record]:
        """Identical repeats of a row are dropped (counted unchanged); different ones are errors."""
        seen: dict[tuple[Any, ...], Record] = {}
        names = _fields(name)
        for record in self._complete(name):
            key = _key(record.values, key_names)
            first = seen.get(key)
            if first is None:
                seen[key] = record
            elif _same(first.values, record.values, names):
                self.summary.tables[TABLE_OF_FILE[name]].unchanged += 1
            else:
                self.error(name, record.row, blame, f"{conflict}, with different values (row {first.row})")
        return seen

    def _check_event_history(self) -> None:
        if not self.events:
            return
        table = _table(LimitEvent)
        existing = self._rows_where_in(table, "account_id", {k[0] for k in self.events})
        by_key = {_key(r, _EVENT_KEY): r for r in existing}
        appeal_owner = {r["appeal_id"]: _key(r, _EVENT_KEY) for r in existing if r["appeal_id"]}
        appeal_ids = {r.values["appeal_id"] for r in self.events.values() if r.values["appeal_id"]}
        for row in self._rows_where_in(table, "appeal_id", appeal_ids):
            appeal_owner[row["appeal_id"]] = _key(row, _EVENT_KEY)
        in_file: dict[str, Record] = {}
        names = _fields(LIMIT_EVENTS)
        for key, record in self.events.items():
            old = by_key.get(key)
            if old is not None and not _same(old, record.values, names):
                self.error(
                    LIMIT_EVENTS,
                    record.row,
                    "created_at",
                    "the ledger already has this event (account, kind, created_at) with different values; "
                    "limit events are history and are not changed by an import",
                )
            appeal_id = record.values["appeal_id"]
            if not appeal_id:
                continue
            owner = appeal_owner.get(appeal_id)
            if owner is not None and owner != key:
                self.error(
                    LIMIT_EVENTS,
                    record.row,
                    "appeal_id",
                    f"appeal {appeal_id} already has another limit event",
                )
            elif appeal_id in in_file:
                self.error(
                    LIMIT_EVENTS,
                    record.row,
                    "appeal_id",
                    f"appeal {appeal_id} also on row {in_file[appeal_id].row}: one limit event per appeal",
                )
            in_file[appeal_id] = record

    # -- writes -------------------------------------------------------------------------------

    def write(self) -> ImportSummary:
        self._upsert(CUSTOMERS, _table(Customer), self.customers, self.existing_customers)
        self._upsert(ACCOUNTS, _table(CreditAccount), self.accounts, self.existing_accounts)
        self._write_bills()
        self._insert_new(LIMIT_EVENTS, _table(LimitEvent), self.events, "account_id", _EVENT_KEY)
        self._insert_new(LOAN_APPLICATIONS, _table(LoanApplication), self.loans, "customer_id", _LOAN_KEY)
        self._write_attributes()
        return self.summary

    def _upsert(
        self, name: str, table: Table, records: dict[str, Record], existing: dict[str, dict[str, Any]]
    ) -> None:
        counts = self.summary.tables[TABLE_OF_FILE[name]]
        new: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for key, record in records.items():
            values = dict(record.values)
            old = existing.get(key)
            if old is None:
                if "created_at" in values and values["created_at"] is None:
                    values["created_at"] = utcnow()
                new.append(values)
                continue
            # A column the file does not have is left as it is; a blank cell clears the field.
            values = {k: v for k, v in values.items() if k in record.given}
            if "created_at" in values and values["created_at"] is None:
                values["created_at"] = old["created_at"]  # a blank keeps when the customer joined
            if _same(old, values, values):
                counts.unchanged += 1
            else:
                changed.append(values)
        self._insert(table, new)
        self._update(table, changed, ("id",))
        counts.inserted += len(new)
        counts.updated += len(changed)

    def _write_bills(self) -> None:
        table = _table(Bill)
        counts = self.summary.tables["bills"]
        existing = {
            _key(r, _BILL_KEY): r
            for r in self._rows_where_in(table, "account_id", {k[0] for k in self.bills})
        }
        names = _fields(BILLS)
        new: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for key, record in self.bills.items():
            old = existing.get(key)
            if old is None:
                new.append(record.values)
            elif _same(old, record.values, names):
                counts.unchanged += 1
            else:
                changed.append({**record.values, "id": old["id"]})
        self._insert(table, new)
        self._update(table, changed, ("id",))
        counts.inserted += len(new)
        counts.updated += len(changed)

    def _write_attributes(self) -> None:
        """Upsert by (customer_id, name). A blank updated_at is the time of import for a new or
        changed attribute and is kept for an unchanged one; a column the file does not have
        (source, updated_at) is left as it is."""
        table = _table(CustomerAttribute)
        counts = self.summary.tables[TABLE_OF_FILE[CUSTOMER_ATTRIBUTES]]
        existing = {
            _key(r, _ATTRIBUTE_KEY): r
            for r in self._rows_where_in(table, "customer_id", {k[0] for k in self.attributes})
        }
        now = utcnow()
        new: list[dict[str, Any]] = []
        changed: list[dict[str, Any]] = []
        for key, record in self.attributes.items():
            old = existing.get(key)
            if old is None:
                new.append({**record.values, "updated_at": record.values["updated_at"] or now})
                continue
            values = {k: v for k, v in record.values.items() if k in record.given}
            stamp = values.pop("updated_at", None)
            if not _same(old, values, values) or (stamp is not None and stamp != old["updated_at"]):
                changed.append({**values, "id": old["id"], "updated_at": stamp or now})
            else:
                counts.unchanged += 1
        self._insert(table, new)
        self._update(table, changed, ("id",))
        counts.inserted += len(new)
        counts.updated += len(changed)

    def _insert_new(
        self,
        name: str,
        table: Table,
        records: dict[tuple[Any, ...], Record],
        owner: str,
        key_names: Sequence[str],
    ) -> None:
        counts = self.summary.tables[TABLE_OF_FILE[name]]
        existing = {_key(r, key_names) for r in self._rows_where_in(table, owner, {k[0] for k in records})}
        new = [r.values for key, r in records.items() if key not in existing]
        counts.unchanged += len(records) - len(new)
        self._insert(table, new)
        counts.inserted += len(new)

    def _insert(self, table: Table, rows: Sequence[dict[str, Any]]) -> None:
        for chunk in _chunks(rows, _WRITE_CHUNK):
            self.connection.execute(insert(table), list(chunk))

    def _update(self, table: Table, rows: Sequence[dict[str, Any]], key_names: Sequence[str]) -> None:
        if not rows:
            return
        columns = [c for c in rows[0] if c not in key_names]
        statement = (
            update(table)
            .where(*(table.c[k] == bindparam(f"key_{k}") for k in key_names))
            .values({c: bindparam(f"new_{c}") for c in columns})
        )
        params = [
            {**{f"key_{k}": r[k] for k in key_names}, **{f"new_{c}": r[c] for c in columns}} for r in rows
        ]
        for chunk in _chunks(params, _WRITE_CHUNK):
            self.connection.execute(statement, list(chunk))


def _unknown(what: str, key: str, file: str) -> str:
    return f"unknown {what} {key!r} (not in {file} and not in the ledger)"
