"""The observability config in deploy/ (Prometheus, Grafana), read as data by the tests."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
PROMETHEUS_CONFIG = DEPLOY / "prometheus" / "prometheus.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "appeals.json"
# A metric name in a PromQL expression: ours and the Temporal SDK's (functions, labels and
# keywords never start so).
# Counters of the Temporal SDK that exist from their first increment on: a walkthrough with no
# failure never sees them (tests/test_observability_config.py finds each name in the SDK).
EMITTED_ON_FAILURE = frozenset(
    {
        "temporal_activity_execution_failed_total",
        "temporal_workflow_failed_total",
        "temporal_workflow_task_execution_failed_total",
        "temporal_request_failure_total",
    }
)
_METRIC = re.compile(r"\b((?:appeals|temporal)_[a-zA-Z0-9_]+)\b")


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels(board: dict[str, Any] | None = None) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    for panel in (board or dashboard())["panels"]:
        yield panel
        yield from panel.get("panels", [])


def expressions(board: dict[str, Any] | None = None) -> list[str]:
    return [target["expr"] for panel in panels(board) for target in panel.get("targets", [])]


def dashboard_metric_names() -> set[str]:
    """The metric names (as exposed: `_total`, `_bucket` ... included) the dashboard queries."""
    return {name for expr in expressions() for name in _METRIC.findall(expr)}
