"""Bearer JWTs: minting (dev tokens) and verification with a pinned algorithm."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import jwt

from core.clock import SYSTEM_CLOCK
from core.errors import Unauthorized
from core.reviews.rules import ROLES_FOR_TASK
from core.settings import Settings

log = logging.getLogger(__name__)


class Role(StrEnum):
    CUSTOMER = "customer"
    REVIEWER = "reviewer"
    SENIOR_REVIEWER = "senior_reviewer"
    SUPERVISOR = "supervisor"
    ADMIN = "admin"


# Who may work a task that requires a role: seniors and supervisors can take any review (the
# rule is core/reviews/rules.py's, which the workflow's decision validator reads too).
ROLES_SATISFYING: dict[str, frozenset[Role]] = {
    required: frozenset(Role(role) for role in roles) for required, roles in ROLES_FOR_TASK.items()
}
STAFF_ROLES = frozenset({Role.REVIEWER, Role.SENIOR_REVIEWER, Role.SUPERVISOR, Role.ADMIN})
# The staff roles, most privileged first: a person given several acts with the first they hold.
STAFF_RANK: tuple[Role, ...] = (Role.ADMIN, Role.SUPERVISOR, Role.SENIOR_REVIEWER, Role.REVIEWER)
# Who manages the queue: reassigns tasks and releases anyone's claim.
SUPERVISING_ROLES = frozenset({Role.SUPERVISOR, Role.ADMIN})


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


def mint_token(settings: Settings, *, role: Role, subject: str, now: datetime | None = None) -> str:
    """A signed token issued at `now` (default: the system clock's; PyJWT checks `exp` against
    the machine's clock when the token is verified)."""
    now = now or SYSTEM_CLOCK.now()
    claims = {
        "sub": subject,
        "role": role.value,
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + settings.jwt_ttl,
    }
    return jwt.encode(claims, settings.jwt_secret, algorithm=settings.jwt_algorithm)


SIGN_IN_AGAIN = "Sign in again, or in development mint a new token with `appeals token`."

# What is wrong with a refused token, for a person: (error, reason, text). The most specific
# class first (InvalidSignatureError is a DecodeError). The library's own message stays in the
# log at debug: a person cannot act on "Not enough segments".
_TOKEN_PROBLEMS: tuple[tuple[type[jwt.InvalidTokenError], str, str], ...] = (
    (jwt.ExpiredSignatureError, "expired", "The bearer token has expired."),
    (
        jwt.InvalidSignatureError,
        "bad_signature",
        "The bearer token's signature does not match: it was not issued by this service, or it was altered.",
    ),
    (
        jwt.DecodeError,
        "malformed",
        "The bearer token is malformed: it is not a complete signed token "
        "(check that it was copied whole, without quotes or line breaks).",
    ),
    (
        jwt.InvalidAlgorithmError,
        "wrong_algorithm",
        "The bearer token is signed with an algorithm this service does not accept.",
    ),
    (jwt.InvalidIssuerError, "wrong_issuer", "The bearer token was issued by another service."),
    (jwt.ImmatureSignatureError, "not_yet_valid", "The bearer token is not valid yet."),
    (jwt.MissingRequiredClaimError, "missing_claim", "The bearer token lacks a required claim."),
)


def _refused(reason: str, text: str, exc: Exception | None = None) -> Unauthorized:
    if exc is not None:
        log.debug("bearer token refused (%s): %s", reason, exc)
    # An expired token keeps its own code: clients refresh on it without reading `reason`.
    code = "token_expired" if reason == "expired" else "invalid_token"
    return Unauthorized(f"{text} {SIGN_IN_AGAIN}", code=code, reason=reason)


def missing_bearer(authorization: str) -> Unauthorized:
    """Why a request carries no usable bearer token, given its Authorization header (or "")."""
    scheme = authorization.strip().split(maxsplit=1)[0] if authorization.strip() else ""
    if not scheme:
        what = "A bearer token is required"
    elif scheme.lower() != "bearer":
        what = "The Authorization header does not use the Bearer scheme"
    else:
        what = "The Authorization header names the Bearer scheme but carries no token"
    return Unauthorized(
        f"{what}: send `Authorization: Bearer <token>`. {SIGN_IN_AGAIN}", code="missing_token"
    )


@dataclass(frozen=True)
class _Verified:
    """A token that passed every check: who it names and the times it is valid between."""

    principal: Principal
    expires: int  # `exp`: valid while now < expires
    not_before: int | None  # the later of `iat` and `nbf`: valid once now >= not_before


# Tokens already verified in this process, by (secret, algorithm, issuer, token): a client
# sends the same token with every request, and the signature check and claim parsing cost a
# tenth of a millisecond each time. Only valid tokens enter it (a made-up token costs its
# sender a full check every time); the time claims are checked again on every use, as PyJWT
# checks them, and a token past them is verified in full again (its refusal comes from there).
_verified: dict[tuple[str, str, str, str], _Verified] = {}
VERIFIED_TOKENS_KEPT = 4096


def verify_token(settings: Settings, token: str) -> Principal:
    """The caller of a valid token; Unauthorized saying, for a person, what is wrong otherwise.

    Every refusal has code `invalid_token` (`token_expired` for an expired one) and a stable
    `reason`: malformed, bad_signature, wrong_algorithm, expired, wrong_issuer, not_yet_valid,
    missing_claim, unknown_role, invalid_subject or invalid."""
    key = (settings.jwt_secret, settings.jwt_algorithm, settings.jwt_issuer, token)
    known = _verified.get(key)
    if known is not None:
        now = datetime.now(tz=UTC).timestamp()  # PyJWT's clock
        if now < known.expires and (known.not_before is None or known.not_before <= now):
            return known.principal
    principal, claims = _verify(settings, token)
    if len(_verified) >= VERIFIED_TOKENS_KEPT:
        _verified.clear()
    times = [int(claims[name]) for name in ("iat", "nbf") if name in claims]
    _verified[key] = _Verified(principal, int(claims["exp"]), max(times) if times else None)
    return principal


def _verify(settings: Settings, token: str) -> tuple[Principal, dict[str, Any]]:
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            # Pinned: a token may not pick its own algorithm ("none", or RS/HS confusion).
            algorithms=[settings.jwt_algorithm],
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.InvalidTokenError as exc:
        for kind, reason, text in _TOKEN_PROBLEMS:
            if isinstance(exc, kind):
                raise _refused(reason, text, exc) from exc
        raise _refused("invalid", "The bearer token is not valid.", exc) from exc
    try:
        role = Role(str(claims.get("role")))
    except ValueError as exc:
        raise _refused("unknown_role", "The bearer token carries no role this service knows.") from exc
    subject = claims["sub"]
    if not usable_subject(subject):
        raise _refused(
            "invalid_subject",
            "The bearer token does not say who you are: its `sub` claim is empty or not a usable id.",
        )
    return Principal(subject=subject, role=role), claims


MAX_SUBJECT_LENGTH = 200


def usable_subject(subject: object) -> bool:
    """An id that names one person: a non-empty string without spaces or control characters
    (a NUL byte would reach the database), at most MAX_SUBJECT_LENGTH characters."""
    return (
        isinstance(subject, str)
        and 0 < len(subject) <= MAX_SUBJECT_LENGTH
        and subject.isprintable()
        and not any(ch.isspace() for ch in subject)
    )
