"""Bearer JWTs: minting (dev tokens) and verification with a pinned algorithm."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import jwt

from core.errors import Unauthorized
from core.settings import Settings


class Role(StrEnum):
    CUSTOMER = "customer"
    REVIEWER = "reviewer"
    SENIOR_REVIEWER = "senior_reviewer"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


# Who may work a task that requires a role: seniors and supervisors can take any review.
ROLES_SATISFYING: dict[str, frozenset[Role]] = {
    "reviewer": frozenset({Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SUPERVISOR}),
    "senior_reviewer": frozenset({Role.SENIOR_REVIEWER, Role.SUPERVISOR}),
}
STAFF_ROLES = frozenset({Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SUPERVISOR, Role.ADMIN})


def required_roles_for(role: Role) -> list[str]:
    """The task roles a member of staff may take."""
    return [required for required, roles in ROLES_SATISFYING.items() if role in roles]


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role

    @property
    def actor(self) -> str:
        return f"{self.role.value}:{self.subject}"


def mint_token(settings: Settings, *, role: Role, subject: str) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "role": role.value,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + settings.jwt_ttl,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=settings.jwt_algorithm)


def verify_token(settings: Settings, token: str) -> Principal:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            # Pinned: a token may not pick its own algorithm ("none", or RS/HS confusion).
            algorithms=[settings.jwt_algorithm],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("The token has expired.", code="token_expired") from exc
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"The token is not valid: {exc}.", code="invalid_token") from exc
    try:
        role = Role(str(claims.get("role")))
    except ValueError as exc:
        raise Unauthorized("The token carries no known role.", code="invalid_token") from exc
    return Principal(subject=str(claims["sub"]), role=role)
