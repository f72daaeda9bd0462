"""GET /metrics and the request metrics (api/metrics.py) on the real app, in this process."""

from __future__ import annotations

import uuid
from pathlib import Path

from api.metrics import HttpMetrics
from core.settings import Settings
from tests.api.conftest import offline_app
from tests.conftest import make_settings
from tests.metrics_text import parse_samples, value


async def test_requests_are_counted_by_route_template_method_and_status(tmp_path: Path) -> None:
    settings: Settings = make_settings(tmp_path)
    ids = [str(uuid.uuid4()) for _ in range(3)]
    async with offline_app(settings, tmp_path) as (http, _engine, _app):
        for appeal_id in ids:
            assert (await http.get(f"/appeals/{appeal_id}")).status_code == 401
        assert (await http.get("/health/live")).status_code == 200
        assert (await http.get(f"/no-such-page/{ids[0]}")).status_code == 404
        # Refused by the request guard (no token) before routing: still counted under its route.
        refused = await http.post("/appeals", json={"account_id": "a", "requested_limit_minor": 1})
        assert refused.status_code == 401, refused.text
        page = await http.get("/metrics")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/plain")
    samples = parse_samples(page.text)
    counted = "appeals_http_requests_total"
    assert value(samples, counted, method="GET", route="/appeals/{appeal_id}", status="401") == 3
    assert value(samples, counted, method="GET", route="/health/live", status="200") == 1
    assert value(samples, counted, method="GET", route="unmatched", status="404") == 1
    assert value(samples, counted, method="POST", route="/appeals", status="401") == 1
    # The histogram counts the same requests.
    timed = "appeals_http_request_duration_seconds_count"
    assert value(samples, timed, method="GET", route="/appeals/{appeal_id}", status="401") == 3
    assert (
        value(
            samples,
            "appeals_http_request_duration_seconds_sum",
            method="GET",
            route="/health/live",
            status="200",
        )
        > 0
    )
    # No path a client sent, so no id, is a label anywhere.
    assert not any(appeal_id in page.text for appeal_id in ids)
    routes = {dict(labels)["route"] for name, labels in samples if name == counted}
    assert routes == {"/appeals/{appeal_id}", "/health/live", "unmatched", "/appeals"}


async def test_metrics_is_not_in_the_openapi_document_and_needs_no_token(tmp_path: Path) -> None:
    async with offline_app(make_settings(tmp_path), tmp_path) as (http, _engine, app):
        assert "/metrics" not in app.openapi()["paths"]
        first = await http.get("/metrics")
        second = await http.get("/metrics")
    assert first.status_code == second.status_code == 200
    # A scrape is a request like any other: the second one sees the first.
    assert (
        value(
            parse_samples(second.text),
            "appeals_http_requests_total",
            method="GET",
            route="/metrics",
            status="200",
        )
        == 1
    )


async def test_static_files_are_counted_under_their_mount(tmp_path: Path) -> None:
    async with offline_app(make_settings(tmp_path), tmp_path) as (http, _engine, _app):
        assert (await http.get("/static/favicon.svg")).status_code == 200
        page = await http.get("/metrics")
    samples = parse_samples(page.text)
    assert (
        value(samples, "appeals_http_requests_total", method="GET", route="/static/{path}", status="200") == 1
    )


async def test_a_made_up_method_is_one_label(tmp_path: Path) -> None:
    async with offline_app(make_settings(tmp_path), tmp_path) as (http, _engine, app):
        for method in ("BREW", "WHEN", "PROPFIND"):
            assert (await http.request(method, "/health/live")).status_code == 405
        page = await http.get("/metrics")
        metrics = next(m.kwargs["metrics"] for m in app.user_middleware if "metrics" in m.kwargs)
    assert isinstance(metrics, HttpMetrics)
    samples = parse_samples(page.text)
    counted = "appeals_http_requests_total"
    assert value(samples, counted, method="OTHER", route="/health/live", status="405") == 3
    assert len(metrics._children) == 2  # OTHER /health/live 405, and GET /metrics
