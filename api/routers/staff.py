"""The staff directory (admins): who works here, with which roles, and whether they still do.

The one trusted source of staff roles (core/staff.py): a reassignment looks its assignee up
here, and a caller it knows acts only with a role it gives them, while active."""

from __future__ import annotations

from typing import Annotated, Final

from anyio import to_thread
from fastapi import APIRouter, Body, Depends, Path, Response, status
from pydantic import AfterValidator

from api.deps import ClockDep, EngineDep, require_role
from api.openapi import WITH_ROLE, problems
from api.schemas.staff import StaffMemberBody, StaffMemberPublic, StaffPage
from core import staff
from core.auth import MAX_SUBJECT_LENGTH, Principal, Role, usable_subject
from core.db import session_scope

router = APIRouter(prefix="/admin/staff", tags=["staff"])
AdminDep = Annotated[Principal, Depends(require_role(Role.ADMIN))]


def _usable_id(staff_id: str) -> str:
    # The pattern is the documented shape; core.auth.usable_subject is the rule (it refuses
    # other non-printing characters too, e.g. U+0085 or U+200B): 422 here, not a 500 later.
    if not usable_subject(staff_id):
        raise ValueError("not a usable staff id (printable, no spaces)")
    return staff_id


StaffId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_SUBJECT_LENGTH,
        pattern=r"^[^\s\x00-\x1f\x7f]+$",
        description="The person's staff id: the `sub` of their tokens.",
    ),
    AfterValidator(_usable_id),
]
_STAFF: Final = ("staff_inactive", "staff_role_not_held")
_EXAMPLE_BODY: Final = {
    "senior": {"summary": "A senior reviewer", "value": {"roles": ["senior_reviewer"], "active": True}},
    "leaver": {"summary": "Someone who left", "value": {"roles": ["reviewer"], "active": False}},
}


@router.get(
    "",
    response_model=StaffPage,
    summary="The staff directory",
    responses=problems(*WITH_ROLE, *_STAFF),
)
def list_staff(admin: AdminDep, engine: EngineDep) -> StaffPage:
    """Everyone in the directory, by id: their roles (most privileged first), whether they are
    active, and who keeps the entry (an admin, or the identity provider's claims at sign-in)."""
    with session_scope(engine, read_only=True) as session:
        staff.acting_principal(session, admin)
        members = staff.list_members(session)
        return StaffPage(items=[StaffMemberPublic.model_validate(m, from_attributes=True) for m in members])


@router.get(
    "/{staff_id}",
    response_model=StaffMemberPublic,
    summary="One person's entry in the staff directory",
    responses=problems(*WITH_ROLE, *_STAFF, "staff_member_not_found", "validation_failed"),
)
def get_staff_member(staff_id: StaffId, admin: AdminDep, engine: EngineDep) -> StaffMemberPublic:
    with session_scope(engine, read_only=True) as session:
        staff.acting_principal(session, admin)
        return StaffMemberPublic.model_validate(staff.get_member(session, staff_id), from_attributes=True)


@router.put(
    "/{staff_id}",
    response_model=StaffMemberPublic,
    summary="Set a person's roles and whether they are active",
    responses={
        201: {"description": "The person was not in the directory and is now.", "model": StaffMemberPublic},
        **problems(*WITH_ROLE, *_STAFF, "validation_failed"),
    },
)
async def put_staff_member(
    staff_id: StaffId,
    body: Annotated[StaffMemberBody, Body(openapi_examples=_EXAMPLE_BODY)],
    admin: AdminDep,
    engine: EngineDep,
    clock: ClockDep,
    response: Response,
) -> StaffMemberPublic:
    """Creates or replaces the entry (200; 201 when it is new). From then on the entry is the
    admin's: signing in no longer changes it. A person made inactive can no longer claim,
    release, reassign or decide, nor be handed a task; taking a role away refuses the tokens
    that name it (they sign in again and act with the roles left)."""

    def _put() -> tuple[StaffMemberPublic, bool]:
        with session_scope(engine) as session:
            by = staff.acting_principal(session, admin)
            entry, created = staff.put_member(
                session, staff_id, roles=body.roles, active=body.active, by=by, at=clock.now()
            )
            return StaffMemberPublic.model_validate(entry, from_attributes=True), created

    member, created = await to_thread.run_sync(_put)
    if created:
        response.status_code = status.HTTP_201_CREATED
    return member
