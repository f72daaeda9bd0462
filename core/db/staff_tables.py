"""The staff directory: who works here, with which roles, and whether they still do.

The one trusted source of a member of staff's roles (core/staff.py): kept by admins
(`PUT /admin/staff/{staff_id}`) or written from the identity provider's claims when the person
signs in; never from a request body."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from core.db.types import UTCDateTime


class ManagedBy(StrEnum):
    """Who keeps an entry: the identity provider's claims at each sign-in, until an admin sets
    the entry, after which sign-ins no longer change it."""

    IDENTITY_PROVIDER = "identity_provider"
    ADMIN = "admin"


class StaffMember(SQLModel, table=True):
    __tablename__ = "staff_member"

    id: str = Field(primary_key=True, max_length=200)  # the staff id: a token's `sub`
    # Staff role names (core.auth.STAFF_ROLES), most privileged first.
    roles: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    active: bool = True
    managed_by: ManagedBy = ManagedBy.IDENTITY_PROVIDER
    updated_by: str = Field(default="", max_length=200)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime, nullable=False))
