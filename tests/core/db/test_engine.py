"""SQLite engines: this process's writers queue on one gate per database file (no sleeping in
SQLite's busy handler), and the gate is handed on however a write transaction ends."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from core.db.engine import _writer_gate, make_engine

WRITERS = 12
WRITES_EACH = 25


def _engine(path: Path, *, writer_gate: bool = True) -> Engine:
    engine = make_engine(f"sqlite:///{path}", writer_gate=writer_gate)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, n INTEGER)")
    return engine


def _gate_is_free(path: Path) -> bool:
    return not _writer_gate(str(path)).locked()


@pytest.mark.parametrize("writer_gate", [True, False])
def test_concurrent_writers_each_commit_once(tmp_path: Path, writer_gate: bool) -> None:
    path = tmp_path / "w.db"
    engine = _engine(path, writer_gate=writer_gate)
    inside = threading.Lock()
    overlaps: list[int] = []

    def write(worker: int) -> None:
        for i in range(WRITES_EACH):
            with engine.begin() as connection:
                # Nobody else is inside a write transaction of this file meanwhile.
                if not inside.acquire(blocking=False):
                    overlaps.append(worker)
                    continue
                try:
                    connection.execute(text("INSERT INTO t (n) VALUES (:n)"), {"n": worker * 1000 + i})
                finally:
                    inside.release()

    with ThreadPoolExecutor(WRITERS) as pool:
        list(pool.map(write, range(WRITERS)))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM t")).scalar() == WRITERS * WRITES_EACH
    assert overlaps == []
    assert _gate_is_free(path)


def test_the_gate_is_handed_on_after_rollback_error_and_close(tmp_path: Path) -> None:
    path = tmp_path / "g.db"
    engine = _engine(path)
    with engine.connect() as connection:
        connection.begin()
        connection.execute(text("INSERT INTO t (n) VALUES (1)"))
        assert not _gate_is_free(path)  # held while the write transaction is open
        connection.rollback()
        assert _gate_is_free(path)
    with pytest.raises(ZeroDivisionError), engine.begin() as connection:
        connection.execute(text("INSERT INTO t (n) VALUES (2)"))
        raise ZeroDivisionError
    assert _gate_is_free(path)
    connection = engine.connect()
    connection.begin()
    connection.execute(text("INSERT INTO t (n) VALUES (3)"))
    connection.invalidate()  # the DBAPI connection is closed mid-transaction
    assert _gate_is_free(path)
    # Reads take no gate: a read transaction beside an open write one.
    with engine.begin() as writer, engine.execution_options(read_only=True).connect() as reader:
        writer.execute(text("INSERT INTO t (n) VALUES (4)"))
        assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 0
    with engine.connect() as connection:
        assert connection.execute(text("SELECT n FROM t")).scalars().all() == [4]


def test_two_engines_on_one_file_share_the_gate(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    first, second = _engine(path), _engine(path)
    with first.begin() as connection:
        connection.execute(text("INSERT INTO t (n) VALUES (1)"))
        with second.connect() as other:
            assert other.connection.dbapi_connection._file == str(path)  # type: ignore[union-attr]
            assert not _gate_is_free(path)  # the first engine holds it
    with second.begin() as other:
        other.execute(text("INSERT INTO t (n) VALUES (2)"))
    with second.connect() as connection:
        assert connection.execute(text("SELECT n FROM t ORDER BY id")).scalars().all() == [1, 2]


def test_a_forked_child_does_not_inherit_a_held_gate(tmp_path: Path) -> None:
    path = tmp_path / "f.db"
    engine = _engine(path)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO t (n) VALUES (1)"))
        assert not _gate_is_free(path)
        pid = os.fork()
        if pid == 0:  # the child: the gate of this file is its own, and free
            os._exit(0 if _gate_is_free(path) else 1)
        _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
