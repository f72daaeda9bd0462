"""Putting people in the staff directory for a test, as an admin would."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from core import staff
from core.auth import Principal, Role
from core.db import session_scope
from core.db.types import utcnow

ADMIN = Principal(subject="a-test", role=Role.ADMIN)


def add_staff(engine: Engine, staff_id: str, *roles: Role, active: bool = True) -> None:
    """Sets `staff_id`'s entry (created or replaced) with these roles."""
    with session_scope(engine) as session:
        staff.put_member(session, staff_id, roles=roles, active=active, by=ADMIN, at=utcnow())
