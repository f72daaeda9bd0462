"""APPEALS_RISK_EVENT_SECRET: optional; production refuses a weak one. APPEALS_PUBLIC_URL: the
portal notices link to."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from core.settings import Environment, Settings

STRONG_JWT = "7c1f3e9a2b8d4f6a0e5c7b9d1a3f5e7c"


def test_production_refuses_a_weak_risk_event_secret() -> None:
    for weak in ("short", "a" * 40, "risk-change-me-0123456789abcdef0123"):
        with pytest.raises(ValidationError, match="APPEALS_RISK_EVENT_SECRET"):
            Settings(environment=Environment.PRODUCTION, jwt_secret=STRONG_JWT, risk_event_secret=weak)  # type: ignore[arg-type]
    strong = "9e2d4c6b8a0f1e3d5c7b9a2f4e6d8c0b"
    settings = Settings(environment=Environment.PRODUCTION, jwt_secret=STRONG_JWT, risk_event_secret=strong)  # type: ignore[arg-type]
    assert settings.risk_event_secret is not None and settings.risk_event_secret.get_secret_value() == strong
    assert Settings(environment=Environment.PRODUCTION, jwt_secret=STRONG_JWT).risk_event_secret is None
    assert Settings(risk_event_secret="dev").risk_event_secret is not None  # type: ignore[arg-type]


def test_the_portal_url() -> None:
    assert Settings(api_host="127.0.0.1", api_port=8000).portal_url == "http://127.0.0.1:8000/app"
    assert Settings(public_url="https://appeals.example.com/").portal_url == "https://appeals.example.com/app"
