from datetime import timedelta

import jwt
import pytest
from pydantic import ValidationError

from core.auth import Role, mint_token, verify_token
from core.clock import SYSTEM_CLOCK
from core.errors import Unauthorized
from core.settings import DEV_JWT_SECRET, Environment, Settings


def test_round_trip() -> None:
    settings = Settings()
    principal = verify_token(settings, mint_token(settings, role=Role.REVIEWER, subject="r-9"))
    assert (principal.role, principal.subject) == (Role.REVIEWER, "r-9")


@pytest.mark.parametrize(
    "token_factory",
    [
        lambda s: jwt.encode(
            {
                "sub": "c-1",
                "role": "customer",
                "iss": s.jwt_issuer,
                "exp": SYSTEM_CLOCK.now() + timedelta(hours=1),
            },
            "",
            algorithm="none",
        ),
        lambda s: jwt.encode(
            {
                "sub": "c-1",
                "role": "customer",
                "iss": s.jwt_issuer,
                "exp": SYSTEM_CLOCK.now() + timedelta(hours=1),
            },
            "x" * 40,
            algorithm="HS256",
        ),
        lambda s: jwt.encode(
            {
                "sub": "c-1",
                "role": "customer",
                "iss": s.jwt_issuer,
                "exp": SYSTEM_CLOCK.now() - timedelta(seconds=1),
            },
            s.jwt_secret,
            algorithm="HS256",
        ),
        lambda s: jwt.encode(
            {
                "sub": "c-1",
                "role": "root",
                "iss": s.jwt_issuer,
                "exp": SYSTEM_CLOCK.now() + timedelta(hours=1),
            },
            s.jwt_secret,
            algorithm="HS256",
        ),
        lambda s: jwt.encode(
            {
                "sub": "c-1",
                "role": "customer",
                "iss": s.jwt_issuer,
                "exp": SYSTEM_CLOCK.now() + timedelta(hours=1),
            },
            s.jwt_secret,
            algorithm="HS512",
        ),
        lambda s: "not-a-token",
    ],
    ids=["alg-none", "wrong-secret", "expired", "unknown-role", "other-algorithm", "garbage"],
)
# The HS512 token is signed with the service's HS256 secret on purpose (algorithm confusion);
# PyJWT warns that the key is short for HS512.
@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_bad_tokens_are_refused(token_factory) -> None:  # type: ignore[no-untyped-def]
    settings = Settings()
    with pytest.raises(Unauthorized):
        verify_token(settings, token_factory(settings))


def test_production_refuses_the_development_secret() -> None:
    with pytest.raises(ValidationError, match="APPEALS_JWT_SECRET"):
        Settings(environment=Environment.PRODUCTION, jwt_secret=DEV_JWT_SECRET)
    with pytest.raises(ValidationError):
        Settings(environment=Environment.PRODUCTION, jwt_secret="short")
    # A secret of the right length is not enough: 32 x "a" (the security probe's) is refused.
    for weak in ("a" * 32, "ab" * 20, "password-change-me-0123456789abcdef"):
        with pytest.raises(ValidationError, match="APPEALS_JWT_SECRET"):
            Settings(environment=Environment.PRODUCTION, jwt_secret=weak)
    strong = "7c1f3e9a2b8d4f6a0e5c7b9d1a3f5e7c"  # as `openssl rand -hex 16` prints
    assert Settings(environment=Environment.PRODUCTION, jwt_secret=strong).jwt_secret == strong
