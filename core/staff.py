"""The staff directory's rules: whose roles count, and what a person may be handed.

A member of staff's roles come from one trusted source, the directory (core/db/staff_tables.py):

- an admin sets an entry (`PUT /admin/staff/{staff_id}`: roles, active); from then on the
  entry is the admin's and sign-ins do not change it;
- otherwise the entry is written from the identity provider's claims each time the person signs
  in to the web pages (OIDC, or the development sign-in), and the session's role is the entry's;
- a person named in a request (the assignee of a reassignment) is looked up in it: the role a
  request body claims for someone is never believed.

A caller's verified bearer token names a role. Where the directory has the caller, it decides:
an inactive entry acts as nobody, and a role the entry does not hold is refused. A caller the
directory does not know acts with their token's role (the token is this service's or the
identity provider's own signature), and cannot be handed tasks until they are in it.

Customers are never in the directory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlmodel import Session, col, select

from core.auth import STAFF_RANK, STAFF_ROLES, Principal, Role, usable_subject
from core.db.staff_tables import ManagedBy, StaffMember
from core.errors import Conflict, Forbidden, InvalidInput, NotFound
from core.reviews.rules import Refusal, role_satisfies


def ranked(roles: Iterable[str | Role]) -> list[str]:
    """Staff roles without repeats, most privileged first; anything else dropped."""
    given = {str(role) for role in roles}
    return [role.value for role in STAFF_RANK if role.value in given]


@dataclass(frozen=True)
class Acting:
    """Who a caller acts as now: their principal with the role that counts, or why they may not
    act at all (`refusal`, with the problem code it is raised as)."""

    principal: Principal
    refusal: Refusal | None = None
    code: str = ""

    def check(self) -> Principal:
        """The principal, or Forbidden with the refusal."""
        if self.refusal is not None:
            raise Forbidden(f"{self.refusal.en[:1].upper()}{self.refusal.en[1:]}.", code=self.code)
        return self.principal


def acting(principal: Principal, entry: StaffMember | None) -> Acting:
    """The caller as the directory sees them (module docstring). Customers pass as they are."""
    if principal.role not in STAFF_ROLES or entry is None:
        return Acting(principal)
    if not entry.active:
        return Acting(
            principal,
            Refusal(
                "the staff directory marks you inactive; an admin can reactivate you",
                "员工名录中您的账号已停用，可请管理员重新启用",
            ),
            "staff_inactive",
        )
    if principal.role.value not in entry.roles:
        held = ", ".join(entry.roles) or "none"
        return Acting(
            principal,
            Refusal(
                f"the staff directory does not give you the {principal.role.value} role "
                f"(it gives: {held}); sign in again",
                f"员工名录未授予您 {principal.role.value} 角色（现有：{held}），请重新登录",
            ),
            "staff_role_not_held",
        )
    return Acting(principal)


def acting_principal(session: Session, principal: Principal) -> Principal:
    """The caller, checked against the directory (Forbidden when it refuses them)."""
    if principal.role not in STAFF_ROLES:
        return principal
    return acting(principal, session.get(StaffMember, principal.subject)).check()


def assignee(session: Session, staff_id: str, required_role: str) -> Principal:
    """The person a task is handed to, as the directory knows them: with the most privileged
    of their roles that may work a task needing `required_role`. Refused with a problem when
    they are unknown, inactive, or hold no such role."""
    entry = session.get(StaffMember, staff_id) if usable_subject(staff_id) else None
    if entry is None:
        raise InvalidInput(
            f"{staff_id} is not in the staff directory: people are added when they first sign "
            f"in, or by an admin (PUT /admin/staff/{{staff_id}}).",
            code="unknown_staff_member",
        )
    if not entry.active:
        raise Conflict(f"{staff_id} is inactive in the staff directory.", code="staff_member_inactive")
    fitting = [role for role in entry.roles if role_satisfies(role, required_role)]
    if not fitting:
        held = ", ".join(entry.roles) or "none"
        raise Conflict(
            f"{staff_id} cannot take this task: the task needs the {required_role} role, and the "
            f"staff directory gives them {held}.",
            code="task_not_assignable",
        )
    return Principal(subject=staff_id, role=Role(fitting[0]))


# -- the directory itself -----------------------------------------------------------------


def get_member(session: Session, staff_id: str) -> StaffMember:
    entry = session.get(StaffMember, staff_id)
    if entry is None:
        raise NotFound(f"{staff_id} is not in the staff directory.", code="staff_member_not_found")
    return entry


def list_members(session: Session) -> list[StaffMember]:
    return list(session.exec(select(StaffMember).order_by(col(StaffMember.id))).all())


def put_member(
    session: Session, staff_id: str, *, roles: Iterable[str | Role], active: bool, by: Principal, at: datetime
) -> tuple[StaffMember, bool]:
    """An admin sets a person's entry (created if new): (the entry, whether it was created)."""
    wanted = ranked(roles)
    # The router has checked both (422 validation_failed); this is the rule, not the message.
    if not usable_subject(staff_id) or not wanted:
        raise ValueError("a staff entry needs a usable id and at least one staff role")
    entry = session.get(StaffMember, staff_id)
    created = entry is None
    if entry is None:
        entry = StaffMember(id=staff_id, updated_at=at)
    entry.roles, entry.active, entry.managed_by = wanted, active, ManagedBy.ADMIN
    entry.updated_by, entry.updated_at = by.actor, at
    session.add(entry)
    session.flush()
    return entry, created


def sign_in(
    session: Session, principal: Principal, roles: Iterable[str | Role], *, at: datetime
) -> Principal:
    """A member of staff signs in with the identity provider's `roles` (the development sign-in
    stands in for it): their entry follows the claims unless an admin keeps it, and the session
    acts with the most privileged role of the entry. Forbidden when the entry is inactive.
    A customer passes as they are."""
    if principal.role not in STAFF_ROLES:
        return principal
    claimed = ranked(roles) or [principal.role.value]
    entry = session.get(StaffMember, principal.subject)
    if entry is None:
        entry = StaffMember(id=principal.subject, roles=claimed, updated_by="sign-in", updated_at=at)
        session.add(entry)
    elif entry.managed_by is ManagedBy.IDENTITY_PROVIDER and entry.roles != claimed:
        entry.roles, entry.updated_by, entry.updated_at = claimed, "sign-in", at
        session.add(entry)
    session.flush()
    if not entry.active:
        raise Forbidden(
            "The staff directory marks you inactive; an admin can reactivate you.", code="staff_inactive"
        )
    if not entry.roles:
        raise Forbidden("The staff directory gives you no role.", code="staff_role_not_held")
    return Principal(subject=principal.subject, role=Role(entry.roles[0]))


# -- what a customer sees of the staff ------------------------------------------------------

# Details of audit events that name a person; a customer sees that someone holds the task, not who.
_PERSON_KEYS: Final = frozenset(
    {"reviewer", "assignee", "excluded_reviewer", "assigned_by", "decided_by", "requested_by", "actor"}
)
_ACTOR = re.compile(r"^([a-z_]+):")
SOMEONE: Final = "staff"


def public_actor(actor: str) -> str:
    """An audit event's actor as a customer sees it: the role, not the person
    ("reviewer:r-1" -> "reviewer"); "workflow" and "system" as they are."""
    found = _ACTOR.match(actor)
    return found.group(1) if found else actor


def public_details(details: Mapping[str, Any]) -> dict[str, Any]:
    """An event's details without the ids of staff: each is "staff" (None stays None)."""
    shown: dict[str, Any] = {}
    for key, value in details.items():
        if key in _PERSON_KEYS and isinstance(value, str):
            shown[key] = public_actor(value) if ":" in value else SOMEONE
        elif isinstance(value, Mapping):
            shown[key] = public_details(value)
        else:
            shown[key] = value
    return shown


def public_decider(decided_by: str) -> str:
    """Who decided, as a customer sees it: a person's id becomes "reviewer"."""
    return decided_by if decided_by in {"system", "workflow"} else "reviewer"


# Housekeeping on the case file that staff need and the customer does not: who opened a file,
# a store's integrity alarm, a file checked late, a refused file's bytes purged.
STAFF_ONLY_EVENTS: Final = frozenset(
    {"document_link_issued", "document_integrity_failed", "document_checked_late", "document_purged"}
)


def customer_view(timeline: list[dict[str, Any]], decisions: list[dict[str, Any]]) -> None:
    """The appeal page's timeline and decision rows (as dicts), rewritten in place for the
    customer: roles instead of the staff who acted, were assigned or decided, and none of the
    staff's housekeeping events."""
    timeline[:] = [event for event in timeline if event["kind"] not in STAFF_ONLY_EVENTS]
    for event in timeline:
        event["actor"] = public_actor(event["actor"])
        event["details"] = public_details(event["details"])
    for decision in decisions:
        decision["decided_by"] = public_decider(decision["decided_by"])
