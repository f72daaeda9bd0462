"""Engine and session handling for SQLite (WAL) and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Enum as SAEnum
from sqlalchemy import event, inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, SQLModel, create_engine

import core.db.case_tables
import core.db.ledger_tables
import core.db.lender_tables
import core.db.review_tables
import core.db.staff_tables  # noqa: F401  (registers the tables on SQLModel.metadata)


def make_engine(url: str, *, echo: bool = False, connect_args: dict[str, Any] | None = None) -> Engine:
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            # About as many as requests run at once: past the pool, each use would open a
            # connection (four PRAGMAs) and close it again.
            pool_size=20,
            max_overflow=20,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        # pysqlite's own transaction handling defers BEGIN; issue it ourselves so that
        # `BEGIN IMMEDIATE` can be used for writes that must not interleave.
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(
        url,
        echo=echo,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args=connect_args or {},
    )


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    # A write transaction takes the lock up front (IMMEDIATE): a deferred one that reads
    # first and writes later fails at once with "database is locked" instead of waiting.
    if connection.get_execution_options().get("read_only"):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


# Any constant: the advisory lock that processes creating the schema take in turn.
SCHEMA_LOCK_KEY = 0x41505045414C53  # "APPEALS"


def create_tables(engine: Engine) -> None:
    """Creates what is missing, one process at a time on PostgreSQL: several starting together
    (`appeals api --workers 2`, the worker beside it) would otherwise race on the same CREATE
    TYPE and CREATE TABLE and all but one fail."""
    with _schema_lock(engine):
        SQLModel.metadata.create_all(engine)
        add_missing_columns(engine)
        add_missing_indexes(engine)
        add_missing_enum_values(engine)


@contextmanager
def _schema_lock(engine: Engine) -> Iterator[None]:
    if engine.dialect.name != "postgresql":
        yield  # SQLite: one file, DDL serialized by its own lock
        return
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": SCHEMA_LOCK_KEY})
        try:
            yield
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": SCHEMA_LOCK_KEY})
            connection.commit()


def _default_literal(column: Any) -> str | None:
    default = column.default.arg if column.default is not None else None
    if callable(default):
        # default_factory (list, dict, utcnow): SQLAlchemy wraps it to take a context.
        factory = column.default.arg
        try:
            default = factory(None)  # SQLAlchemy passes a context
        except TypeError:
            default = factory()
    if isinstance(default, bool):
        return "TRUE" if default else "FALSE"
    if isinstance(default, int | float):
        return str(default)
    if isinstance(default, str):  # StrEnum members included
        return "'" + str.__str__(default).replace("'", "''") + "'"
    if isinstance(default, list | dict):
        return "'" + json.dumps(default) + "'"
    return None  # no constant default: the column is added as nullable


def add_missing_columns(engine: Engine) -> list[str]:
    """Adds columns that the models have and an existing table lacks, so a database made by
    an older version keeps working (additive changes only; nothing is dropped or altered)."""
    added: list[str] = []
    with engine.begin() as connection:
        # Inspect through the same connection: on SQLite a second one would wait for this
        # one's write lock.
        inspector = inspect(connection)
        for table in SQLModel.metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            existing = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name in existing:
                    continue
                column_type = column.type.compile(engine.dialect)
                ddl = f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {column_type}'
                literal = _default_literal(column)
                if literal is not None:
                    ddl += f" DEFAULT {literal}"
                    if not column.nullable:
                        ddl += " NOT NULL"
                connection.exec_driver_sql(ddl)
                added.append(f"{table.name}.{column.name}")
    return added


def add_missing_indexes(engine: Engine) -> list[str]:
    """Creates the models' indexes that an existing table lacks (create_all makes indexes only
    with a new table), so a database made by an older version gets the indexes its queries
    now rely on, e.g. ix_notification_appeal for the appeal page."""
    added: list[str] = []
    with engine.begin() as connection:
        inspector = inspect(connection)
        for table in SQLModel.metadata.sorted_tables:
            if not inspector.has_table(table.name):
                continue
            existing = {index["name"] for index in inspector.get_indexes(table.name)}
            for index in sorted(table.indexes, key=lambda i: str(i.name)):
                if index.name not in existing:
                    index.create(connection)
                    added.append(str(index.name))
    return added


def add_missing_enum_values(engine: Engine) -> list[str]:
    """PostgreSQL keeps enums as native types: values added to a StrEnum since the type was
    created (say AppealStatus.LIMIT_APPLY_FAILED) are added to it. SQLite stores plain text."""
    if engine.dialect.name != "postgresql":
        return []
    added: list[str] = []
    with engine.begin() as connection:
        types = {
            column.type.name: column.type
            for table in SQLModel.metadata.sorted_tables
            for column in table.columns
            if isinstance(column.type, SAEnum) and column.type.native_enum and column.type.name
        }
        for name, enum_type in types.items():
            existing = set(
                connection.execute(
                    text("SELECT enumlabel FROM pg_enum WHERE enumtypid = to_regtype(:name)"), {"name": name}
                ).scalars()
            )
            if not existing:
                continue  # not created here (yet)
            for value in enum_type.enums:
                if value not in existing:
                    literal = value.replace("'", "''")
                    connection.exec_driver_sql(f"ALTER TYPE \"{name}\" ADD VALUE IF NOT EXISTS '{literal}'")
                    added.append(f"{name}.{value}")
    return added


@contextmanager
def session_scope(engine: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """One unit of work: committed once at the end, rolled back on any error."""
    bind = engine.execution_options(read_only=True) if read_only else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: Engine) -> Iterator[Connection]:
    """A read-only unit of work without an ORM session, for hot read paths that select columns
    (Core statements), on one connection. On SQLite one read transaction (a deferred BEGIN, so
    every statement reads the same snapshot), rolled back at the end. On PostgreSQL each
    statement runs in autocommit: under READ COMMITTED every statement takes its own snapshot
    in a transaction too, so BEGIN and ROLLBACK would add two round trips and guarantee
    nothing more. Writes use session_scope."""
    options: dict[str, Any] = {"read_only": True}
    if engine.dialect.name == "postgresql":
        options["isolation_level"] = "AUTOCOMMIT"
    with engine.connect().execution_options(**options) as connection:
        yield connection  # closing the connection rolls back what it began (SQLite)
