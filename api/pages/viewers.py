"""Who may open which pages: the same roles the JSON API checks (api/deps.py)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.pages.session import forbid_unless, require_signed_in
from core.auth import STAFF_ROLES, Principal, Role

SUPERVISING_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})


def customer_viewer(request: Request) -> Principal:
    principal = require_signed_in(request)
    forbid_unless(principal.role is Role.CUSTOMER, "customers")
    return principal


def staff_viewer(request: Request) -> Principal:
    principal = require_signed_in(request)
    forbid_unless(principal.role in STAFF_ROLES, "reviewers and their supervisors")
    return principal


def supervisor_viewer(request: Request) -> Principal:
    principal = require_signed_in(request)
    forbid_unless(principal.role in SUPERVISING_ROLES, "supervisors")
    return principal


def home_for(principal: Principal) -> str:
    if principal.role is Role.CUSTOMER:
        return "/app"
    if principal.role in SUPERVISING_ROLES:
        return "/dashboard"
    return "/review"


CustomerViewer = Annotated[Principal, Depends(customer_viewer)]
StaffViewer = Annotated[Principal, Depends(staff_viewer)]
SupervisorViewer = Annotated[Principal, Depends(supervisor_viewer)]
