"""The API's short reads run on threads of their own (api/db_reads.py): long work that holds
anyio's default pool (uploads streamed from slow clients) never holds them up."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from anyio import to_thread

from core.auth import Role, mint_token
from core.settings import Settings
from tests.api.conftest import offline_app
from tests.eventually import eventually, patience


async def test_reads_answer_while_every_default_thread_is_taken(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, api_read_threads=3)
    reviewer = {"Authorization": f"Bearer {mint_token(settings, role=Role.REVIEWER, subject='r-1')}"}
    async with offline_app(settings, tmp_path) as (http, _, app):
        assert app.state.reads.threads == 3
        pool = to_thread.current_default_thread_limiter()
        release = threading.Event()
        holders = [
            asyncio.create_task(to_thread.run_sync(release.wait)) for _ in range(int(pool.total_tokens))
        ]
        try:
            await eventually(lambda: pool.borrowed_tokens == pool.total_tokens, what="default pool taken")
            queue, appeal = await asyncio.wait_for(
                asyncio.gather(
                    http.get("/review-tasks", headers=reviewer),
                    http.get("/appeals/no-such-appeal", headers=reviewer),
                ),
                patience(30),
            )
        finally:
            release.set()
            await asyncio.gather(*holders)
    assert queue.status_code == 200, queue.text
    assert queue.json()["total"] == 0
    assert appeal.status_code == 404, appeal.text
    assert appeal.json()["code"] == "appeal_not_found"
