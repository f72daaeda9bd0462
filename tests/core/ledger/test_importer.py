"""Ledger CSV import: counts, idempotence, errors that name file, row and field, all or nothing,
and the export round trip. Every test runs on SQLite and on PostgreSQL (the `engine` fixture)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.db import make_engine, session_scope
from core.db.ledger_tables import Bill, CreditAccount, Customer, LimitEvent
from core.db.migrate import create_all_at_head
from core.ledger.exporter import export_ledger, ledger_rows
from core.ledger.generator import seed_population
from core.ledger.importer import (
    LEDGER_FILES,
    LedgerImportFailed,
    import_ledger_dir,
    import_ledger_files,
    read_ledger_dir,
)
from core.seed import seed_demo_ledger

TODAY = date(2025, 6, 15)

BASE: dict[str, str] = {
    "customers.csv": """id,name,locale,email,phone,declared_monthly_income_minor,employer,created_at
c-1,王芳,zh-CN,c1@example.test,,1200000,星辰科技,2023-01-05T09:00:00+08:00
c-2,Li Wei,en,,+86 13800000000,,,
""",
    "credit_accounts.csv": "id,customer_id,status,currency,"
    "original_limit_minor,current_limit_minor,opened_on\n"
    """a-1,c-1,FROZEN,,800000,0,2023-01-05
a-2,c-2,reduced,CNY,1000000,300000,2024-02-01
""",
    "bills.csv": """account_id,due_date,amount_due_minor,paid_minor,paid_at,days_past_due
a-1,2025-03-10,45000,45000,2025-03-10T08:00:00Z,0
a-1,2025-04-10,45000,45000,2025-04-22T08:00:00+08:00,
a-1,2025-05-10,45000,45000,2025-05-09,
a-2,2025-05-01,30000,10000,2025-05-20T10:00:00Z,
a-2,2025-06-01,30000,0,,5
""",
    "limit_events.csv": """account_id,kind,from_limit_minor,to_limit_minor,reason,source,created_at,appeal_id
a-1,FREEZE,800000,0,late_repayment,risk-engine,2025-04-18T02:00:00Z,
a-2,REDUCE,1000000,300000,late_repayment,risk-engine,2025-05-15T02:00:00Z,
""",
    "loan_applications.csv": """customer_id,applied_on,lender,amount_minor,small_loan
c-2,2025-05-01,借呗,500000,true
c-2,2025-05-20,微粒贷,300000,yes
c-2,2025-05-20,微粒贷,300000,yes
""",
    # A blank value is a missing one; "-1" is exported spreadsheet-safe ('-1) and read back as -1.
    "customer_attributes.csv": """customer_id,name,value,source,updated_at
c-1,bureau_grade,A,credit-bureau,2025-05-01T00:00:00Z
c-1,bureau.inquiries_6m,3,,
c-2,bureau_grade,,credit-bureau,2025-05-02
c-2,months_since_delinquency,-1,credit-bureau,
""",
}


def write_folder(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def with_cell(text: str, row: int, column: str, value: str) -> str:
    """The CSV text with one cell replaced; `row` counts the header as row 1."""
    rows = list(csv.reader(io.StringIO(text)))
    rows[row - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def snapshot(engine: Engine) -> dict[str, list[list[str]]]:
    with engine.connect() as connection:
        return {name: list(ledger_rows(connection, name)) for name in LEDGER_FILES}


def import_base(engine: Engine, tmp_path: Path) -> None:
    import_ledger_dir(engine, write_folder(tmp_path / "base", BASE), today=TODAY)


# --------------------------------------------------------------------------------------------
# Happy path


def test_import_counts_and_values(engine: Engine, tmp_path: Path) -> None:
    summary = import_ledger_dir(engine, write_folder(tmp_path / "in", BASE), today=TODAY)

    counts = {t: (c.inserted, c.updated, c.unchanged) for t, c in summary.tables.items()}
    assert counts == {
        "customers": (2, 0, 0),
        "credit_accounts": (2, 0, 0),
        "bills": (5, 0, 0),
        "limit_events": (2, 0, 0),
        "loan_applications": (2, 0, 1),  # the exact repeat is skipped
        "customer_attributes": (4, 0, 0),
    }
    with session_scope(engine, read_only=True) as session:
        first = session.get(Customer, "c-1")
        assert first is not None and first.created_at == datetime(2023, 1, 5, 1, 0, tzinfo=UTC)
        second = session.get(Customer, "c-2")
        assert second is not None and second.locale == "en" and second.created_at.tzinfo is not None
        account = session.get(CreditAccount, "a-2")
        assert account is not None and account.status == "REDUCED" and account.currency == "CNY"
        dpd = {
            (b.account_id, b.due_date.isoformat()): b.days_past_due for b in session.exec(select(Bill)).all()
        }
    assert dpd == {
        ("a-1", "2025-03-10"): 0,
        ("a-1", "2025-04-10"): 12,  # computed from paid_at (UTC date)
        ("a-1", "2025-05-10"): 0,  # repaid the day before it was due
        ("a-2", "2025-05-01"): 45,  # still owing: counted to the import date
        ("a-2", "2025-06-01"): 5,  # given
    }


def test_reimport_is_idempotent(engine: Engine, tmp_path: Path) -> None:
    folder = write_folder(tmp_path / "in", BASE)
    import_ledger_dir(engine, folder, today=TODAY)
    before = snapshot(engine)

    again = import_ledger_dir(engine, folder, today=TODAY)

    assert all(c.inserted == 0 and c.updated == 0 for c in again.tables.values())
    assert again.tables["bills"].unchanged == 5
    assert again.tables["customers"].unchanged == 2
    assert snapshot(engine) == before


def test_reimport_updates_by_key(engine: Engine, tmp_path: Path) -> None:
    import_base(engine, tmp_path)
    changed = dict(BASE)
    changed["customers.csv"] = with_cell(BASE["customers.csv"], 3, "name", "Li Wei (Wei Li)")
    # The bill still owed has been repaid since.
    bills = with_cell(BASE["bills.csv"], 5, "paid_minor", "30000")
    changed["bills.csv"] = with_cell(bills, 5, "paid_at", "2025-06-01T09:00:00Z")

    summary = import_ledger_dir(engine, write_folder(tmp_path / "again", changed), today=TODAY)

    assert (summary.tables["customers"].updated, summary.tables["customers"].unchanged) == (1, 1)
    assert (summary.tables["bills"].updated, summary.tables["bills"].unchanged) == (1, 4)
    with session_scope(engine, read_only=True) as session:
        customer = session.get(Customer, "c-2")
        assert customer is not None and customer.name == "Li Wei (Wei Li)"
        bill = session.exec(
            select(Bill).where(Bill.account_id == "a-2", Bill.due_date == date(2025, 5, 1))
        ).one()
        assert (bill.paid_minor, bill.days_past_due, bill.outstanding_minor) == (30000, 31, 0)
        assert len(session.exec(select(Bill)).all()) == 5


def test_columns_a_file_leaves_out_are_kept(engine: Engine, tmp_path: Path) -> None:
    import_base(engine, tmp_path)
    names_only = {"customers.csv": "id,name\nc-1,王芳芳\n"}
    summary = import_ledger_dir(engine, write_folder(tmp_path / "names", names_only), today=TODAY)
    assert summary.tables["customers"].updated == 1
    with session_scope(engine, read_only=True) as session:
        customer = session.get(Customer, "c-1")
        assert customer is not None and customer.name == "王芳芳"
        assert (customer.email, customer.employer, customer.declared_monthly_income_minor) == (
            "c1@example.test",
            "星辰科技",
            1_200_000,
        )
    # A blank cell in a column the file has clears the field.
    cleared = {"customers.csv": "id,name,employer\nc-1,王芳芳,\n"}
    import_ledger_dir(engine, write_folder(tmp_path / "cleared", cleared), today=TODAY)
    with session_scope(engine, read_only=True) as session:
        customer = session.get(Customer, "c-1")
        assert customer is not None and customer.employer is None and customer.email == "c1@example.test"


def test_rows_may_reference_what_the_ledger_already_has(engine: Engine, tmp_path: Path) -> None:
    import_base(engine, tmp_path)
    only_bills = {
        "bills.csv": "account_id,due_date,amount_due_minor,paid_minor,paid_at,days_past_due\n"
        "a-1,2025-06-10,45000,45000,2025-06-10T01:00:00Z,\n"
    }
    summary = import_ledger_dir(engine, write_folder(tmp_path / "more", only_bills), today=TODAY)
    assert summary.tables["bills"].inserted == 1


# --------------------------------------------------------------------------------------------
# Errors: file, row, field


ERROR_CASES = [
    (
        "bills.csv",
        3,
        "due_date",
        "2025-02-30",
        "bills.csv row 3, field due_date: not a date (expected YYYY-MM-DD)",
    ),
    (
        "bills.csv",
        2,
        "account_id",
        "acct-404",
        "bills.csv row 2, field account_id: unknown credit account 'acct-404' "
        "(not in credit_accounts.csv and not in the ledger)",
    ),
    (
        "bills.csv",
        4,
        "amount_due_minor",
        "450.00",
        "bills.csv row 4, field amount_due_minor: not a whole number of fen",
    ),
    ("bills.csv", 2, "paid_minor", "-5", "bills.csv row 2, field paid_minor: must not be negative"),
    (
        "bills.csv",
        2,
        "paid_at",
        "2025-03-10T08:00:00",
        "bills.csv row 2, field paid_at: a date-time without a time zone",
    ),
    (
        "bills.csv",
        3,
        "paid_at",
        "",
        "bills.csv row 3, field days_past_due: blank, and cannot be computed without paid_at",
    ),
    ("bills.csv", 2, "amount_due_minor", "", "bills.csv row 2, field amount_due_minor: required but blank"),
    ("customers.csv", 2, "locale", "fr", "customers.csv row 2, field locale: not a supported locale"),
    ("customers.csv", 3, "id", "c-1", "customers.csv row 3, field id: duplicate id 'c-1' (also on row 2)"),
    ("customers.csv", 2, "email", "not-an-email", "customers.csv row 2, field email: not an email address"),
    ("customers.csv", 2, "id", "c 1", "customers.csv row 2, field id: not a valid id"),
    (
        "credit_accounts.csv",
        3,
        "status",
        "PAUSED",
        "credit_accounts.csv row 3, field status: not one of ACTIVE, FROZEN, REDUCED, CLOSED",
    ),
    (
        "credit_accounts.csv",
        2,
        "customer_id",
        "c-404",
        "credit_accounts.csv row 2, field customer_id: unknown customer 'c-404'",
    ),
    (
        "credit_accounts.csv",
        2,
        "original_limit_minor",
        "99999999999",
        "credit_accounts.csv row 2, field original_limit_minor: too large",
    ),
    (
        "limit_events.csv",
        3,
        "to_limit_minor",
        "2000000",
        "limit_events.csv row 3, field to_limit_minor: a REDUCE",
    ),
    (
        "limit_events.csv",
        2,
        "kind",
        "PAUSE",
        "limit_events.csv row 2, field kind: not one of FREEZE, REDUCE, RESTORE",
    ),
    (
        "limit_events.csv",
        2,
        "reason",
        "late repayment",
        "limit_events.csv row 2, field reason: not a reason code",
    ),
    (
        "loan_applications.csv",
        4,
        "small_loan",
        "maybe",
        "loan_applications.csv row 4, field small_loan: not true or false",
    ),
    (
        "loan_applications.csv",
        2,
        "customer_id",
        "c-404",
        "loan_applications.csv row 2, field customer_id: unknown customer 'c-404'",
    ),
    (
        "customer_attributes.csv",
        3,
        "customer_id",
        "c-404",
        "customer_attributes.csv row 3, field customer_id: unknown customer 'c-404' "
        "(not in customers.csv and not in the ledger)",
    ),
    (
        "customer_attributes.csv",
        2,
        "name",
        "6m.inquiries",
        "customer_attributes.csv row 2, field name: not a field name (a letter or '_', then",
    ),
    (
        "customer_attributes.csv",
        2,
        "name",
        "b" * 65,
        "customer_attributes.csv row 2, field name: not a field name",
    ),
    (
        "customer_attributes.csv",
        3,
        "name",
        "bureau_grade",
        "customer_attributes.csv row 3, field name: duplicate attribute 'bureau_grade' for customer "
        "'c-1' (also on row 2)",
    ),
    (
        "customer_attributes.csv",
        4,
        "value",
        "x" * 201,
        "customer_attributes.csv row 4, field value: longer than 200 characters",
    ),
    (
        "customer_attributes.csv",
        2,
        "source",
        "s" * 65,
        "customer_attributes.csv row 2, field source: longer than 64 characters",
    ),
    (
        "customer_attributes.csv",
        5,
        "updated_at",
        "2025-05-01T00:00:00",
        "customer_attributes.csv row 5, field updated_at: a date-time without a time zone",
    ),
]


@pytest.mark.parametrize(("file", "row", "column", "value", "message"), ERROR_CASES)
def test_each_error_names_file_row_and_field(
    engine: Engine, tmp_path: Path, file: str, row: int, column: str, value: str, message: str
) -> None:
    files = dict(BASE)
    files[file] = with_cell(BASE[file], row, column, value)
    with pytest.raises(LedgerImportFailed) as failed:
        import_ledger_dir(engine, write_folder(tmp_path / "in", files), today=TODAY)
    texts = [str(e) for e in failed.value.errors]
    assert any(t.startswith(message) for t in texts), texts
    if column != "id":  # a broken id also orphans the rows that name it: those are errors too
        assert len(texts) == 1, texts  # one bad cell is one error, not a cascade
    assert snapshot(engine) == {name: [snapshot_header(name)] for name in LEDGER_FILES}


def snapshot_header(name: str) -> list[str]:
    return next(iter(csv.reader(io.StringIO(BASE[name]))))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "id,customer_id,status,original_limit_minor,current_limit_minor\n",
            "credit_accounts.csv row 1, field opened_on: required column is missing",
        ),
        (
            "id,customer_id,status,original_limit_minor,current_limit_minor,opened_on,colour\n",
            "credit_accounts.csv row 1, field colour: unknown column",
        ),
        (
            "id,customer_id,status,original_limit_minor,current_limit_minor,opened_on\na-9,c-1,FROZEN,1,0\n",
            "credit_accounts.csv row 2: 5 cells, but the header has 6",
        ),
        ("", "credit_accounts.csv: empty file"),
    ],
)
def test_file_shape_errors(engine: Engine, tmp_path: Path, text: str, message: str) -> None:
    folder = write_folder(tmp_path / "in", {"credit_accounts.csv": text})
    with pytest.raises(LedgerImportFailed) as failed:
        import_ledger_dir(engine, folder, today=TODAY)
    assert any(str(e).startswith(message) for e in failed.value.errors), failed.value.errors


def test_not_utf8_is_named(engine: Engine) -> None:
    data = "id,name\nc-9,张三\n".encode("gb18030")
    with pytest.raises(LedgerImportFailed) as failed, session_scope(engine) as session:
        import_ledger_files(session, {"customers.csv": data}, today=TODAY)
    assert str(failed.value.errors[0]).startswith("customers.csv: not UTF-8 text")


def test_unknown_file_name_and_empty_folder(engine: Engine, tmp_path: Path) -> None:
    with pytest.raises(LedgerImportFailed) as failed, session_scope(engine) as session:
        import_ledger_files(session, {"bill.csv": b"x\n"}, today=TODAY)
    assert str(failed.value.errors[0]).startswith("bill.csv: not a ledger file")
    with pytest.raises(LedgerImportFailed, match="no ledger files"):
        read_ledger_dir(write_folder(tmp_path / "empty", {"notes.txt": "hello"}))


def test_all_errors_are_reported_together(engine: Engine, tmp_path: Path) -> None:
    files = dict(BASE)
    files["customers.csv"] = with_cell(BASE["customers.csv"], 2, "locale", "fr")
    files["bills.csv"] = with_cell(
        with_cell(BASE["bills.csv"], 2, "due_date", "10/03/2025"), 6, "account_id", "x-1"
    )
    files["loan_applications.csv"] = with_cell(BASE["loan_applications.csv"], 2, "amount_minor", "abc")
    with pytest.raises(LedgerImportFailed) as failed:
        import_ledger_dir(engine, write_folder(tmp_path / "in", files), today=TODAY)
    assert [(e.file, e.row, e.field) for e in failed.value.errors] == [
        ("customers.csv", 2, "locale"),
        ("bills.csv", 2, "due_date"),
        ("bills.csv", 6, "account_id"),
        ("loan_applications.csv", 2, "amount_minor"),
    ]


def test_a_bad_row_imports_nothing_at_all(engine: Engine, tmp_path: Path) -> None:
    import_base(engine, tmp_path)
    before = snapshot(engine)
    files = {
        "customers.csv": BASE["customers.csv"] + "c-3,New Person,en,,,,,\n",
        "credit_accounts.csv": BASE["credit_accounts.csv"] + "a-3,c-3,FROZEN,CNY,500000,0,2024-01-01\n",
        "bills.csv": with_cell(BASE["bills.csv"], 2, "amount_due_minor", "12x")
        + "a-3,2025-05-01,1000,1000,2025-05-01T00:00:00Z,\n",
    }
    files["customers.csv"] = with_cell(files["customers.csv"], 2, "name", "Renamed")

    with pytest.raises(LedgerImportFailed) as failed:
        import_ledger_dir(engine, write_folder(tmp_path / "bad", files), today=TODAY)

    assert [str(e) for e in failed.value.errors] == [
        "bills.csv row 2, field amount_due_minor: not a whole number"
    ]
    assert snapshot(engine) == before  # no new customer, no rename, no bill


def test_limit_events_are_history(engine: Engine, tmp_path: Path) -> None:
    import_base(engine, tmp_path)
    rewritten = {"limit_events.csv": with_cell(BASE["limit_events.csv"], 2, "reason", "fraud_check")}
    with pytest.raises(LedgerImportFailed) as failed:
        import_ledger_dir(engine, write_folder(tmp_path / "again", rewritten), today=TODAY)
    assert str(failed.value.errors[0]).startswith(
        "limit_events.csv row 2, field created_at: the ledger already"
    )


def test_an_account_cannot_move_to_another_customer(engine: Engine, tmp_path: Path) -> None:
    import_base(engine, tmp_path)
    moved = {"credit_accounts.csv": with_cell(BASE["credit_accounts.csv"], 2, "customer_id", "c-2")}
    with pytest.raises(LedgerImportFailed) as failed:
        import_ledger_dir(engine, write_folder(tmp_path / "again", moved), today=TODAY)
    assert str(failed.value.errors[0]).startswith(
        "credit_accounts.csv row 2, field customer_id: account a-1 belongs to customer c-1"
    )


def test_one_limit_event_per_appeal(engine: Engine, tmp_path: Path) -> None:
    text = BASE["limit_events.csv"] + (
        "a-1,RESTORE,0,800000,appeal_approved,appeal,2025-06-01T00:00:00Z,ap-1\n"
        "a-2,RESTORE,300000,1000000,appeal_approved,appeal,2025-06-02T00:00:00Z,ap-1\n"
    )
    files = {**BASE, "limit_events.csv": text}
    with pytest.raises(LedgerImportFailed) as failed:
        import_ledger_dir(engine, write_folder(tmp_path / "in", files), today=TODAY)
    assert [str(e) for e in failed.value.errors] == [
        "limit_events.csv row 5, field appeal_id: appeal ap-1 also on row 4: one limit event per appeal"
    ]


# --------------------------------------------------------------------------------------------
# Export


def test_export_import_round_trip(engine: Engine, tmp_path: Path) -> None:
    with session_scope(engine) as session:
        seed_demo_ledger(session, TODAY)
        seed_population(session, 24, 7, today=TODAY)
    import_ledger_dir(engine, write_folder(tmp_path / "base", BASE), today=TODAY)
    with session_scope(engine) as session:
        session.add(
            LimitEvent(
                account_id="a-1",
                kind="RESTORE",  # type: ignore[arg-type]
                from_limit_minor=0,
                to_limit_minor=800_000,
                reason="appeal_approved",
                source="appeal",
                appeal_id="0b6f1c2e-aaaa-bbbb-cccc-000000000001",
            )
        )
    with engine.connect() as connection:
        counts = export_ledger(connection, tmp_path / "out")
    assert counts["customers"] == 4 + 24 + 2

    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    create_all_at_head(fresh)
    try:
        summary = import_ledger_dir(fresh, tmp_path / "out", today=TODAY)
        assert {t: c.inserted for t, c in summary.tables.items()} == counts
        with fresh.connect() as connection:
            export_ledger(connection, tmp_path / "again")
    finally:
        fresh.dispose()
    for name in LEDGER_FILES:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name

    # ... and the export imported back into where it came from changes nothing.
    again = import_ledger_dir(engine, tmp_path / "out", today=TODAY)
    assert {t: c.unchanged for t, c in again.tables.items()} == counts


def test_the_export_is_spreadsheet_safe_and_round_trips(engine: Engine, tmp_path: Path) -> None:
    """Issue 13: text cells starting with =, +, -, @ (a formula in a spreadsheet) are written with
    a leading apostrophe, shown as text; importing the export gives back exactly the same."""
    hostile = {
        "c-1": ('=HYPERLINK("http://x.test","Click")', "+86 13800000000", "@SUM(A1:A9)"),
        "c-2": ("-2+3", "'=starts with an apostrophe", "'plain, with an apostrophe"),
    }
    with session_scope(engine) as session:
        for customer_id, (name, phone, employer) in hostile.items():
            session.add(Customer(id=customer_id, name=name, locale="en", phone=phone, employer=employer))
    with engine.connect() as connection:
        export_ledger(connection, tmp_path / "out")
    exported = list(csv.reader(io.StringIO((tmp_path / "out" / "customers.csv").read_text())))
    header, cells = exported[0], {row[0]: row for row in exported[1:]}
    at = {column: header.index(column) for column in ("name", "phone", "employer")}
    assert cells["c-1"][at["name"]] == '\'=HYPERLINK("http://x.test","Click")'
    assert cells["c-1"][at["phone"]] == "'+86 13800000000"
    assert cells["c-1"][at["employer"]] == "'@SUM(A1:A9)"
    assert cells["c-2"][at["name"]] == "'-2+3"
    assert cells["c-2"][at["phone"]] == "''=starts with an apostrophe"
    assert cells["c-2"][at["employer"]] == "'plain, with an apostrophe"  # nothing a spreadsheet would run
    for row in exported[1:]:
        assert all(not cell or cell[0] not in "=+-@" for cell in row), row
    # Imported elsewhere, every value is what it was.
    fresh = make_engine(f"sqlite:///{tmp_path / 'fresh.db'}")
    create_all_at_head(fresh)
    try:
        import_ledger_dir(fresh, tmp_path / "out", today=TODAY)
        with session_scope(fresh) as session:
            back = {c.id: (c.name, c.phone, c.employer) for c in session.exec(select(Customer)).all()}
    finally:
        fresh.dispose()
    assert back == hostile
