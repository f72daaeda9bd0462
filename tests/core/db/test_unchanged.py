"""Counts kept while the database is unchanged: reused on SQLite until any connection, this
one included, changes the database; never kept on PostgreSQL."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import Engine

from core.db import make_engine, read_scope
from core.db.unchanged import KEPT_PER_CONNECTION, recall, remember

KEY = ("open tasks",)


def _table(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY)")


def _insert(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO t DEFAULT VALUES")


def _read(engine: Engine, key: tuple[str, ...] = KEY) -> int | None:
    """What a reader recalls under `key`; it remembers 7 when it recalls nothing."""
    with read_scope(engine) as connection:
        known = recall(connection, key)
        if known is None:
            remember(connection, key, 7)
        return known


def test_a_count_is_reused_until_another_connection_commits(tmp_path: Path) -> None:
    reader = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    writer = make_engine(f"sqlite:///{tmp_path / 'a.db'}")  # connections of its own
    _table(writer)
    assert _read(reader) is None
    assert _read(reader) == 7
    assert _read(reader, ("other",)) is None  # another listing, counted on its own
    _insert(writer)
    assert _read(reader) is None
    assert _read(reader) == 7


def test_a_count_is_dropped_when_the_connection_writes_itself(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    _table(engine)
    assert _read(engine) is None
    assert _read(engine) == 7
    # One connection in the pool so far: the write and the reads share it, and SQLite's
    # data_version does not move for a connection's own commits.
    _insert(engine)
    assert _read(engine) is None


def test_a_connection_keeps_a_bounded_number_of_counts(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    _table(engine)
    for i in range(KEPT_PER_CONNECTION + 1):
        assert _read(engine, (str(i),)) is None
    assert _read(engine, ("0",)) is None  # the oldest went
    assert _read(engine, (str(KEPT_PER_CONNECTION),)) == 7


def test_postgresql_never_reuses_a_count(postgresql_engine: Engine) -> None:
    _table(postgresql_engine)
    assert _read(postgresql_engine) is None
    assert _read(postgresql_engine) is None
