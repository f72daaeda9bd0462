"""The staff directory on SQLite and PostgreSQL: whose roles count, what sign-in records, who
can be handed a task, and what customers see of the staff (issue 13, items 1 and 9)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from core import staff
from core.auth import Principal, Role
from core.db import session_scope
from core.db.staff_tables import ManagedBy, StaffMember
from core.errors import Conflict, Forbidden, InvalidInput
from tests.staff_directory import add_staff

AT = datetime(2027, 2, 28, 9, 0, tzinfo=UTC)


def _entry(engine: Engine, staff_id: str) -> StaffMember | None:
    with session_scope(engine, read_only=True) as session:
        return session.get(StaffMember, staff_id)


def test_the_directory_decides_how_a_known_caller_acts(engine: Engine) -> None:
    senior = Principal("s-1", Role.SENIOR_REVIEWER)
    with session_scope(engine) as session:
        # Unknown to the directory: their verified token's role stands.
        assert staff.acting_principal(session, senior) == senior
    add_staff(engine, "s-1", Role.REVIEWER)  # demoted by an admin since the token was issued
    with session_scope(engine) as session, pytest.raises(Forbidden) as not_held:
        staff.acting_principal(session, senior)
    assert not_held.value.code == "staff_role_not_held"
    assert "does not give you the senior_reviewer role (it gives: reviewer)" in not_held.value.detail
    with session_scope(engine) as session:
        assert staff.acting_principal(session, Principal("s-1", Role.REVIEWER)).role is Role.REVIEWER
    add_staff(engine, "s-1", Role.SENIOR_REVIEWER, active=False)
    with session_scope(engine) as session, pytest.raises(Forbidden) as inactive:
        staff.acting_principal(session, senior)
    assert inactive.value.code == "staff_inactive"
    # Customers are never in it.
    with session_scope(engine) as session:
        customer = Principal("s-1", Role.CUSTOMER)
        assert staff.acting_principal(session, customer) == customer


def test_an_assignee_is_looked_up_never_believed(engine: Engine) -> None:
    add_staff(engine, "r-2", Role.REVIEWER)
    add_staff(engine, "sup-2", Role.SUPERVISOR, Role.REVIEWER)
    add_staff(engine, "s-3", Role.SENIOR_REVIEWER, active=False)
    with session_scope(engine) as session:
        assert staff.assignee(session, "r-2", "reviewer") == Principal("r-2", Role.REVIEWER)
        # The most privileged role that may work the task.
        assert staff.assignee(session, "sup-2", "senior_reviewer") == Principal("sup-2", Role.SUPERVISOR)
        with pytest.raises(Conflict) as not_senior:
            staff.assignee(session, "r-2", "senior_reviewer")
        assert not_senior.value.code == "task_not_assignable"
        with pytest.raises(Conflict) as inactive:
            staff.assignee(session, "s-3", "senior_reviewer")
        assert inactive.value.code == "staff_member_inactive"
        for nobody in ("r-9", "", "r-1\x00"):
            with pytest.raises(InvalidInput) as unknown:
                staff.assignee(session, nobody, "reviewer")
            assert unknown.value.code == "unknown_staff_member"


def test_sign_in_follows_the_identity_provider_until_an_admin_keeps_the_entry(engine: Engine) -> None:
    r5 = Principal("r-5", Role.REVIEWER)
    with session_scope(engine) as session:
        assert staff.sign_in(session, r5, [Role.REVIEWER], at=AT) == r5
    first = _entry(engine, "r-5")
    assert first is not None and first.roles == ["reviewer"]
    assert first.managed_by is ManagedBy.IDENTITY_PROVIDER
    # Promoted at the identity provider: the next sign-in says so, most privileged first.
    with session_scope(engine) as session:
        promoted = staff.sign_in(
            session, Principal("r-5", Role.SENIOR_REVIEWER), [Role.REVIEWER, Role.SENIOR_REVIEWER], at=AT
        )
    assert promoted.role is Role.SENIOR_REVIEWER
    entry = _entry(engine, "r-5")
    assert entry is not None and entry.roles == ["senior_reviewer", "reviewer"]
    # An admin keeps the entry: sign-ins no longer change it, and the session acts as it says.
    add_staff(engine, "r-5", Role.REVIEWER)
    with session_scope(engine) as session:
        kept = staff.sign_in(session, Principal("r-5", Role.SENIOR_REVIEWER), [Role.SENIOR_REVIEWER], at=AT)
    assert kept.role is Role.REVIEWER
    entry = _entry(engine, "r-5")
    assert entry is not None and entry.roles == ["reviewer"] and entry.managed_by is ManagedBy.ADMIN
    add_staff(engine, "r-5", Role.REVIEWER, active=False)
    with session_scope(engine) as session, pytest.raises(Forbidden) as refused:
        staff.sign_in(session, r5, [Role.REVIEWER], at=AT)
    assert refused.value.code == "staff_inactive"
    # A customer signs in as they are and is not recorded.
    with session_scope(engine) as session:
        customer = Principal("c-1", Role.CUSTOMER)
        assert staff.sign_in(session, customer, [Role.CUSTOMER], at=AT) == customer
    assert _entry(engine, "c-1") is None


def test_customers_see_roles_not_people() -> None:
    timeline: list[dict[str, Any]] = [
        {"kind": "claimed", "actor": "reviewer:r-1", "details": {"task_id": "t", "reviewer": "r-1"}},
        {"kind": "document_link_issued", "actor": "reviewer:r-1", "details": {"document_id": "d"}},
        {
            "kind": "reassigned",
            "actor": "supervisor:sup-1",
            "details": {
                "task_id": "t",
                "before": {"status": "CLAIMED", "assignee": "r-1"},
                "after": {"status": "CLAIMED", "assignee": "r-2"},
            },
        },
        {"kind": "status_changed", "actor": "workflow", "details": {"assignee": None, "stage": 2}},
        {"kind": "document_checked_late", "actor": "reconciler", "details": {"document_id": "d"}},
        {"kind": "status_changed", "actor": "customer:c-1", "details": {"human_review": True}},
    ]
    decisions: list[dict[str, Any]] = [{"decided_by": "s-2", "outcome": "APPROVE"}]
    staff.customer_view(timeline, decisions)
    assert [e["actor"] for e in timeline] == ["reviewer", "supervisor", "workflow", "customer"]
    assert timeline[0]["details"] == {"task_id": "t", "reviewer": "staff"}
    assert timeline[1]["details"]["before"] == {"status": "CLAIMED", "assignee": "staff"}
    assert timeline[1]["details"]["after"] == {"status": "CLAIMED", "assignee": "staff"}
    assert timeline[2]["details"] == {"assignee": None, "stage": 2}
    assert decisions == [{"decided_by": "reviewer", "outcome": "APPROVE"}]


def test_the_demo_stack_knows_its_staff(engine: Engine) -> None:
    """`appeals dev` seeds the demo staff, so a supervisor can hand a second review to s-2
    before s-2 has ever signed in; their entries still follow their sign-ins."""
    from core.seed import DEMO_STAFF, seed_demo_staff

    with session_scope(engine) as session:
        seed_demo_staff(session, AT)
        seed_demo_staff(session, AT)  # again, as on every start of `appeals dev`
    with session_scope(engine, read_only=True) as session:
        assert [(m.id, m.roles) for m in staff.list_members(session)] == sorted(
            (subject, [role.value]) for subject, role in DEMO_STAFF
        )
        assert staff.assignee(session, "s-2", Role.SENIOR_REVIEWER.value).subject == "s-2"
    entry = _entry(engine, "r-1")
    assert entry is not None and entry.managed_by is ManagedBy.IDENTITY_PROVIDER
