"""Temporal actions counted from a workflow's real history (issue 11's rules, those of Temporal
Cloud's billing), for the action-budget test and bench/temporal_bench.py.

    history = await handle.fetch_history()
    count = count_actions(history, heartbeats=counter.for_workflow(handle.id))
    count.actions, count.history_events, count.workflow_tasks, count.breakdown()

What is one action, and where it is seen in the history:

- the workflow start: WorkflowExecutionStarted (1 per run);
- each activity scheduled: ActivityTaskScheduled; and each retry of one, which writes no event of
  its own: the `attempt` of its ActivityTaskStarted, minus one;
- each timer started: TimerStarted (a timer started and cancelled within one workflow task never
  reaches the server and is not counted, as it is not billed);
- each signal received: WorkflowExecutionSignaled;
- each accepted update: WorkflowExecutionUpdateAccepted (a rejected one is not in the history);
- each search-attribute upsert: UpsertWorkflowSearchAttributes;
- local activities at one per workflow task that runs any: the number of WorkflowTaskCompleted
  batches holding at least one MarkerRecorded named "core_local_activity" (the marker carries
  the id of the WorkflowTaskCompleted it was recorded with);
- a child workflow started (StartChildWorkflowExecutionInitiated) and a signal sent to another
  workflow (SignalExternalWorkflowExecutionInitiated): not used by AppealWorkflow today, counted
  so that a review stage moved to a child workflow is costed honestly;
- each heartbeat that reaches the server. Heartbeats are never in the history: they are counted
  on the worker by `HeartbeatCounter` (a client interceptor that is also a worker interceptor,
  so every worker built from the counting client has it) and passed in as `heartbeats`. The SDK
  sends an attempt's first heartbeat at once and then at most one per throttle interval (80% of
  the heartbeat timeout, or 30 s without one); the counter models that, so it cannot see a
  heartbeat the SDK dropped because the activity completed first (an over-count by at most one
  per attempt). Without a counter (`heartbeats=None`) they are reported as not observed.

Also reported, not actions: the history's events and its workflow tasks (WorkflowTaskCompleted),
with failed or timed-out workflow tasks apart (a sign of a bug, never expected).
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from datetime import timedelta
from typing import Any

from temporalio import activity
from temporalio import client as temporal_client
from temporalio import worker as temporal_worker
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory

LOCAL_ACTIVITY_MARKER = "core_local_activity"

# The SDK's heartbeat throttling (temporalio.worker.Worker's defaults).
DEFAULT_HEARTBEAT_THROTTLE = timedelta(seconds=30)
MAX_HEARTBEAT_THROTTLE = timedelta(seconds=60)

E = EventType


@dataclass(frozen=True)
class ActionCount:
    """One workflow run's actions by kind, and the size of its history."""

    workflow_started: int = 0
    activities_scheduled: int = 0
    activity_retries: int = 0
    timers_started: int = 0
    signals_received: int = 0
    updates_accepted: int = 0
    search_attribute_upserts: int = 0
    local_activity_tasks: int = 0  # workflow tasks that ran at least one local activity
    child_workflows_started: int = 0
    external_signals_sent: int = 0
    heartbeats: int | None = None  # None: not observed (no HeartbeatCounter)
    # Not actions:
    local_activities: int = 0  # local activity markers, however they were grouped
    history_events: int = 0
    workflow_tasks: int = 0  # completed workflow tasks
    workflow_task_failures: int = 0  # failed or timed out

    ACTION_FIELDS = (
        "workflow_started",
        "activities_scheduled",
        "activity_retries",
        "timers_started",
        "signals_received",
        "updates_accepted",
        "search_attribute_upserts",
        "local_activity_tasks",
        "child_workflows_started",
        "external_signals_sent",
        "heartbeats",
    )

    @property
    def actions(self) -> int:
        return sum(getattr(self, name) or 0 for name in self.ACTION_FIELDS)

    def breakdown(self) -> str:
        """`26 actions = start 1 + activities 11 + ...`, kinds with none left out."""
        short = {
            "workflow_started": "start",
            "activities_scheduled": "activities",
            "activity_retries": "activity retries",
            "timers_started": "timers",
            "signals_received": "signals",
            "updates_accepted": "updates",
            "search_attribute_upserts": "upserts",
            "local_activity_tasks": "local-activity tasks",
            "child_workflows_started": "child workflows",
            "external_signals_sent": "external signals",
            "heartbeats": "heartbeats",
        }
        parts = [f"{short[name]} {getattr(self, name)}" for name in self.ACTION_FIELDS if getattr(self, name)]
        if self.heartbeats is None:
            parts.append("heartbeats not observed")
        return f"{self.actions} actions = " + " + ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return {**values, "actions": self.actions}


def _events(history: WorkflowHistory | Iterable[HistoryEvent]) -> Sequence[HistoryEvent]:
    return list(history.events if isinstance(history, WorkflowHistory) else history)


def count_actions(
    history: WorkflowHistory | Iterable[HistoryEvent], *, heartbeats: int | None = None
) -> ActionCount:
    """Counts the actions of one workflow run from its history (see the module's docstring)."""
    events = _events(history)
    kinds: dict[int, int] = defaultdict(int)
    retries = 0
    local_activity_batches: set[int] = set()
    markers = 0
    for event in events:
        kinds[event.event_type] += 1
        if event.event_type == E.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            retries += max(event.activity_task_started_event_attributes.attempt - 1, 0)
        elif event.event_type == E.EVENT_TYPE_MARKER_RECORDED:
            attributes = event.marker_recorded_event_attributes
            if attributes.marker_name == LOCAL_ACTIVITY_MARKER:
                markers += 1
                local_activity_batches.add(attributes.workflow_task_completed_event_id)
    return ActionCount(
        workflow_started=kinds[E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED],
        activities_scheduled=kinds[E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED],
        activity_retries=retries,
        timers_started=kinds[E.EVENT_TYPE_TIMER_STARTED],
        signals_received=kinds[E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED],
        updates_accepted=kinds[E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED],
        search_attribute_upserts=kinds[E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES],
        local_activity_tasks=len(local_activity_batches),
        child_workflows_started=kinds[E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED],
        external_signals_sent=kinds[E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED],
        heartbeats=heartbeats,
        local_activities=markers,
        history_events=len(events),
        workflow_tasks=kinds[E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED],
        workflow_task_failures=kinds[E.EVENT_TYPE_WORKFLOW_TASK_FAILED]
        + kinds[E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT],
    )


# -- heartbeats, seen on the worker ---------------------------------------------------------


class HeartbeatCounter(temporal_client.Interceptor, temporal_worker.Interceptor):
    """Counts `activity.heartbeat` calls per workflow id, as many as the SDK would send.

    Give it to a client (`counting_client`); every worker built on that client uses it too."""

    def __init__(self, *, clock: Any = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._sent: dict[str, int] = defaultdict(int)
        self._last_sent: dict[tuple[str, str, int], float] = {}

    def intercept_activity(
        self, next: temporal_worker.ActivityInboundInterceptor
    ) -> temporal_worker.ActivityInboundInterceptor:
        return _CountingInbound(next, self)

    def record(self, info: activity.Info) -> None:
        """One heartbeat call by the activity attempt `info` describes."""
        self.record_call(info.workflow_id or "", info.activity_id, info.attempt, info.heartbeat_timeout)

    def record_call(
        self, workflow_id: str, activity_id: str, attempt: int, heartbeat_timeout: timedelta | None
    ) -> None:
        throttle = (
            min(heartbeat_timeout * 0.8, MAX_HEARTBEAT_THROTTLE)
            if heartbeat_timeout
            else DEFAULT_HEARTBEAT_THROTTLE
        ).total_seconds()
        key = (workflow_id, activity_id, attempt)
        now = self._clock()
        with self._lock:
            last = self._last_sent.get(key)
            if last is None or now - last >= throttle:
                self._last_sent[key] = now
                self._sent[key[0]] += 1

    def for_workflow(self, workflow_id: str) -> int:
        with self._lock:
            return self._sent.get(workflow_id, 0)


class _CountingInbound(temporal_worker.ActivityInboundInterceptor):
    def __init__(self, next: temporal_worker.ActivityInboundInterceptor, counter: HeartbeatCounter) -> None:
        super().__init__(next)
        self._counter = counter

    def init(self, outbound: temporal_worker.ActivityOutboundInterceptor) -> None:
        super().init(_CountingOutbound(outbound, self._counter))


class _CountingOutbound(temporal_worker.ActivityOutboundInterceptor):
    def __init__(self, next: temporal_worker.ActivityOutboundInterceptor, counter: HeartbeatCounter) -> None:
        super().__init__(next)
        self._counter = counter

    def heartbeat(self, *details: Any) -> None:
        self._counter.record(self.info())
        super().heartbeat(*details)


def counting_client(client: Client, counter: HeartbeatCounter) -> Client:
    """The same connection and converter as `client`, with `counter` added to its interceptors."""
    config = client.config()
    config["interceptors"] = [*config["interceptors"], counter]
    return Client(**config)


def table(rows: Iterable[tuple[str, ActionCount]]) -> str:
    """A small fixed-width table: path, actions, history events, workflow tasks, breakdown."""
    lines = [f"{'path':<14} {'actions':>7} {'events':>6} {'wf tasks':>8}  breakdown"]
    for name, count in rows:
        lines.append(
            f"{name:<14} {count.actions:>7} {count.history_events:>6} {count.workflow_tasks:>8}  "
            f"{count.breakdown()}"
        )
    return "\n".join(lines)
