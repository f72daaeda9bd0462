"""The worker runs the tracing interceptor once: from its client when the client has it
(`appeals worker` connects so), else from its own list; and the sandbox passes opentelemetry
through only when tracing is on."""

from __future__ import annotations

from typing import Any, cast

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio.client import Client
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from core.tracing import WORKER_SERVICE, Tracing
from launcher.worker import traced_runner, tracing_interceptors


class _Client:
    def __init__(self, interceptors: list[Any]) -> None:
        self._interceptors = interceptors

    def config(self) -> dict[str, Any]:
        return {"interceptors": self._interceptors}


def test_the_tracing_interceptor_runs_once() -> None:
    tracing = Tracing(InMemorySpanExporter(), WORKER_SERVICE, batch=False)
    plain, traced = cast(Client, _Client([])), cast(Client, _Client([tracing.interceptor]))
    assert tracing_interceptors(plain, tracing) == [tracing.interceptor]
    assert tracing_interceptors(traced, tracing) == []
    assert tracing_interceptors(plain, None) == []


def test_the_sandbox_passes_opentelemetry_through_only_when_tracing() -> None:
    assert traced_runner(None) == {}
    runner = traced_runner(Tracing(InMemorySpanExporter(), WORKER_SERVICE, batch=False))["workflow_runner"]
    assert isinstance(runner, SandboxedWorkflowRunner)
    assert "opentelemetry" in runner.restrictions.passthrough_modules
