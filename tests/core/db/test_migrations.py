"""Schema migrations (core/db/migrate.py, core/db/migrations/) on SQLite and PostgreSQL: from an
empty database and from the first revision to head, down to base and up again, the models and
the migrations in agreement, and the adoption of a database made by create_all before them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from subprocess import PIPE, STDOUT
from typing import Any

import pytest
from sqlalchemy import Column, Index, Integer, MetaData, String, Table, inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import core.db.migrate as migrate
from core.db import make_engine
from core.db.migrate import (
    FIRST_REVISION,
    SchemaNotAdoptable,
    SchemaNotCurrent,
    create_all_at_head,
    current_revision,
    downgrade,
    head_revision,
    require_head,
    schema_diff,
    script_directory,
    upgrade,
)
from core.status import AppealStatus
from tests.conftest import _drop_schema, _postgres_engine
from tests.eventually import patience

ROOT = Path(__file__).resolve().parents[3]

APP_TABLES = set(SQLModel.metadata.tables)


def _fresh(kind: str, tmp_path: Path, name: str = "appeals.db") -> tuple[Engine, str | None]:
    if kind == "sqlite":
        return make_engine(f"sqlite:///{tmp_path / name}"), None
    return _postgres_engine()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database (no tables at all), on each of the two."""
    engine, schema = _fresh(request.param, tmp_path)
    yield engine
    if schema is None:
        engine.dispose()
    else:
        _drop_schema(engine, schema)


@pytest.fixture
def postgresql_empty() -> Iterator[Engine]:
    engine, schema = _postgres_engine()
    yield engine
    _drop_schema(engine, schema)


def _diff(engine: Engine, metadata: MetaData = SQLModel.metadata) -> list[Any]:
    with engine.connect() as connection:
        return schema_diff(connection, metadata)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def _enum_types(engine: Engine) -> dict[str, list[str]]:
    """PostgreSQL's enum types in the engine's schema, with their labels in order."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
                "JOIN pg_namespace n ON n.oid = t.typnamespace WHERE n.nspname = current_schema() "
                "ORDER BY t.typname, e.enumsortorder"
            )
        ).all()
    types: dict[str, list[str]] = {}
    for name, label in rows:
        types.setdefault(name, []).append(label)
    return types


def _structure(engine: Engine) -> dict[str, Any]:
    """The schema as the database reports it, including what autogenerate cannot compare
    (expression and partial indexes, enum labels)."""
    inspector = inspect(engine)
    tables: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) & APP_TABLES):
        tables[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"])
                for c in sorted(inspector.get_columns(table), key=lambda c: c["name"])
            ],
            "pk": inspector.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"], tuple(f["referred_columns"]))
                for f in inspector.get_foreign_keys(table)
            ),
            "unique": sorted(
                (u["name"] or "", tuple(u["column_names"])) for u in inspector.get_unique_constraints(table)
            ),
            "indexes": sorted(
                (
                    i["name"] or "",
                    tuple(str(c) for c in i["column_names"]),
                    tuple(str(e) for e in i.get("expressions") or ()),
                    bool(i["unique"]),
                    tuple(sorted((k, str(v)) for k, v in (i.get("dialect_options") or {}).items())),
                )
                for i in inspector.get_indexes(table)
            ),
        }
    return {"tables": tables, "enums": _enum_types(engine)}


# --- upgrade ---------------------------------------------------------------------------------


def test_upgrade_from_empty_to_head(empty: Engine) -> None:
    assert current_revision(empty) is None
    assert upgrade(empty) is None  # nothing to adopt in an empty database
    assert current_revision(empty) == head_revision()
    assert _tables(empty) >= APP_TABLES | {"alembic_version"}
    assert _diff(empty) == []
    upgrade(empty)  # again: nothing to do
    assert current_revision(empty) == head_revision()


def test_migrated_schema_equals_create_all(empty: Engine, tmp_path: Path) -> None:
    """What autogenerate skips compared too: the expression index claim-next reads
    (ix_review_task_urgent), the partial unique index of open appeals, and on PostgreSQL every
    enum type with its labels in order."""
    reference, schema = _fresh(empty.dialect.name, tmp_path, "reference.db")
    try:
        create_all_at_head(reference)
        upgrade(empty)
        migrated, made = _structure(empty), _structure(reference)
        assert set(migrated["tables"]) == APP_TABLES
        for table, described in migrated["tables"].items():
            assert described == made["tables"][table], table
        assert migrated["enums"] == made["enums"]
        urgent = next(
            i for i in inspect(empty).get_indexes("review_task") if i["name"] == "ix_review_task_urgent"
        )
        assert "priority" in str(urgent.get("expressions") or urgent["column_names"])
        open_appeal = next(
            i for i in inspect(empty).get_indexes("appeal") if i["name"] == "uq_appeal_open_account"
        )
        assert open_appeal["unique"]
        if empty.dialect.name == "postgresql":
            assert "is_open" in str(open_appeal["dialect_options"]["postgresql_where"])
            assert "LIMIT_APPLY_FAILED" in migrated["enums"]["appealstatus"]
    finally:
        if schema is None:
            reference.dispose()
        else:
            _drop_schema(reference, schema)


def test_upgrade_from_the_first_revision_step_by_step_keeps_the_data(empty: Engine) -> None:
    """Each revision after the first applied on its own, on a database holding a row written at
    the first revision (trivial while the first is the head; it keeps checking every revision
    added later)."""
    upgrade(empty, FIRST_REVISION)
    assert current_revision(empty) == FIRST_REVISION
    with empty.begin() as connection:
        connection.execute(
            text("INSERT INTO customer (id, name, locale, created_at) VALUES ('c-1', 'x', 'en', :at)"),
            {"at": datetime(2026, 1, 2, tzinfo=UTC)},
        )
    later = [
        script.revision
        for script in reversed(list(script_directory().walk_revisions()))
        if script.revision != FIRST_REVISION
    ]
    for revision in later:
        upgrade(empty, revision)
        assert current_revision(empty) == revision
    assert current_revision(empty) == head_revision()
    assert _diff(empty) == []
    with empty.connect() as connection:
        assert connection.execute(text("SELECT id FROM customer")).scalars().all() == ["c-1"]


def test_two_upgrades_at_once_take_turns(empty: Engine) -> None:
    """Replicas that each run `appeals db upgrade` on start: one migrates, the other waits for it
    and finds nothing left to do (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE)."""
    url = empty.url.render_as_string(hide_password=False)
    if empty.dialect.name == "postgresql":
        schema = empty.dialect.default_schema_name or inspect(empty).default_schema_name
        url += f"?options=-csearch_path%3D{schema}"
    env = {**os.environ, "APPEALS_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "launcher.cli", "db", "upgrade"]
    runs = [
        subprocess.Popen(command, env=env, cwd=ROOT, stdout=PIPE, stderr=STDOUT, text=True) for _ in range(2)
    ]
    outputs = [run.communicate(timeout=patience(120))[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    ran = [output.count("Running upgrade") for output in outputs]
    assert sorted(ran) == [0, len(list(script_directory().walk_revisions()))], outputs
    assert current_revision(empty) == head_revision()
    assert _diff(empty) == []


def test_one_line_of_revisions_from_the_first() -> None:
    """One head (two branches each adding a revision must be merged), rooted at FIRST_REVISION."""
    script = script_directory()
    assert script.get_heads() == [head_revision()]
    assert script.get_bases() == [FIRST_REVISION]


def test_downgrade_to_base_and_up_again(empty: Engine) -> None:
    upgrade(empty)
    downgrade(empty, "base")
    assert current_revision(empty) is None
    assert _tables(empty) & APP_TABLES == set()
    assert _enum_types(empty) == {}  # PostgreSQL's types go with the tables
    upgrade(empty)
    assert current_revision(empty) == head_revision()
    assert _diff(empty) == []


# --- models and migrations agree ---------------------------------------------------------------


def test_models_and_migrations_agree(empty: Engine) -> None:
    """What CI checks: after upgrade, autogenerate (types compared) finds nothing to write."""
    upgrade(empty)
    assert _diff(empty) == []


def _copy_of_models() -> MetaData:
    copy = MetaData()
    for table in SQLModel.metadata.sorted_tables:
        table.to_metadata(copy)
    return copy


def test_a_model_change_without_a_migration_is_found(empty: Engine) -> None:
    """The agreement check is not vacuous: a column, a type, an index or a table added to the
    models without a migration each show up."""
    upgrade(empty)
    models = _copy_of_models()
    models.tables["appeal"].append_column(Column("throwaway", Integer, nullable=True))
    diffs = _diff(empty, models)
    assert [d[0] for d in diffs] == ["add_column"]
    assert diffs[0][2:4] == ("appeal", models.tables["appeal"].c.throwaway)

    models = _copy_of_models()
    models.tables["appeal"].c.workflow_id.type = String(81)  # 80 in the database
    diffs = _diff(empty, models)
    assert len(diffs) == 1 and diffs[0][0][0] == "modify_type", diffs
    assert diffs[0][0][2:4] == ("appeal", "workflow_id")

    models = _copy_of_models()
    Index("ix_throwaway", models.tables["customer"].c.locale)
    assert [d[0] for d in _diff(empty, models)] == ["add_index"]

    models = _copy_of_models()
    Table("throwaway", models, Column("id", Integer, primary_key=True))
    assert [d[0] for d in _diff(empty, models)] == ["add_table"]


# --- the API and worker check, never migrate -----------------------------------------------------


def test_require_head_refuses_an_unmigrated_database(empty: Engine) -> None:
    with pytest.raises(SchemaNotCurrent, match=r"at revision none.*appeals db upgrade"):
        require_head(empty)
    upgrade(empty)
    require_head(empty)


def test_require_head_names_a_revision_from_a_newer_release(empty: Engine) -> None:
    """Code rolled back under a database a newer release migrated: not `run upgrade`, which
    cannot help, but what happened."""
    upgrade(empty)
    with empty.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    with pytest.raises(SchemaNotCurrent, match=r"at revision 9999, which this code does not know"):
        require_head(empty)


def test_create_all_at_head_is_for_empty_databases_only(empty: Engine) -> None:
    SQLModel.metadata.create_all(empty)  # tables, no recorded revision
    with pytest.raises(SchemaNotAdoptable):
        create_all_at_head(empty)


# --- adopting a database made before migrations --------------------------------------------------


def test_a_create_all_database_is_adopted_at_the_first_revision(
    empty: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every database made before migrations (create_all at start) holds data: it is recorded
    at the first revision, not migrated from scratch, and keeps its rows."""
    SQLModel.metadata.create_all(empty)
    with empty.begin() as connection:
        connection.execute(
            text("INSERT INTO customer (id, name, locale, created_at) VALUES ('c-1', 'x', 'en', :at)"),
            {"at": datetime(2026, 1, 2, tzinfo=UTC)},
        )
    assert current_revision(empty) is None
    # The names this upgrade could give its scratch schema (another run on the same server may
    # have one of its own at this moment, so the check below looks for this run's only).
    drawn: list[str] = []
    real_uuid4 = uuid.uuid4

    def recorded_uuid4() -> uuid.UUID:
        value = real_uuid4()
        drawn.append(f"alembic_reference_{value.hex[:12]}")
        return value

    monkeypatch.setattr(uuid, "uuid4", recorded_uuid4)
    assert upgrade(empty) == FIRST_REVISION
    monkeypatch.undo()
    assert current_revision(empty) == head_revision()
    assert _diff(empty) == []
    with empty.connect() as connection:
        assert connection.execute(text("SELECT id FROM customer")).scalars().all() == ["c-1"]
    assert upgrade(empty) is None  # recorded now: nothing to adopt the second time
    if empty.dialect.name == "postgresql":
        assert drawn
        with empty.connect() as connection:
            leftovers = connection.execute(
                text("SELECT nspname FROM pg_namespace WHERE nspname = ANY(:names)"), {"names": drawn}
            ).all()
        assert leftovers == []  # the scratch schema the first revision was built in is gone


def test_a_database_that_differs_from_the_first_revision_is_refused(empty: Engine) -> None:
    """A schema Alembic does not know (here: older, a column and an index short) is not
    stamped: the command fails, names the differences, and changes nothing."""
    SQLModel.metadata.create_all(empty)
    with empty.begin() as connection:
        connection.execute(text('ALTER TABLE notification DROP COLUMN "attempts"'))
        connection.execute(text("DROP INDEX ix_notification_appeal"))
    with pytest.raises(SchemaNotAdoptable) as refused:
        upgrade(empty)
    message = str(refused.value)
    assert "attempts" in message and "ix_notification_appeal" in message
    assert "appeals db stamp" in message
    assert current_revision(empty) is None
    assert "attempts" not in {c["name"] for c in inspect(empty).get_columns("notification")}


def test_a_postgresql_enum_short_of_a_value_is_refused(postgresql_empty: Engine) -> None:
    """Alembic's comparison leaves enum values out; adoption checks them, since a database whose
    appealstatus lacks LIMIT_APPLY_FAILED would fail the first appeal that reaches it."""
    engine = postgresql_empty
    SQLModel.metadata.create_all(engine)
    old = ", ".join(f"'{s.value}'" for s in AppealStatus if s is not AppealStatus.LIMIT_APPLY_FAILED)
    with engine.begin() as connection:
        columns = [("appeal", "status"), ("appeal_event", "from_status"), ("appeal_event", "to_status")]
        for table, column in columns:
            connection.execute(text(f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE text'))
        connection.execute(text("DROP TYPE appealstatus"))
        connection.execute(text(f"CREATE TYPE appealstatus AS ENUM ({old})"))
        for table, column in columns:
            connection.execute(
                text(
                    f'ALTER TABLE {table} ALTER COLUMN "{column}" '
                    f'TYPE appealstatus USING "{column}"::appealstatus'
                )
            )
    with pytest.raises(
        SchemaNotAdoptable, match=r"missing_enum_values', 'appealstatus', \['LIMIT_APPLY_FAILED'\]"
    ):
        upgrade(engine)
    assert current_revision(engine) is None


ACCOUNT = (
    "INSERT INTO credit_account (id, customer_id, status, currency, original_limit_minor, "
    "current_limit_minor, opened_on) VALUES ('{id}', '{customer}', 'ACTIVE', 'CNY', 1, 1, '2026-01-01')"
)


def test_a_sqlite_migration_that_breaks_foreign_keys_is_rolled_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLite migrates with foreign keys off (batch mode drops and recreates tables); a revision
    that leaves a row pointing nowhere fails before commit and changes nothing, while a row that
    was broken before (written with the keys off) does not stop a later upgrade."""
    copy = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / "0002_orphans.py").write_text(
        f"from alembic import op\n\nrevision = '0002'\ndown_revision = '{head_revision()}'\n"
        "branch_labels = None\ndepends_on = None\n\n\n"
        "def upgrade() -> None:\n    op.execute(\"DELETE FROM customer WHERE id = 'c-1'\")\n\n\n"
        "def downgrade() -> None:\n    pass\n"
    )
    engine = make_engine(f"sqlite:///{tmp_path / 'appeals.db'}")
    try:
        upgrade(engine)  # to the real head, before the copy is used
        at = datetime(2026, 1, 2, tzinfo=UTC)
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO customer (id, name, locale, created_at) VALUES ('c-1', 'x', 'en', :at)"),
                {"at": at},
            )
            connection.execute(text(ACCOUNT.format(id="a-1", customer="c-1")))
        monkeypatch.setattr(migrate, "MIGRATIONS_DIR", copy)
        script_directory.cache_clear()
        with pytest.raises(RuntimeError, match=r"foreign keys broken by the migration.*credit_account"):
            upgrade(engine)
        assert current_revision(engine) == FIRST_REVISION
        with engine.connect() as connection:
            assert connection.execute(text("SELECT id FROM customer")).scalars().all() == ["c-1"]
        # Now the account goes, and an orphan written with the keys off stays from before.
        with engine.begin() as connection:
            connection.execute(text("DELETE FROM credit_account"))
        with engine.connect() as connection:
            driver = connection.connection.driver_connection
            assert driver is not None
            driver.execute("PRAGMA foreign_keys=OFF")
            driver.execute(ACCOUNT.format(id="a-2", customer="ghost"))
            driver.execute("PRAGMA foreign_keys=ON")
        upgrade(engine)
        assert current_revision(engine) == "0002"
    finally:
        script_directory.cache_clear()
        engine.dispose()
