"""The access line: one JSON line per request with the route's template, never the query
string, and the request's context (the caller's role, the path's appeal id)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from api.request_log import ACCESS_LOGGER
from core.auth import Role, mint_token
from core.logs import REQUIRED_FIELDS, JsonFormatter
from core.settings import Settings
from launcher.stack import free_port
from tests.api.conftest import offline_app

pytestmark = pytest.mark.asyncio(loop_scope="session")


class _Lines(logging.Handler):
    """Formats as the process's handler does: at emit time, inside the request's context."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[tuple[int, dict[str, Any]]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelno, json.loads(self.format(record))))


@pytest.fixture
def access_lines() -> Iterator[_Lines]:
    handler, logger = _Lines(), logging.getLogger(ACCESS_LOGGER)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_one_line_per_request_with_route_role_and_ids(tmp_path: Path, access_lines: _Lines) -> None:
    settings = Settings(data_dir=tmp_path, temporal_address=f"127.0.0.1:{free_port()}")
    token = mint_token(settings, role=Role.CUSTOMER, subject="c-1002")
    async with offline_app(settings, tmp_path) as (http, _engine, _app):
        missing = await http.get(
            "/appeals/a-404?email=li.wei@example.test", headers={"Authorization": f"Bearer {token}"}
        )
        assert missing.status_code == 404
        await http.get("/no-such-page?name=Li+Wei")
        await http.get("/health/live")

    (level, appeal), (_, unmatched), (health_level, health) = access_lines.lines
    assert set(REQUIRED_FIELDS) <= appeal.keys()
    assert level == logging.INFO and appeal["event"] == "http_request"
    assert (appeal["method"], appeal["route"], appeal["status"]) == ("GET", "/appeals/{appeal_id}", 404)
    assert (appeal["appeal_id"], appeal["actor_role"]) == ("a-404", "customer")
    assert isinstance(appeal["duration_ms"], float)
    assert (unmatched["route"], unmatched["status"]) == ("unmatched", 404)
    assert "actor_role" not in unmatched  # no token, no role
    # Health checks are not per-request noise at INFO.
    assert (health_level, health["route"], health["status"]) == (logging.DEBUG, "/health/live", 200)
    text = json.dumps(access_lines.lines)
    for hidden in ("li.wei", "Li+Wei", "Li Wei", "?"):
        assert hidden not in text
