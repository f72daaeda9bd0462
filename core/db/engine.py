"""Engine and session handling for SQLite (WAL) and PostgreSQL. The schema comes from the
migrations (core/db/migrate.py, `appeals db upgrade`)."""

from __future__ import annotations

import os
import sqlite3
import threading
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


def make_engine(
    url: str, *, echo: bool = False, connect_args: dict[str, Any] | None = None, writer_gate: bool = True
) -> Engine:
    """An engine for `url`. On SQLite, `writer_gate` queues this process's writers on a lock
    (see _GatedConnection); without it they wait in SQLite's busy handler (bench/ compares)."""
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            echo=echo,
            connect_args={
                "check_same_thread": False,
                "timeout": 30,
                "factory": _GatedConnection if writer_gate else sqlite3.Connection,
            },
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


# One writer at a time per database file within a process, queued on a lock. SQLite lets a
# waiting writer poll with sleeps of up to 100 ms (its busy handler), so under many threads
# the write lock would sit free while they sleep; another process still waits by polling.
_WRITER_GATES: dict[str, threading.Lock] = {}
_WRITER_GATES_LOCK = threading.Lock()
WRITER_GATE_TIMEOUT_SECONDS = 30.0  # as SQLite's busy timeout: then "database is locked"


def _writer_gate(path: str) -> threading.Lock:
    with _WRITER_GATES_LOCK:
        return _WRITER_GATES.setdefault(path, threading.Lock())


def _fresh_gates_after_fork() -> None:
    # A forked child has only the forking thread: a gate another thread held at the fork
    # would stay held in the child for ever.
    global _WRITER_GATES_LOCK
    _WRITER_GATES_LOCK = threading.Lock()
    _WRITER_GATES.clear()


os.register_at_fork(after_in_child=_fresh_gates_after_fork)


class _GatedConnection(sqlite3.Connection):
    """A pysqlite connection that holds its file's writer gate from BEGIN IMMEDIATE until
    its transaction ends (commit, rollback or close)."""

    _gate: threading.Lock | None = None  # held while in a write transaction
    _file: str | None = None

    def begin_immediate(self) -> None:
        if self._file is None:
            self._file = str(self.execute("PRAGMA database_list").fetchone()[2])
        gate = _writer_gate(self._file)
        if not gate.acquire(timeout=WRITER_GATE_TIMEOUT_SECONDS):
            raise sqlite3.OperationalError("database is locked")
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            gate.release()
            raise
        self._gate = gate

    def _open_gate(self) -> None:
        gate, self._gate = self._gate, None
        if gate is not None:
            gate.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self._in_transaction():  # a failed COMMIT leaves it for the rollback
                self._open_gate()

    def _in_transaction(self) -> bool:
        try:
            return self.in_transaction
        except sqlite3.ProgrammingError:  # closed
            return False

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._open_gate()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._open_gate()


def _sqlite_begin(connection: Any) -> None:
    # A write transaction takes the lock up front (IMMEDIATE): a deferred one that reads
    # first and writes later fails at once with "database is locked" instead of waiting.
    if connection.get_execution_options().get("read_only"):
        connection.exec_driver_sql("BEGIN")
        return
    dbapi = connection.connection.dbapi_connection
    if isinstance(dbapi, _GatedConnection):
        dbapi.begin_immediate()
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
