"""Engine and session handling for SQLite (WAL) and PostgreSQL. The schema comes from the
migrations (core/db/migrate.py, `appeals db upgrade`)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Session, create_engine

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


# Turning a new database file to WAL needs it to itself; SQLite answers "database is locked"
# at once, without its busy handler, while another process does the same (two processes
# opening a fresh file: `appeals db upgrade` run by two replicas, say).
WAL_SWITCH_PATIENCE_SECONDS = 30.0


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    _switch_to_wal(cursor)
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _switch_to_wal(cursor: Any) -> None:
    deadline = time.monotonic() + WAL_SWITCH_PATIENCE_SECONDS
    pause = 0.01
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(pause)  # another process is switching the file: it takes milliseconds
        pause = min(pause * 2, 0.2)


def _sqlite_begin(connection: Any) -> None:
    # A write transaction takes the lock up front (IMMEDIATE): a deferred one that reads
    # first and writes later fails at once with "database is locked" instead of waiting.
    if connection.get_execution_options().get("read_only"):
        connection.exec_driver_sql("BEGIN")
    else:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


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
