"""`GET /admin/portfolio-reviews`: the review's last runs for supervisors and admins, newest
first; anyone else is refused with a problem, and a bad limit is a 422 problem."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from core.auth import Role, mint_token
from core.db import session_scope
from core.db.review_tables import ReviewRun
from core.settings import Settings
from tests.api.conftest import offline_app

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBLEM = "application/problem+json"


def _auth(settings: Settings, role: Role, sub: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint_token(settings, role=role, subject=sub)}"}


async def test_supervisors_and_admins_read_the_last_runs(settings: Settings, tmp_path: Path) -> None:
    async with offline_app(settings, tmp_path) as (http, engine, _app):
        start = datetime(2026, 6, 1, 1, tzinfo=UTC)
        with session_scope(engine) as session:
            for day in range(3):
                session.add(
                    ReviewRun(
                        run_date=date(2026, 6, 1) + timedelta(days=day),
                        workflow_id=f"portfolio-review-appeals-{day}",
                        started_at=start + timedelta(days=day),
                        finished_at=start + timedelta(days=day, seconds=42),
                        duration_seconds=42.0,
                        counts={
                            "examined": 10,
                            "restored": 2,
                            "invited": 3,
                            "nothing": 5,
                            "already_decided": 0,
                        },
                        policy_id="limit-restore-v1",
                    )
                )
        for role in (Role.SUPERVISOR, Role.ADMIN):
            answer = await http.get(
                "/admin/portfolio-reviews",
                params={"limit": 2},
                headers=_auth(settings, role, f"{role.value}-1"),
            )
            assert answer.status_code == 200, answer.text
            items = answer.json()["items"]
            assert [i["run_date"] for i in items] == ["2026-06-03", "2026-06-02"]
            assert items[0]["counts"]["restored"] == 2 and items[0]["duration_seconds"] == 42.0

        for role in (Role.CUSTOMER, Role.REVIEWER, Role.SENIOR_REVIEWER):
            refused = await http.get("/admin/portfolio-reviews", headers=_auth(settings, role, "x-1"))
            assert refused.status_code == 403 and refused.headers["content-type"].startswith(PROBLEM)
            assert refused.json()["code"] == "role_required"
        bad = await http.get(
            "/admin/portfolio-reviews", params={"limit": 0}, headers=_auth(settings, Role.ADMIN, "admin-1")
        )
        assert bad.status_code == 422 and bad.headers["content-type"].startswith(PROBLEM)
        assert (await http.get("/admin/portfolio-reviews")).status_code == 401
