"""A database made by an older version gains the columns added since, and keeps working."""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.appeals.service import NewAppeal, create_appeal
from core.clock import SYSTEM_CLOCK
from core.db import create_tables, session_scope
from core.db.case_tables import Notification, ReviewTask
from core.db.engine import add_missing_columns, add_missing_enum_values, add_missing_indexes
from core.status import AppealStatus
from tests.factories import make_customer


def test_missing_columns_are_added_and_rows_work(engine: Engine) -> None:
    c = make_customer(engine)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, 1000))
    # Simulate the older schema: drop columns that newer code added.
    with engine.begin() as connection:
        for table, column in (
            ("notification", "attempts"),
            ("notification", "last_error"),
            ("review_task", "escalated"),
            ("notification", "audience"),
        ):
            connection.execute(text(f'ALTER TABLE {table} DROP COLUMN "{column}"'))
    assert "attempts" not in {c["name"] for c in inspect(engine).get_columns("notification")}
    added = add_missing_columns(engine)
    assert set(added) >= {
        "notification.attempts",
        "notification.last_error",
        "review_task.escalated",
        "notification.audience",
    }
    create_tables(engine)  # idempotent: nothing more to add
    assert add_missing_columns(engine) == []
    with session_scope(engine) as session:
        session.add(
            Notification(
                appeal_id=appeal.id,
                customer_id=c.customer_id,
                event="e",
                locale="en",
                idempotency_key="k",
                subject="s",
                body="b",
                created_at=SYSTEM_CLOCK.now(),
            )
        )
    with session_scope(engine, read_only=True) as session:
        row = session.exec(select(Notification)).one()
        assert row.attempts == 0 and row.audience == "customer"
        assert session.exec(select(ReviewTask)).all() == []


def test_missing_indexes_are_added(engine: Engine) -> None:
    """ix_notification_appeal came after the notification table: an older database gets it on
    start, so the appeal page does not scan every notice."""
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_notification_appeal"))
    assert "ix_notification_appeal" not in {i["name"] for i in inspect(engine).get_indexes("notification")}
    assert add_missing_indexes(engine) == ["ix_notification_appeal"]
    index = next(
        i for i in inspect(engine).get_indexes("notification") if i["name"] == "ix_notification_appeal"
    )
    assert index["column_names"] == ["appeal_id", "created_at", "id"]
    create_tables(engine)  # idempotent
    assert add_missing_indexes(engine) == []


def test_enum_values_added_since_are_added_on_postgresql(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        assert add_missing_enum_values(engine) == []  # SQLite stores enums as text
        return
    # Simulate a database from before LIMIT_APPLY_FAILED: recreate the type without it.
    old = ", ".join(f"'{s.value}'" for s in AppealStatus if s is not AppealStatus.LIMIT_APPLY_FAILED)
    with engine.begin() as connection:
        columns = connection.execute(
            text(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE udt_name = 'appealstatus' AND table_schema = current_schema()"
            )
        ).all()
        for table, column in columns:
            connection.execute(text(f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE text'))
        connection.execute(text("DROP TYPE appealstatus"))
        connection.execute(text(f"CREATE TYPE appealstatus AS ENUM ({old})"))
        for table, column in columns:
            connection.execute(
                text(
                    f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE appealstatus '
                    f'USING "{column}"::appealstatus'
                )
            )
    assert add_missing_enum_values(engine) == ["appealstatus.LIMIT_APPLY_FAILED"]
    create_tables(engine)  # idempotent
    assert add_missing_enum_values(engine) == []
    c = make_customer(engine)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, 1000))
        appeal.status = AppealStatus.LIMIT_APPLY_FAILED
        session.add(appeal)
