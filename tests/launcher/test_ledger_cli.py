"""`appeals seed` and `appeals ledger import|export` against a SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from core.db import make_engine
from core.db.ledger_tables import Customer
from core.ledger.importer import LEDGER_FILES
from core.settings import get_settings
from launcher.cli import app

runner = CliRunner()
TODAY = "2026-03-18"


def _use_database(monkeypatch: pytest.MonkeyPatch, path: Path) -> str:
    url = f"sqlite:///{path}"
    monkeypatch.setenv("APPEALS_DATABASE_URL", url)
    get_settings.cache_clear()
    return url


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A migrated database (`appeals db upgrade`): ledger commands never migrate one."""
    url = _use_database(monkeypatch, tmp_path / "appeals.db")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield url
    get_settings.cache_clear()


def test_ledger_commands_refuse_an_unmigrated_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_database(monkeypatch, tmp_path / "appeals.db")
    try:
        for command in (["ledger", "import", str(tmp_path)], ["ledger", "export", str(tmp_path / "out")]):
            result = runner.invoke(app, command)
            assert result.exit_code == 1, command
            assert "run `appeals db upgrade`" in result.output, command
        assert not (tmp_path / "out").exists()
    finally:
        get_settings.cache_clear()


def _customers(url: str) -> list[str]:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            table = Customer.__table__  # type: ignore[attr-defined]
            return list(connection.execute(select(table.c.id).order_by(table.c.id)).scalars())
    finally:
        engine.dispose()


def test_seed_is_deterministic_and_idempotent(database: str, tmp_path: Path) -> None:
    statements = tmp_path / "statements"
    args = ["seed", "--customers", "30", "--seed", "5", "--today", TODAY, "--statements-dir", str(statements)]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "seeded 4 demo customers" in first.output
    assert (
        "generated 30 customers (seed 5, as of 2026-03-18): 30 inserted, 0 already in the ledger"
        in first.output
    )
    assert "steady" in first.output and "AUTO_APPROVE" in first.output and "e.g. g-5-" in first.output
    assert len(list(statements.glob("g-5-*-statement.csv"))) == 30
    assert (statements / "manifest.csv").read_text(encoding="utf-8").count("\n") == 31
    ids = _customers(database)
    assert ids[:4] == ["c-1001", "c-1002", "c-1003", "c-1004"]
    assert ids[4:] == [f"g-5-{n:05d}" for n in range(1, 31)]

    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert "seeded 0 demo customers" in again.output
    assert "0 inserted, 30 already in the ledger" in again.output
    assert len(_customers(database)) == 34


def test_export_and_import_round_trip(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert runner.invoke(app, ["seed", "--customers", "20", "--seed", "8", "--today", TODAY]).exit_code == 0
    exported = runner.invoke(app, ["ledger", "export", str(tmp_path / "out")])
    assert exported.exit_code == 0, exported.output
    assert "customers                 24 rows" in exported.output

    other = _use_database(monkeypatch, tmp_path / "other.db")
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    imported = runner.invoke(app, ["ledger", "import", str(tmp_path / "out")])
    assert imported.exit_code == 0, imported.output
    assert "customers                 24 rows: 24 inserted, 0 updated, 0 unchanged" in imported.output
    assert len(_customers(other)) == 24

    again = runner.invoke(app, ["ledger", "export", str(tmp_path / "again")])
    assert again.exit_code == 0, again.output
    for name in LEDGER_FILES:
        assert (tmp_path / "out" / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name


def test_import_errors_are_listed_and_nothing_is_written(database: str, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    (folder / "customers.csv").write_text("id,name,locale\nc-9,Nine,en\nc-10,Ten,fr\n", encoding="utf-8")
    (folder / "bills.csv").write_text(
        "account_id,due_date,amount_due_minor,paid_minor,paid_at,days_past_due\n"
        "acct-x,2025-01-01,100,100,2025-01-01T00:00:00Z,\n"
        "acct-x,2025-13-01,100,0,,\n",
        encoding="utf-8",
    )
    result = runner.invoke(app, ["ledger", "import", str(folder)])
    assert result.exit_code == 1, result.output
    assert "4 error(s); nothing was imported" in result.output  # row 3: bad date and unknown account
    assert "customers.csv row 3, field locale: not a supported locale (zh-CN or en)" in result.output
    assert "bills.csv row 2, field account_id: unknown credit account 'acct-x'" in result.output
    assert "bills.csv row 3, field due_date: not a date (expected YYYY-MM-DD)" in result.output
    assert _customers(database) == []


def test_import_of_a_missing_folder_and_a_bad_date(database: str, tmp_path: Path) -> None:
    missing = runner.invoke(app, ["ledger", "import", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "not a folder" in missing.output
    bad_day = runner.invoke(app, ["seed", "--customers", "1", "--today", "18/03/2026"])
    assert bad_day.exit_code == 2 and "not a date" in bad_day.output


def test_risk_events_from_a_file(database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`appeals ledger events FILE`: recorded all or nothing; with Temporal down, the limit
    actions are left to the reconciler (and said so)."""
    import json

    from sqlmodel import select as select_rows

    from core.db import session_scope
    from core.db.ledger_tables import CreditAccount, LoanApplication
    from core.db.lender_tables import RiskEvent

    monkeypatch.setenv("APPEALS_TEMPORAL_ADDRESS", "127.0.0.1:1")
    monkeypatch.setenv("APPEALS_TEMPORAL_REQUEST_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()
    assert runner.invoke(app, ["seed", "--customers", "3", "--seed", "8", "--today", TODAY]).exit_code == 0
    engine = make_engine(database)
    with session_scope(engine, read_only=True) as session:
        account = session.exec(select_rows(CreditAccount)).first()
        assert account is not None
    event = {
        "id": "evt-cli-1",
        "kind": "loan_application",
        "account_id": account.id,
        "occurred_at": "2026-03-18T02:00:00Z",
        "lender": "QuickCash",
        "amount_minor": 50_000,
        "small_loan": True,
    }
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"events": [event, {**event, "id": "evt-cli-2", "account_id": "nope"}]}))
    refused = runner.invoke(app, ["ledger", "events", str(bad)])
    assert (
        refused.exit_code == 1 and "event 1 (evt-cli-2): account_id: unknown account 'nope'" in refused.output
    )
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"events": [event]}))
    done = runner.invoke(app, ["ledger", "events", str(good)])
    assert done.exit_code == 0, done.output
    workflow_id = f"limit-action-{account.id}-evt-cli-1"
    assert f"evt-cli-1: applied -> {workflow_id} (to be started by the reconciler)" in done.output
    with session_scope(engine, read_only=True) as session:
        row = session.get(RiskEvent, "evt-cli-1")
        assert row is not None and row.action_started_at is None and row.received_from.startswith("cli:")
        assert (
            len(session.exec(select_rows(LoanApplication).where(LoanApplication.lender == "QuickCash")).all())
            == 1
        )
    again = runner.invoke(app, ["ledger", "events", str(good)])
    assert again.exit_code == 0 and "evt-cli-1: already_applied" in again.output
    engine.dispose()
