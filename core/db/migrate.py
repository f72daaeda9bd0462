"""Schema migrations (Alembic), run on an engine: upgrade, downgrade, stamp, the current and head
revisions, the check the API and worker make at start, and the adoption of a database that an
older version made with create_all (tables present, no alembic_version)."""

from __future__ import annotations

import functools
import importlib.util
import logging
import tempfile
import uuid
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.autogenerate.api import AutogenContext
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Column, MetaData, create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import NullPool
from sqlalchemy.types import TypeDecorator
from sqlmodel import SQLModel
from sqlmodel.sql.sqltypes import AutoString

import core.db.engine  # noqa: F401  (imports every table module: the full metadata)
from core.db.engine import make_engine

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# The schema as it was when migrations began: what create_all made before them, so an
# unversioned database with that schema is adopted at this revision.
FIRST_REVISION = "0001"
VERSION_TABLE = "alembic_version"
# PostgreSQL advisory lock held while migrating (env.py); any constant unused elsewhere.
MIGRATION_LOCK_KEY = 0x61707065616C73  # "appeals"

target_metadata = SQLModel.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Column types as a migration file can import them: sqlmodel's AutoString is a plain
    String (no sqlmodel import in migrations), and our own TypeDecorators (core/db/types.py)
    render with their module imported."""
    if type_ != "type":
        return False
    if isinstance(obj, AutoString):
        return f"sa.String(length={obj.length})" if obj.length else "sa.String()"
    module = type(obj).__module__
    if isinstance(obj, TypeDecorator) and module.startswith("core."):
        autogen_context.imports.add(f"import {module}")
        return f"{module}.{obj!r}"
    return False


def _expression_indexes(metadata: MetaData) -> frozenset[str]:
    return frozenset(
        str(index.name)
        for table in metadata.tables.values()
        for index in table.indexes
        if any(not isinstance(e, Column) for e in index.expressions)
    )


# Indexes on expressions (ix_review_task_urgent: `priority DESC`): Alembic cannot reflect and
# compare them on every dialect, and half-seeing them reports a change that is none. Their
# revisions write them by hand; tests/core/db/test_migrations.py compares them as reflected.
EXPRESSION_INDEXES = _expression_indexes(target_metadata)


class _KnownExpressionIndexes(logging.Filter):
    """Alembic warns that it only approximates the indexes above, then leaves them out of the
    comparison (include_object): the warning would be noise on every compare."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            message.startswith("Generating approximate signature for index")
            and any(f"Index({name!r}" in message for name in EXPRESSION_INDEXES)
        )


logging.getLogger("alembic.ddl.impl").addFilter(_KnownExpressionIndexes())
for _name in EXPRESSION_INDEXES:
    warnings.filterwarnings("ignore", message=f"autogenerate skipping .*expression-based index '{_name}'")


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return not (type_ == "index" and name in EXPRESSION_INDEXES)


# One set of options for running and for comparing, so `appeals db revision --autogenerate` and
# the models-versus-migrations test see the same differences. Batch mode: SQLite alters a table
# by copying it; on PostgreSQL batch operations are plain ALTERs, so one file serves both.
MIGRATION_OPTIONS: dict[str, Any] = {
    "target_metadata": target_metadata,
    "render_as_batch": True,
    "compare_type": True,
    "render_item": render_item,
    "include_object": include_object,
    "version_table": VERSION_TABLE,
}


class SchemaNotCurrent(RuntimeError):
    """The database is not at the code's head revision: the API and worker do not start."""


class SchemaNotAdoptable(RuntimeError):
    """Tables without an alembic_version whose schema is not the first revision's."""


def alembic_config(connection: Connection | None = None) -> Config:
    """A Config made in code: no alembic.ini, no dependence on the current directory."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    return config


@functools.cache
def script_directory() -> ScriptDirectory:
    """Read once per process: the revision files do not change under a running process."""
    return ScriptDirectory.from_config(alembic_config())


def head_revision() -> str:
    head = script_directory().get_current_head()
    if head is None:  # pragma: no cover - versions/ ships with the package
        raise RuntimeError(f"no migrations in {MIGRATIONS_DIR}")
    return head


@contextmanager
def _migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection for Alembic. On SQLite, foreign keys are off while it runs: batch mode
    recreates a table by dropping it, which with them on would delete or refuse the rows that
    reference it (env.py checks the keys before it commits). The PRAGMA goes to the driver
    directly: through SQLAlchemy it would begin a transaction, where SQLite ignores it."""
    with engine.connect() as connection:
        sqlite = engine.dialect.name == "sqlite"
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        try:
            yield connection
        finally:
            if sqlite:
                connection.rollback()
                connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")  # type: ignore[union-attr]


def current_revision(engine: Engine) -> str | None:
    with engine.execution_options(read_only=True).connect() as connection:
        return MigrationContext.configure(
            connection, opts={"version_table": VERSION_TABLE}
        ).get_current_revision()


def known_revision(revision: str) -> bool:
    try:
        return script_directory().get_revision(revision) is not None
    except CommandError:
        return False


def require_head(engine: Engine) -> None:
    """Refuses to go on unless the database is at the code's head revision: in production only
    the one-shot `appeals db upgrade` migrates, never the API and worker racing at start."""
    current, head = current_revision(engine), head_revision()
    if current is not None and not known_revision(current):
        raise SchemaNotCurrent(
            f"the database schema is at revision {current}, which this code does not know (a "
            f"newer release migrated it?); this code needs {head}: run the release that has it"
        )
    if current != head:
        raise SchemaNotCurrent(
            f"the database schema is at revision {current or 'none'}, this code needs {head}: "
            "run `appeals db upgrade` (same APPEALS_DATABASE_URL) first"
        )


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Upgrades to `revision`; an unversioned database made by create_all is first adopted
    (stamped) if its schema is the first revision's. Returns the revision it adopted, if any."""
    adopted = adopt_unversioned(engine)
    with _migration_connection(engine) as connection:
        command.upgrade(alembic_config(connection), revision)
    return adopted


def downgrade(engine: Engine, revision: str) -> None:
    with _migration_connection(engine) as connection:
        command.downgrade(alembic_config(connection), revision)


def stamp(engine: Engine, revision: str) -> None:
    """Records `revision` as the database's without running anything."""
    with _migration_connection(engine) as connection:
        command.stamp(alembic_config(connection), revision)


def new_revision(engine: Engine, message: str, *, autogenerate: bool) -> Path:
    """Writes versions/NNNN_<message>.py; with autogenerate, what the models have and the
    database (at head) lacks. Numbered in order, so two branches adding one conflict visibly."""
    script = ScriptDirectory.from_config(alembic_config())  # afresh: a file may have been added
    rev_id = f"{sum(1 for _ in script.walk_revisions()) + 1:04d}"
    with _migration_connection(engine) as connection:
        config = alembic_config(connection)
        if importlib.util.find_spec("ruff") is not None:
            # The new file in the repo's style (sorted imports, formatted), as ruff checks it.
            config.set_section_option("post_write_hooks", "hooks", "ruff_fix, ruff_format")
            for name, options in (
                ("ruff_fix", "check --fix --exit-zero REVISION_SCRIPT_FILENAME"),
                ("ruff_format", "format REVISION_SCRIPT_FILENAME"),
            ):
                config.set_section_option("post_write_hooks", f"{name}.type", "module")
                config.set_section_option("post_write_hooks", f"{name}.module", "ruff")
                config.set_section_option("post_write_hooks", f"{name}.options", options)
        made = command.revision(config, message=message, autogenerate=autogenerate, rev_id=rev_id)
    assert made is not None and not isinstance(made, list)
    return Path(made.path)


def schema_diff(connection: Connection, metadata: MetaData) -> list[Any]:
    """What differs between the database and `metadata` (Alembic's autogenerate comparison,
    types included): [] when they agree."""
    context = MigrationContext.configure(
        connection,
        opts={**MIGRATION_OPTIONS, "target_metadata": metadata},
    )
    return list(compare_metadata(context, metadata))


def has_app_tables(engine: Engine) -> bool:
    with engine.execution_options(read_only=True).connect() as connection:
        return bool(set(inspect(connection).get_table_names()) & set(target_metadata.tables))


def adopt_unversioned(engine: Engine) -> str | None:
    """A database with our tables and no recorded revision was made by create_all before
    migrations: stamped FIRST_REVISION when its schema is exactly that revision's (built afresh
    in a scratch database and compared), refused with the differences otherwise, since
    migrating a schema Alembic does not know would fail halfway or silently skip changes."""
    # Tables first, then the revision: an upgrade committing in between (tables and revision
    # appear together) is then seen as versioned, never as tables without a revision.
    if not has_app_tables(engine) or current_revision(engine) is not None:
        return None
    diffs = diff_from_revision(engine, FIRST_REVISION)
    if diffs:
        listed = "\n  ".join(str(d) for d in diffs[:20])
        raise SchemaNotAdoptable(
            f"the database has tables but no {VERSION_TABLE}, and its schema differs from revision "
            f"{FIRST_REVISION}'s in {len(diffs)} way(s):\n  {listed}\n"
            "bring it to that schema (or to a later revision's) and record it with "
            "`appeals db stamp REVISION`, or start from an empty database"
        )
    stamp(engine, FIRST_REVISION)
    return FIRST_REVISION


def diff_from_revision(engine: Engine, revision: str) -> list[Any]:
    """The differences between the database and the schema that migrating an empty database
    of the same kind to `revision` makes; on PostgreSQL also the enum values it lacks, which
    Alembic's comparison leaves out (a missing one would fail the first row that uses it)."""
    with _revision_schema(engine, revision) as (reference, enums), engine.connect() as connection:
        diffs = schema_diff(connection, reference)
        if enums:
            have = _enum_labels(connection, None)
            for name, labels in sorted(enums.items()):
                missing = sorted(labels - have.get(name, set()))
                if missing:
                    diffs.append(("missing_enum_values", name, missing))
        return diffs


def _enum_labels(connection: Connection, schema: str | None) -> dict[str, set[str]]:
    """PostgreSQL's enum types in `schema` (None: the connection's current schema) and their values."""
    rows = connection.execute(
        text(
            "SELECT t.typname, e.enumlabel FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid "
            "JOIN pg_namespace n ON n.oid = t.typnamespace "
            "WHERE n.nspname = coalesce(:schema, current_schema())"
        ),
        {"schema": schema},
    ).all()
    labels: dict[str, set[str]] = {}
    for name, label in rows:
        labels.setdefault(name, set()).add(label)
    return labels


@contextmanager
def _quiet_alembic() -> Iterator[None]:
    """The scratch build's revisions are not the database's: kept out of the migration log."""
    log = logging.getLogger("alembic.runtime.migration")
    level = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(level)


@contextmanager
def _revision_schema(engine: Engine, revision: str) -> Iterator[tuple[MetaData, dict[str, set[str]]]]:
    """`revision`'s schema, reflected from a scratch database (a temporary SQLite file, or on
    PostgreSQL a scratch schema, dropped after), with PostgreSQL's enum types and values."""
    if engine.dialect.name == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            scratch = make_engine(f"sqlite:///{Path(folder) / 'reference.db'}")
            try:
                with _migration_connection(scratch) as connection, _quiet_alembic():
                    command.upgrade(alembic_config(connection), revision)
                reference = MetaData()
                with scratch.connect() as connection:
                    reference.reflect(connection)
                yield reference, {}
            finally:
                scratch.dispose()
        return
    # A schema of its own, through an engine whose search_path starts there, so that Alembic
    # and reflection (which take the connection's default schema) both work inside it.
    schema = f"alembic_reference_{uuid.uuid4().hex[:12]}"
    with engine.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    scratch = create_engine(
        engine.url, poolclass=NullPool, connect_args={"options": f"-csearch_path={schema}"}
    )
    try:
        with scratch.connect() as connection, _quiet_alembic():
            command.upgrade(alembic_config(connection), revision)
            reference = MetaData()
            reference.reflect(connection)
            enums = _enum_labels(connection, schema)
        yield reference, enums
    finally:
        scratch.dispose()
        with engine.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


def create_all_at_head(engine: Engine) -> None:
    """A fresh, empty database straight to the head schema (create_all) and recorded there: the
    tests' fast path (17 ms a SQLite database against 47 ms migrated, 145 against 200 ms on
    PostgreSQL). tests/core/db/test_migrations.py keeps the two schemas the same."""
    with engine.begin() as connection:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        current = context.get_current_revision()
        if current is None and set(inspect(connection).get_table_names()) & set(target_metadata.tables):
            raise SchemaNotAdoptable("tables without a recorded revision: adopt them with upgrade()")
        if current not in (None, head_revision()):
            raise SchemaNotCurrent(f"the database is at revision {current}: migrate it with upgrade()")
        target_metadata.create_all(connection)
        # As `stamp` records it, without loading env.py for one INSERT.
        context.stamp(script_directory(), "head")
