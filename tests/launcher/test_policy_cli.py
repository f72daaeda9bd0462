from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from core.appeals.assessment import run_assessment
from core.appeals.service import NewAppeal, create_appeal
from core.db import session_scope
from core.db.case_tables import Assessment, Document, DocumentState, StatementTransaction
from core.documents.statements import parse_csv_statement
from core.policy.loader import default_policy_path, load_default_policy
from core.settings import get_settings
from launcher.cli import app
from tests.documents import recent_statement_csv
from tests.factories import make_customer

runner = CliRunner()
TODAY = date(2028, 2, 29)  # any day: the explanation replays the stored snapshot


@pytest.fixture
def database(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("APPEALS_DATABASE_URL", str(sqlite_engine.url))
    get_settings.cache_clear()
    yield sqlite_engine
    get_settings.cache_clear()


def _assessed_appeal(engine: Engine) -> str:
    c = make_customer(engine, days_past_due=(0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0), today=TODAY)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, 600_000))
        document = Document(
            id=str(uuid.uuid4()),
            appeal_id=appeal.id,
            customer_id=c.customer_id,
            doc_type="BANK_STATEMENT",
            s3_key="k",
            filename="s.csv",
            declared_content_type="text/csv",
            state=DocumentState.ACCEPTED,
        )
        session.add(document)
        session.flush()
        for row, tx in enumerate(parse_csv_statement(recent_statement_csv(TODAY)).transactions, start=1):
            session.add(
                StatementTransaction(
                    document_id=document.id,
                    appeal_id=appeal.id,
                    customer_id=c.customer_id,
                    row=row,
                    posted_on=tx.date,
                    description=tx.description,
                    amount_minor=tx.amount_minor,
                    balance_minor=tx.balance_minor,
                    counterparty=tx.counterparty,
                )
            )
    with session_scope(engine) as session:
        run_assessment(session, appeal.id, 1, load_default_policy(), TODAY)
    return appeal.id


def test_explain_reproduces_a_stored_assessment(database: Engine) -> None:
    appeal_id = _assessed_appeal(database)
    result = runner.invoke(app, ["policy", "explain", appeal_id])
    assert result.exit_code == 0, result.output
    with session_scope(database, read_only=True) as session:
        stored = session.exec(select(Assessment).where(Assessment.appeal_id == appeal_id)).one()
    assert f"Score: {stored.score} " in result.output
    assert "Reproduced exactly" in result.output
    assert "net_monthly_income_minor" in result.output


def test_explain_refuses_a_tampered_snapshot(database: Engine) -> None:
    appeal_id = _assessed_appeal(database)
    with session_scope(database) as session:
        stored = session.exec(select(Assessment).where(Assessment.appeal_id == appeal_id)).one()
        result = dict(stored.result)
        result["score"] = result["score"] + 1
        stored.result = result
        session.add(stored)
    outcome = runner.invoke(app, ["policy", "explain", appeal_id])
    assert outcome.exit_code == 2 and "score" in outcome.output


def test_policy_check(tmp_path: Path) -> None:
    ok = runner.invoke(app, ["policy", "check", str(default_policy_path())])
    assert ok.exit_code == 0 and "limit-restore-v1" in ok.output
    broken = tmp_path / "broken.toml"
    broken.write_text(
        default_policy_path().read_text().replace("auto_approve_min = 340", "auto_approve_min = 9999")
    )
    bad = runner.invoke(app, ["policy", "check", str(broken)])
    assert bad.exit_code == 1 and "cutoffs.auto_approve_min" in bad.output


def test_policy_check_says_what_appeals_still_need(tmp_path: Path) -> None:
    card = tmp_path / "card.toml"
    card.write_text(
        'id = "card"\n[[scorecard.characteristics]]\nname = "age"\nsource = "input:age"\n'
        'reason = "RC_AGE"\nbins = [ { upper = 30, points = -5.5 }, { lower = 30, points = 10 } ]\n'
        '[reasons.RC_AGE]\nen = "TODO: write"\nzh-CN = "TODO: write"\n'
    )
    outcome = runner.invoke(app, ["policy", "check", str(card)])
    assert outcome.exit_code == 3, outcome.output
    assert "valid scorecard (card," in outcome.output and "scores -6 to 10" in outcome.output
    for expected in (
        "cutoffs: required where the policy is deployed for appeals",
        "reasons.RC_AGE.en: placeholder",
    ):
        assert expected in outcome.output


def test_policy_features_lists_the_library() -> None:
    outcome = runner.invoke(app, ["policy", "features"])
    assert outcome.exit_code == 0
    assert "worst_dpd_12m" in outcome.output and "can be missing" in outcome.output
