"""`appeals db upgrade|downgrade|current|stamp|revision`, and `appeals api|worker` refusing a
database that is not at the code's revision, against a SQLite file and a PostgreSQL schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import SQLModel
from typer.testing import CliRunner

import core.db.migrate as migrate
from api.app import create_app
from core.db import make_engine
from core.db.migrate import FIRST_REVISION, SchemaNotCurrent, head_revision
from core.settings import get_settings
from launcher.cli import app
from tests.conftest import PG_URL, _drop_schema, _postgres_engine, make_settings

runner = CliRunner()


def _use(monkeypatch: pytest.MonkeyPatch, url: str) -> str:
    monkeypatch.setenv("APPEALS_DATABASE_URL", url)
    get_settings.cache_clear()
    return url


@pytest.fixture
def sqlite_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    yield _use(monkeypatch, f"sqlite:///{tmp_path / 'appeals.db'}")
    get_settings.cache_clear()


def db(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["db", *args])
    return result.exit_code, result.output


def lines(*args: str) -> tuple[int, list[str]]:
    code, out = db(*args)
    return code, out.splitlines()


UP_TO_FIRST = f"Running upgrade  -> {FIRST_REVISION}, Initial schema."


def test_upgrade_current_downgrade(sqlite_url: str) -> None:
    """Each revision run is logged (what a deployment's migrate job shows), then the outcome."""
    head = head_revision()
    assert db("current") == (1, f"none (head is {head}: run `appeals db upgrade`)\n")
    code, out = lines("upgrade")
    assert code == 0
    assert out[0] == UP_TO_FIRST and out[-1] == f"database at revision {head}"
    assert db("current") == (0, f"{head} (head)\n")
    assert lines("upgrade") == (0, [f"database at revision {head}"])  # nothing to run
    code, out = lines("downgrade", "base")
    assert (code, out[-1]) == (0, "database at revision none")
    assert out[-2] == f"Running downgrade {FIRST_REVISION} -> , Initial schema."
    engine = make_engine(sqlite_url)
    try:
        with engine.connect() as connection:
            names = connection.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).scalars()
            assert set(names) & set(SQLModel.metadata.tables) == set()
    finally:
        engine.dispose()
    assert lines("upgrade", FIRST_REVISION) == (0, [UP_TO_FIRST, f"database at revision {FIRST_REVISION}"])


def test_upgrade_adopts_a_database_made_before_migrations(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    SQLModel.metadata.create_all(engine)
    engine.dispose()
    code, out = lines("upgrade")
    assert code == 0, out
    # Stamped, not migrated (the scratch build it was compared with stays out of the log).
    assert out[:2] == [
        f"Running stamp_revision  -> {FIRST_REVISION}",
        f"adopted the existing schema as revision {FIRST_REVISION}",
    ]
    assert out[-1] == f"database at revision {head_revision()}"
    assert not any(line.startswith(f"Running upgrade  -> {FIRST_REVISION}") for line in out)


def test_upgrade_refuses_an_unknown_schema_and_stamp_records_one(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    SQLModel.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_notification_appeal"))
    engine.dispose()
    code, out = db("upgrade")
    assert code == 1
    assert "ix_notification_appeal" in out and "appeals db stamp" in out
    assert db("current")[0] == 1
    # The operator brought it to the revision by hand, then records that.
    engine = make_engine(sqlite_url)
    with engine.begin() as connection:
        connection.execute(
            text("CREATE INDEX ix_notification_appeal ON notification (appeal_id, created_at, id)")
        )
    engine.dispose()
    assert lines("stamp", FIRST_REVISION)[1][-1] == f"database stamped at {FIRST_REVISION}"
    assert db("upgrade")[0] == 0
    assert db("current") == (0, f"{head_revision()} (head)\n")


def test_on_postgresql(monkeypatch: pytest.MonkeyPatch) -> None:
    engine, schema = _postgres_engine()
    try:
        _use(monkeypatch, f"{PG_URL}?options=-csearch_path%3D{schema}")
        assert db("current")[0] == 1
        code, out = lines("upgrade")
        assert (code, out[0], out[-1]) == (0, UP_TO_FIRST, f"database at revision {head_revision()}")
        assert db("current") == (0, f"{head_revision()} (head)\n")
        with engine.connect() as connection:
            assert (
                connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
                == head_revision()
            )
    finally:
        get_settings.cache_clear()
        _drop_schema(engine, schema)


def test_revision_autogenerate_writes_a_clean_file(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Against a copy of the migrations: numbered after the head, revising it, empty when the
    models and the database agree, and in the repo's style (ruff-clean)."""
    copy = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(migrate, "MIGRATIONS_DIR", copy)
    assert db("upgrade")[0] == 0
    code, out = db("revision", "-m", "nothing yet", "--autogenerate")
    assert code == 0, out
    written = copy / "versions" / f"{int(head_revision()) + 1:04d}_nothing_yet.py"
    assert out.strip().endswith(f"wrote {written}")
    source = written.read_text()
    assert f'down_revision: str | Sequence[str] | None = "{head_revision()}"' in source
    upgrade_body = source.split("def upgrade() -> None:")[1].split("def downgrade")[0]
    assert "op." not in upgrade_body and "pass" in upgrade_body
    lint = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(written)], capture_output=True, text=True
    )
    assert lint.returncode == 0, lint.stdout


def test_worker_and_api_commands_refuse_an_unmigrated_database(sqlite_url: str) -> None:
    for command in (["worker"], ["api"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 1, command
        assert "run `appeals db upgrade`" in result.output, command


async def test_the_app_refuses_to_start_on_an_unmigrated_database(tmp_path: Path) -> None:
    """Whatever starts it (uvicorn with the factory, a test), the API checks and never migrates."""
    engine = make_engine(f"sqlite:///{tmp_path / 'appeals.db'}")
    application = create_app(make_settings(tmp_path), engine=engine, s3_client=object())
    try:
        with pytest.raises(SchemaNotCurrent, match="appeals db upgrade"):
            async with application.router.lifespan_context(application):
                pass
        assert migrate.current_revision(engine) is None
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM sqlite_master")).scalar() == 0
    finally:
        engine.dispose()
