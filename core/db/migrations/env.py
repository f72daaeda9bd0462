"""Alembic's environment, configured in code: core/db/migrate.py makes the Config and passes the
connection in config.attributes (online only: no SQL scripts are generated)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import text
from sqlalchemy.engine import Connection

from core.db.migrate import MIGRATION_LOCK_KEY, MIGRATION_OPTIONS


def run_online(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # SQLite's DDL is transactional too (the engine issues BEGIN itself, core/db/engine.py): one
    # transaction for the whole run, so a failed revision leaves nothing half done.
    context.configure(connection=connection, transactional_ddl=True, **MIGRATION_OPTIONS)
    with context.begin_transaction():
        if sqlite:
            # Foreign keys are off while migrating (core/db/migrate.py): what breaks them is
            # found before commit. Rows that broke them before (say, written with them off) are
            # not this migration's doing and do not stop it.
            broken_before = set(map(tuple, connection.exec_driver_sql("PRAGMA foreign_key_check").all()))
        if connection.dialect.name == "postgresql":
            # Two upgrades at once (replicas each running one) take turns: the second reads
            # the revision the first committed and has nothing left to do. SQLite's BEGIN
            # IMMEDIATE already makes the second wait.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        context.run_migrations()
        if sqlite:
            after = set(map(tuple, connection.exec_driver_sql("PRAGMA foreign_key_check").all()))
            if broken := sorted(after - broken_before, key=str):
                raise RuntimeError(
                    f"foreign keys broken by the migration (table, rowid, parent): {broken[:10]}"
                )


run_online(context.config.attributes["connection"])
