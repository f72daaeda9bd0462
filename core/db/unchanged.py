"""Counts a connection has taken, kept until the database changes (SQLite).

The review queue gives the exact number of matching tasks with every page. On SQLite that
count steps through every matching index entry in this process (10,000 open tasks: about as
much CPU as the rest of the query and a third of the page's database work,
bench/api_bench.py), and reviewers' pages ask for the same count again and again. SQLite
says when the answer cannot have changed: `PRAGMA data_version` changes when another
connection has committed, and the connection's own `total_changes` when it has written
itself. A count is reused only while both are unchanged, so it is exact, never stale; any
write to the database (a worker moving an appeal, say) means counting again. The PRAGMA also
opens the read transaction, so the page read after it sees the very state the count was
taken in.

PostgreSQL has no such signal; there every page counts (in the database server's process).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from sqlalchemy.engine import Connection

# Counts kept per connection; past this many (a new filter each time), the oldest go.
KEPT_PER_CONNECTION = 64

_STATE = "unchanged_state"
_COUNTS = "unchanged_counts"


def recall(connection: Connection, key: Hashable) -> int | None:
    """The count remembered under `key` if the database has not changed since, else None
    (always None on PostgreSQL). Only for a read-only transaction (core.db.read_scope), and
    first in it: on SQLite it begins the transaction's snapshot. A transaction that wrote
    could count rows it then rolls back."""
    state = _state(connection)
    if state is None:
        return None
    info = connection.info
    if info.get(_STATE) != state:
        info[_STATE] = state
        info[_COUNTS] = {}
        return None
    counts: dict[Hashable, int] = info[_COUNTS]
    return counts.get(key)


def remember(connection: Connection, key: Hashable, count: int) -> None:
    """Keep `count`, taken in this transaction after `recall`, for the next read under `key`."""
    if _COUNTS not in connection.info:  # recall keeps none on PostgreSQL
        return
    counts: dict[Hashable, int] = connection.info[_COUNTS]
    if len(counts) >= KEPT_PER_CONNECTION:
        del counts[next(iter(counts))]
    counts[key] = count


def _state(connection: Connection) -> tuple[Any, int] | None:
    if connection.dialect.name != "sqlite":
        return None
    # Through the Connection, so that its BEGIN comes first and the PRAGMA pins the snapshot.
    version = connection.exec_driver_sql("PRAGMA data_version").scalar_one()
    own_changes = connection.connection.driver_connection.total_changes  # type: ignore[union-attr]
    return version, own_changes
