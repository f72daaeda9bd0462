"""deploy/ (Prometheus, Grafana) checked as data against docker-compose.yml, the settings, the
metrics the code defines and docs/metrics.md. That the dashboard's metrics are really exposed is
checked on a live scrape by tests/e2e/test_walkthrough.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import temporalio
import yaml

from api.metrics import DURATION, REQUESTS
from core.business_metrics import BusinessCounts, DecisionTimes
from launcher.worker_metrics import business_families
from tests.deploy_config import (
    DASHBOARD,
    DEPLOY,
    EMITTED_ON_FAILURE,
    PROMETHEUS_CONFIG,
    ROOT,
    dashboard,
    dashboard_metric_names,
    expressions,
    panels,
)
from tests.test_docker_compose import COMPOSE_FILE, command_list, environment_of

DOCS = ROOT / "docs" / "metrics.md"
_HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load(COMPOSE_FILE.read_text())
    services: dict[str, Any] = compose["services"]
    return services


def _targets() -> dict[str, list[str]]:
    """Each job's targets as `service:port`: static ones, and those found by DNS (every
    container of a compose service)."""
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    targets: dict[str, list[str]] = {}
    for job in config["scrape_configs"]:
        found = [t for static in job.get("static_configs", []) for t in static["targets"]]
        for dns in job.get("dns_sd_configs", []):
            assert dns["type"] == "A", job
            found += [f"{name}:{dns['port']}" for name in dns["names"]]
        targets[job["job_name"]] = found
    return targets


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """Container path -> host path of a service's bind mounts (relative to the compose file)."""
    mounts = {}
    for volume in service.get("volumes") or []:
        host, container, *_ = str(volume).split(":")
        if host.startswith("."):
            mounts[container] = host
    return mounts


def test_prometheus_scrapes_the_api_and_both_worker_endpoints_where_compose_serves_them(
    services: dict[str, Any],
) -> None:
    targets = _targets()
    assert targets == {
        "appeals-api": ["api:8000"],
        "appeals-worker-sdk": ["worker:9464"],
        "appeals-worker-business": ["worker:9465"],
    }
    api_command = command_list(services["api"])
    assert api_command[api_command.index("--port") + 1] == "8000"
    worker_env = environment_of(services["worker"])
    assert worker_env["APPEALS_WORKER_METRICS_HOST"] == "0.0.0.0"  # reachable from prometheus
    assert worker_env["APPEALS_WORKER_METRICS_PORT"] == "9464"
    assert worker_env["APPEALS_BUSINESS_METRICS_PORT"] == "9465"
    for target in (t for ts in targets.values() for t in ts):
        assert target.split(":")[0] in services, target


def test_prometheus_and_grafana_run_with_the_repository_config(services: dict[str, Any]) -> None:
    prometheus, grafana = services["prometheus"], services["grafana"]
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    mounted = _mounts(prometheus)
    assert (COMPOSE_FILE.parent / mounted[config_flag.split("=", 1)[1]]).resolve() == PROMETHEUS_CONFIG
    mounted = _mounts(grafana)
    provisioning = (COMPOSE_FILE.parent / mounted["/etc/grafana/provisioning"]).resolve()
    assert provisioning == DEPLOY / "grafana" / "provisioning"
    providers = yaml.safe_load((provisioning / "dashboards" / "appeals.yml").read_text())["providers"]
    dashboards_in_container = providers[0]["options"]["path"]
    assert (COMPOSE_FILE.parent / mounted[dashboards_in_container]).resolve() == DASHBOARD.parent
    datasource = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())["datasources"][
        0
    ]
    assert datasource["url"] == "http://prometheus:9090" and "9090" in str(prometheus["ports"])
    # Every panel queries that data source.
    for panel in panels():
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == datasource["uid"], panel["title"]
    assert environment_of(grafana)["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")


def test_the_dashboard_parses_and_every_panel_queries_a_metric() -> None:
    board = dashboard()
    assert board["uid"] == "appeals"
    ids = [panel["id"] for panel in panels(board)]
    assert len(ids) == len(set(ids))
    graphs = [panel for panel in panels(board) if panel["type"] != "row"]
    assert len(graphs) >= 25
    for panel in graphs:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            expr = target["expr"]
            assert re.search(r"\b(appeals|temporal)_\w+", expr), (panel["title"], expr)
            assert expr.count("(") == expr.count(")") and expr.count("[") == expr.count("]"), expr
            assert expr.count("{") == expr.count("}"), expr


def _documented() -> set[str]:
    return set(re.findall(r"^\| `((?:appeals|temporal)_\w+)` \|", DOCS.read_text(), flags=re.M))


def _defined_by_the_code() -> dict[str, str]:
    """Every appeals_ metric family the API and the worker define: name -> type."""
    counts = BusinessCounts(
        started={"customer": 1},
        open_appeals={"SUBMITTED": 1},
        closed={("automatic", "approved"): 1},
        decisions={("automatic", "approved"): DecisionTimes()},
        open_review_tasks={("review", "OPEN"): 1},
        notices={("appeal", "customer", "EMAIL", "SENT"): 1},
        document_rejections={"FILE_EMPTY": 1},
    )
    families = {f.name + ("_total" if f.type == "counter" else ""): f.type for f in business_families(counts)}
    families |= {
        "appeals_business_metrics_up": "gauge",
        "appeals_business_metrics_count_seconds": "gauge",
        REQUESTS + "_total": "counter",
        DURATION: "histogram",
    }
    return families


def test_docs_list_every_metric_the_code_defines_and_no_other() -> None:
    documented = {name for name in _documented() if name.startswith("appeals_")}
    assert documented == set(_defined_by_the_code())
    text = DOCS.read_text()
    for name, kind in _defined_by_the_code().items():
        row = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        assert f"| {kind}" in row, row


def test_every_metric_on_the_dashboard_is_documented() -> None:
    documented = _documented()
    for name in dashboard_metric_names():
        base = next(
            (
                name[: -len(s)]
                for s in _HISTOGRAM_SUFFIXES
                if name.endswith(s) and name[: -len(s)] in documented
            ),
            name,
        )
        assert base in documented, name
    # ... and every documented metric is on the dashboard.
    on_board = {
        n for n in documented if any(re.search(rf"\b{n}(_bucket|_sum|_count)?\b", e) for e in expressions())
    }
    assert on_board == documented, documented - on_board


def test_failure_counters_are_names_the_sdk_emits() -> None:
    """The dashboard's failure counters cannot be seen in a scrape until something fails: the
    names are checked in the SDK's core library instead (the Rust core names its metrics
    without the `temporal_` prefix and the `_total` suffix the exporter adds)."""
    library = next((Path(temporalio.__file__).parent / "bridge").glob("temporal_sdk_bridge*"))
    data = library.read_bytes()
    for name in EMITTED_ON_FAILURE:
        core_name = name.removeprefix("temporal_").removesuffix("_total")
        assert core_name.encode() in data, name
