"""customer_attributes.csv, the sixth ledger file: what `input:FIELD` characteristics read.
Upsert by (customer_id, name) on re-import, one row per key and file, the value column required
but a blank value allowed, and an imported attribute in an appeal's assessment snapshot. Every
test runs on SQLite and on PostgreSQL (the `engine` fixture); the parse errors, the export round
trip and all-or-nothing are in test_importer.py with the other files."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.appeals.assessment import build_input, run_assessment
from core.appeals.service import NewAppeal, create_appeal
from core.db import session_scope
from core.db.ledger_tables import CustomerAttribute
from core.db.types import utcnow
from core.ledger.importer import LedgerImportFailed, import_ledger_dir, import_ledger_files
from core.policy.loader import load_policy_bytes
from tests.core.ledger.test_importer import BASE, TODAY, import_base, write_folder
from tests.factories import make_customer
from tests.policy_files import INPUT_FIELD, with_bureau_grade

ATTRIBUTES = "customer_attributes.csv"
APPEAL_DAY = date(2028, 2, 29)


def attributes(engine: Engine) -> dict[tuple[str, str], tuple[str, str, datetime]]:
    with session_scope(engine, read_only=True) as session:
        rows = session.exec(select(CustomerAttribute)).all()
        return {(a.customer_id, a.name): (a.value, a.source, a.updated_at) for a in rows}


def test_a_reimport_upserts_by_customer_and_name(engine: Engine, tmp_path: Path) -> None:
    import_base(engine, tmp_path)
    first = attributes(engine)
    assert first[("c-1", "bureau_grade")] == ("A", "credit-bureau", datetime(2025, 5, 1, tzinfo=UTC))
    assert first[("c-1", "bureau.inquiries_6m")][:2] == ("3", "ledger-import")  # the default source
    assert first[("c-2", "bureau_grade")] == ("", "credit-bureau", datetime(2025, 5, 2, tzinfo=UTC))
    assert first[("c-2", "months_since_delinquency")][0] == "-1"

    # No source or updated_at column: the sources stay; a changed value is stamped now.
    before_import = utcnow()
    changes = {
        ATTRIBUTES: "customer_id,name,value\n"
        "c-1,bureau_grade,B\n"  # changed
        "c-1,bureau.inquiries_6m,3\n"  # unchanged
        "c-2,bureau_grade,\n"  # still missing
        "c-2,employment_verified,yes\n"  # new
    }
    summary = import_ledger_dir(engine, write_folder(tmp_path / "again", changes), today=TODAY)

    counts = summary.tables["customer_attributes"]
    assert (counts.inserted, counts.updated, counts.unchanged) == (1, 1, 2)
    after = attributes(engine)
    assert len(after) == 5  # upserted, not added: one row per (customer_id, name)
    value, source, updated_at = after[("c-1", "bureau_grade")]
    assert (value, source) == ("B", "credit-bureau") and updated_at >= before_import
    assert after[("c-1", "bureau.inquiries_6m")] == first[("c-1", "bureau.inquiries_6m")]
    assert after[("c-2", "bureau_grade")] == first[("c-2", "bureau_grade")]
    assert after[("c-2", "months_since_delinquency")] == first[("c-2", "months_since_delinquency")]
    value, source, updated_at = after[("c-2", "employment_verified")]
    assert (value, source) == ("yes", "ledger-import") and updated_at >= before_import

    # A given updated_at is the one kept, even for an unchanged value; a given blank source is
    # the default one.
    restamped = {
        ATTRIBUTES: "customer_id,name,value,source,updated_at\n"
        "c-1,bureau.inquiries_6m,3,,2025-06-01T08:00:00+08:00\n"
    }
    summary = import_ledger_dir(engine, write_folder(tmp_path / "restamped", restamped), today=TODAY)
    assert summary.tables["customer_attributes"].updated == 1
    assert attributes(engine)[("c-1", "bureau.inquiries_6m")] == (
        "3",
        "ledger-import",
        datetime(2025, 6, 1, 0, 0, tzinfo=UTC),
    )


def test_the_same_customer_and_name_twice_is_an_error_even_when_identical(
    engine: Engine, tmp_path: Path
) -> None:
    files = {**BASE, ATTRIBUTES: BASE[ATTRIBUTES] + "c-2,months_since_delinquency,-1,credit-bureau,\n"}
    with pytest.raises(LedgerImportFailed) as failed:
        import_ledger_dir(engine, write_folder(tmp_path / "in", files), today=TODAY)
    assert [str(e) for e in failed.value.errors] == [
        "customer_attributes.csv row 6, field name: duplicate attribute 'months_since_delinquency' "
        "for customer 'c-2' (also on row 5)"
    ]
    assert attributes(engine) == {}  # and nothing else was imported either


def test_the_value_column_is_required_but_a_value_may_be_blank(engine: Engine) -> None:
    with session_scope(engine) as session:
        import_ledger_files(session, {"customers.csv": BASE["customers.csv"].encode()}, today=TODAY)
    with pytest.raises(LedgerImportFailed) as failed, session_scope(engine) as session:
        import_ledger_files(session, {ATTRIBUTES: b"customer_id,name\nc-1,bureau_grade\n"}, today=TODAY)
    assert [str(e) for e in failed.value.errors] == [
        "customer_attributes.csv row 1, field value: required column is missing"
    ]
    with session_scope(engine) as session:
        import_ledger_files(
            session, {ATTRIBUTES: b"customer_id,name,value\nc-1,bureau_grade,\n"}, today=TODAY
        )
    assert attributes(engine)[("c-1", "bureau_grade")][:2] == ("", "ledger-import")


def test_an_imported_attribute_reaches_the_assessment_snapshot(engine: Engine) -> None:
    """The customer is already in the ledger: the file carries only their attributes."""
    customer = make_customer(engine, today=APPEAL_DAY)
    text = f"customer_id,name,value,source\n{customer.customer_id},{INPUT_FIELD},A,credit-bureau\n"
    text += f"{customer.customer_id},employment_verified,,credit-bureau\n"
    with session_scope(engine) as session:
        import_ledger_files(session, {ATTRIBUTES: text.encode()}, today=APPEAL_DAY)
        appeal, _ = create_appeal(session, NewAppeal(customer.customer_id, customer.account_id, 300_000))
        appeal_id = appeal.id

    with session_scope(engine, read_only=True) as session:
        fields = build_input(session, appeal_id, APPEAL_DAY).fields
    assert fields == {INPUT_FIELD: "A", "employment_verified": ""}

    policy = load_policy_bytes(with_bureau_grade().encode(), source="champion")
    with session_scope(engine) as session:
        assessment = run_assessment(session, appeal_id, 1, policy, APPEAL_DAY)
        assert assessment.inputs["fields"] == fields
        graded = next(c for c in assessment.result["contributions"] if c["characteristic"] == INPUT_FIELD)
        assert (graded["category"], graded["bin"]) == ("A", "grade A")

    # A later import changes what the next snapshot reads.
    again = f"customer_id,name,value\n{customer.customer_id},{INPUT_FIELD},B\n"
    with session_scope(engine) as session:
        import_ledger_files(session, {ATTRIBUTES: again.encode()}, today=APPEAL_DAY)
    with session_scope(engine, read_only=True) as session:
        assert build_input(session, appeal_id, APPEAL_DAY).fields[INPUT_FIELD] == "B"
