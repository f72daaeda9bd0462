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
    yield _use_database(monkeypatch, tmp_path / "appeals.db")
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
