"""Request and response bodies of the staff directory's admin endpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.db.staff_tables import ManagedBy

# The roles a member of staff can be given (core.auth.STAFF_ROLES); never `customer`.
StaffRoleName = Literal["reviewer", "senior_reviewer", "supervisor", "admin"]


class StaffMemberBody(BaseModel):
    """A person's entry as an admin sets it: from then on sign-ins no longer change it."""

    model_config = ConfigDict(extra="forbid")

    roles: list[StaffRoleName] = Field(
        min_length=1,
        max_length=4,
        description="The staff roles the person holds; they act with the most privileged one.",
    )
    active: bool = Field(default=True, description="False: the person may no longer act or be assigned.")


class StaffMemberPublic(BaseModel):
    id: str
    roles: list[str] = Field(description="Most privileged first.")
    active: bool
    managed_by: ManagedBy = Field(
        description="`admin`: set by an admin, sign-ins leave it; `identity_provider`: follows the "
        "identity provider's claims at each sign-in."
    )
    updated_by: str
    updated_at: datetime


class StaffPage(BaseModel):
    items: list[StaffMemberPublic]
