import time
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


def test_a_verified_token_is_refused_once_it_expires() -> None:
    """Verified tokens are kept per process; their time claims are checked on every use."""
    settings = Settings()
    token = mint_token(
        settings,
        role=Role.CUSTOMER,
        subject="c-expiring",
        now=SYSTEM_CLOCK.now() - settings.jwt_ttl + timedelta(seconds=2),
    )
    assert verify_token(settings, token).subject == "c-expiring"
    assert verify_token(settings, token).subject == "c-expiring"  # the kept verdict
    time.sleep(2.5)
    with pytest.raises(Unauthorized) as refused:
        verify_token(settings, token)
    assert refused.value.code == "token_expired"


def test_a_verified_token_is_not_valid_under_another_secret() -> None:
    settings = Settings()
    token = mint_token(settings, role=Role.REVIEWER, subject="r-kept")
    assert verify_token(settings, token).subject == "r-kept"
    other = Settings(jwt_secret="a-different-secret-for-this-test-0123456789xyz")
    with pytest.raises(Unauthorized) as refused:
        verify_token(other, token)
    assert refused.value.extra["reason"] == "bad_signature"
