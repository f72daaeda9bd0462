"""Verification of stored objects on the real S3 server and both databases: every bad file
gets its own reason, good statements leave their transactions for the checks."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.appeals.service import NewAppeal, create_appeal
from core.db import session_scope
from core.db.case_tables import ChecklistItem, Document, DocumentState, StatementTransaction
from core.documents.checklist import checklist, prepare_checklist
from core.documents.verification import VerificationOutcome, verify_document
from core.policy.loader import load_default_policy
from core.settings import Settings
from core.storage import make_s3_client
from tests.core.documents.factories import (
    bomb_pdf,
    csv_statement_en,
    csv_statement_zh,
    elf_executable,
    pdf_statement,
    rows_covering,
    tampered_pdf,
    with_wrong_balance,
)
from tests.documents import text_pdf
from tests.factories import make_customer

# A fixed day (a month end): verification judges coverage on the day it is given.
NOW = datetime(2027, 1, 31, 10, tzinfo=UTC)
TODAY = NOW.date()


def _rows(months: int = 3, seed: int = 7, chinese: bool = False) -> list[Any]:
    return rows_covering(TODAY, months, seed=seed, chinese=chinese)


class Case:
    """One appeal with its checklist, and a way to store and verify files for it."""

    def __init__(self, engine: Engine, settings: Settings, s3: Any, customer: Any = None) -> None:
        self.engine, self.settings, self.s3 = engine, settings, s3
        self.customer = customer or make_customer(engine, days_past_due=(0,) * 12, today=TODAY)
        with session_scope(engine) as session:
            appeal, _ = create_appeal(
                session, NewAppeal(self.customer.customer_id, self.customer.account_id, 500_000)
            )
            prepare_checklist(session, appeal, load_default_policy(), TODAY)
        self.appeal_id = appeal.id

    def verify(self, body: bytes, content_type: str, doc_type: str = "BANK_STATEMENT") -> VerificationOutcome:
        document_id = str(uuid.uuid4())
        key = f"appeals/{self.appeal_id}/{document_id}"
        self.s3.put_object(Bucket=self.settings.s3_bucket, Key=key, Body=body, ContentType=content_type)
        with session_scope(self.engine) as session:
            session.add(
                Document(
                    id=document_id,
                    appeal_id=self.appeal_id,
                    customer_id=self.customer.customer_id,
                    doc_type=doc_type,
                    s3_key=key,
                    filename="f",
                    declared_content_type=content_type,
                )
            )
        return verify_document(
            self.engine,
            self.s3,
            self.settings,
            appeal_id=self.appeal_id,
            document_id=document_id,
            today=TODAY,
        )

    def document(self, document_id: str) -> Document:
        with session_scope(self.engine, read_only=True) as session:
            document = session.get(Document, document_id)
            assert document is not None
            return document

    def transactions(self) -> list[StatementTransaction]:
        with session_scope(self.engine, read_only=True) as session:
            return list(
                session.exec(
                    select(StatementTransaction).where(StatementTransaction.appeal_id == self.appeal_id)
                )
            )


@pytest.fixture
def case(engine: Engine, settings: Settings) -> Case:
    return Case(engine, settings, make_s3_client(settings))


def _flags(case: Case, outcome: VerificationOutcome) -> set[str]:
    return {flag["code"] for flag in case.document(outcome.document_id).flags}


def test_english_csv_statement_is_accepted_and_its_transactions_stored(case: Case) -> None:
    rows = _rows()
    outcome = case.verify(csv_statement_en(rows), "text/csv")
    assert outcome.accepted and outcome.checklist_complete and outcome.missing == []
    stored = case.transactions()
    assert len(stored) == len(rows)
    assert sum(t.amount_minor for t in stored) == sum(r.amount_minor for r in rows)
    assert stored[-1].balance_minor == rows[-1].balance_minor
    document = case.document(outcome.document_id)
    assert document.sha256 and document.sniffed_type == "CSV" and document.flags == []


def test_chinese_gb18030_csv_statement_is_accepted(case: Case) -> None:
    rows = _rows(chinese=True)
    outcome = case.verify(csv_statement_zh(rows), "text/csv")
    assert outcome.accepted, outcome.rejection_reason
    assert {t.description for t in case.transactions()} >= {"工资"}


def test_text_pdf_statement_is_parsed(case: Case) -> None:
    rows = _rows()
    outcome = case.verify(pdf_statement(rows, created=NOW - timedelta(days=1)), "application/pdf")
    assert outcome.accepted, outcome.rejection_reason
    assert len(case.transactions()) == len(rows)


def test_balance_that_does_not_add_up_is_a_tamper_flag(case: Case) -> None:
    rows = with_wrong_balance(_rows(), 4, 50_000)
    outcome = case.verify(csv_statement_en(rows), "text/csv")
    assert outcome.accepted  # a reviewer decides: the flag forces manual review
    assert "STATEMENT_BALANCE_MISMATCH" in _flags(case, outcome)


def test_statement_short_of_three_months_is_refused_with_the_gap(case: Case) -> None:
    outcome = case.verify(csv_statement_en(_rows(months=1)), "text/csv")
    assert not outcome.accepted and outcome.rejection_code == "STATEMENT_PERIOD_SHORT"
    assert "3 full months" in (outcome.rejection_reason or "")
    assert outcome.missing == ["BANK_STATEMENT"]
    with session_scope(case.engine, read_only=True) as session:
        item = session.exec(select(ChecklistItem).where(ChecklistItem.appeal_id == case.appeal_id)).one()
    assert item.state == "REJECTED" and item.rejection_reason_zh
    # A replacement is accepted and ticks the item.
    assert case.verify(csv_statement_en(_rows()), "text/csv").checklist_complete


def test_tampered_pdf_is_flagged(case: Case) -> None:
    original = pdf_statement(_rows(), producer="Adobe Photoshop 25.0", created=NOW - timedelta(days=90))
    outcome = case.verify(tampered_pdf(original, modified=NOW), "application/pdf")
    flags = _flags(case, outcome)
    assert {"PDF_EDITING_TOOL", "PDF_INCREMENTAL_UPDATE"} <= flags, flags


def test_executable_renamed_pdf_is_refused(case: Case) -> None:
    outcome = case.verify(elf_executable(), "application/pdf")
    assert not outcome.accepted and outcome.rejection_code == "FILE_EXECUTABLE"
    assert case.transactions() == []


def test_oversize_object_is_refused_without_being_read(case: Case) -> None:
    big = b"%PDF-1.4\n" + b"0" * (case.settings.document_max_bytes + 1)
    outcome = case.verify(big, "application/pdf")
    assert not outcome.accepted and outcome.rejection_code == "FILE_TOO_LARGE"


def test_missing_object_is_refused(case: Case) -> None:
    document_id = str(uuid.uuid4())
    with session_scope(case.engine) as session:
        session.add(
            Document(
                id=document_id,
                appeal_id=case.appeal_id,
                customer_id=case.customer.customer_id,
                doc_type="BANK_STATEMENT",
                s3_key=f"appeals/{case.appeal_id}/{document_id}",
                filename="f",
                declared_content_type="text/csv",
            )
        )
    outcome = verify_document(
        case.engine, case.s3, case.settings, appeal_id=case.appeal_id, document_id=document_id, today=TODAY
    )
    assert outcome.rejection_code == "UPLOAD_MISSING"


def test_decompression_bomb_is_refused(case: Case) -> None:
    # The time it takes is measured in bench/documents_bench.py, not asserted here.
    outcome = case.verify(bomb_pdf(), "application/pdf")
    assert not outcome.accepted and outcome.rejection_code == "PDF_TOO_COMPLEX"


def test_same_file_from_two_customers_is_a_fraud_flag_and_resend_is_deduplicated(case: Case) -> None:
    body = csv_statement_en(_rows(seed=99))
    first = case.verify(body, "text/csv")
    assert first.accepted and _flags(case, first) == set()
    rows_before = len(case.transactions())
    # The same customer sending it again: deduplicated, no second set of transactions.
    again = case.verify(body, "text/csv")
    assert again.accepted and case.document(again.document_id).duplicate_of == first.document_id
    assert len(case.transactions()) == rows_before
    # Another customer sending the very same bytes: a red flag on their document.
    other = Case(case.engine, case.settings, case.s3)
    theirs = other.verify(body, "text/csv")
    assert "DUPLICATE_OTHER_CUSTOMER" in _flags(other, theirs)


def test_checklist_follows_policy(engine: Engine, settings: Settings) -> None:
    s3 = make_s3_client(settings)
    late = make_customer(
        engine, days_past_due=(0, 0, 45) + (0,) * 9, declared_monthly_income_minor=None, today=TODAY
    )
    case = Case(engine, settings, s3, late)
    with session_scope(engine, read_only=True) as session:
        items = checklist(session, case.appeal_id)
    assert [(i.doc_type, i.state) for i in items] == [
        ("BANK_STATEMENT", "MISSING"),
        ("INCOME_PROOF", "MISSING"),
        ("CREDIT_REPORT", "MISSING"),
    ]
    assert case.verify(text_pdf("Income certificate", now=NOW), "application/pdf", "INCOME_PROOF").accepted
    assert not case.verify(csv_statement_en(_rows()), "text/csv").checklist_complete
    assert case.verify(text_pdf(now=NOW), "application/pdf", "CREDIT_REPORT").checklist_complete
    with session_scope(engine, read_only=True) as session:
        states = {
            i.state
            for i in session.exec(select(ChecklistItem).where(ChecklistItem.appeal_id == case.appeal_id))
        }
    assert states == {DocumentState.ACCEPTED.value}
