"""`appeals api` with several uvicorn processes: /metrics counts every process's requests,
whichever process answers the scrape (PROMETHEUS_MULTIPROC_DIR, launcher/metrics_dir.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from core.db import make_engine
from core.db.migrate import upgrade
from core.settings import Settings
from launcher.metrics_dir import ENV, prepare_api_metrics_dir
from launcher.stack import ManagedProcess, free_port, http_ok, python_module, wait_until
from tests.eventually import eventually_sync
from tests.metrics_text import parse_samples, value


@pytest.fixture
def two_process_api(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    port = free_port()
    metrics_dir = tmp_path / "metrics" / f"api-{port}"
    # A file a previous run left: summed into this run's counts unless the start removes it.
    metrics_dir.mkdir(parents=True)
    (metrics_dir / "counter_1.db").write_bytes(b"left over")
    database_url = f"sqlite:///{tmp_path / 'appeals.db'}"
    engine = make_engine(database_url)
    upgrade(engine)  # `appeals api` serves a migrated database only
    engine.dispose()
    env = {
        "APPEALS_DATA_DIR": str(tmp_path),
        "APPEALS_DATABASE_URL": database_url,
        "APPEALS_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "APPEALS_S3_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}",
    }
    proc: ManagedProcess = python_module(
        "API", ["api", "--port", str(port), "--workers", "2"], env=env, log_path=tmp_path / "api.log"
    ).start()
    try:
        wait_until(lambda: http_ok(f"http://127.0.0.1:{port}/health/live"), proc, 60)
        yield f"http://127.0.0.1:{port}", metrics_dir
    finally:
        proc.stop()


def _pids_with_counts(metrics_dir: Path) -> set[str]:
    return {p.stem.rsplit("_", 1)[1] for p in metrics_dir.glob("counter_*.db")}


def test_metrics_count_the_requests_of_every_api_process(two_process_api: tuple[str, Path]) -> None:
    url, metrics_dir = two_process_api
    sent = 0

    def one_fresh_connection(_: int) -> int:
        # A connection per request: the kernel hands each to whichever process accepts first.
        return httpx.get(f"{url}/health/live", timeout=10).status_code

    def both_processes_counted() -> set[str]:
        nonlocal sent
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(one_fresh_connection, range(16)))
        assert codes == [200] * 16
        sent += 16
        return _pids_with_counts(metrics_dir)

    pids = eventually_sync(
        both_processes_counted, lambda pids: len(pids) >= 2, what="both processes to answer"
    )
    assert "1" not in pids  # the leftover file went at start

    # Scraped on fresh connections too: whichever process answers, it sums both.
    for _ in range(4):
        samples = parse_samples(httpx.get(f"{url}/metrics", timeout=10).text)
        assert (
            value(samples, "appeals_http_requests_total", method="GET", route="/health/live", status="200")
            == sent + 1
        )
        assert (
            value(
                samples,
                "appeals_http_request_duration_seconds_count",
                method="GET",
                route="/health/live",
                status="200",
            )
            == sent + 1
        )


def test_the_directory_is_emptied_and_named_for_the_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(ENV, raising=False)
    stale = tmp_path / "metrics" / "api-8000" / "histogram_42.db"
    stale.parent.mkdir(parents=True)
    stale.write_bytes(b"x")
    directory = prepare_api_metrics_dir(Settings(data_dir=tmp_path), 8000)
    assert directory == stale.parent.resolve() and list(directory.iterdir()) == []
    assert os.environ[ENV] == str(directory)
