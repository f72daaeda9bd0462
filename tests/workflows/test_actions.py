"""The action counter (tests/workflows/actions.py): on built histories, on the heartbeat
throttle, and on the real history of a small workflow that uses every kind of action."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import (
    ActivityTaskStartedEventAttributes,
    HistoryEvent,
    MarkerRecordedEventAttributes,
)
from temporalio.client import Client, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.common import RetryPolicy
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests.eventually import patience
from tests.workflows.actions import (
    LOCAL_ACTIVITY_MARKER,
    ActionCount,
    HeartbeatCounter,
    count_actions,
    counting_client,
    table,
)
from tests.workflows.conftest import unique_queue
from workflows.search_attributes import APPEAL_STATUS

E = EventType


class _History:
    """Builds a history event by event; `task()` closes a workflow task and returns its
    WorkflowTaskCompleted id, which the commands after it carry."""

    def __init__(self) -> None:
        self.events: list[HistoryEvent] = []

    def add(self, event_type: int, **attributes: Any) -> int:
        event = HistoryEvent(event_id=len(self.events) + 1, event_type=event_type, **attributes)  # type: ignore[arg-type]
        self.events.append(event)
        return event.event_id

    def task(self) -> int:
        self.add(E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)
        self.add(E.EVENT_TYPE_WORKFLOW_TASK_STARTED)
        return self.add(E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED)

    def marker(self, completed_id: int, name: str = LOCAL_ACTIVITY_MARKER) -> None:
        self.add(
            E.EVENT_TYPE_MARKER_RECORDED,
            marker_recorded_event_attributes=MarkerRecordedEventAttributes(
                marker_name=name, workflow_task_completed_event_id=completed_id
            ),
        )

    def activity(self, attempt: int = 1) -> None:
        self.add(E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
        self.add(
            E.EVENT_TYPE_ACTIVITY_TASK_STARTED,
            activity_task_started_event_attributes=ActivityTaskStartedEventAttributes(attempt=attempt),
        )
        self.add(E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED)


def test_each_kind_of_action_in_a_built_history() -> None:
    h = _History()
    h.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED)
    first = h.task()
    h.marker(first)
    h.marker(first)  # a second local activity in the same workflow task: no second action
    h.add(E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
    h.activity()
    h.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    h.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    second = h.task()
    h.marker(second)
    h.marker(second, name="core_patch")  # not a local activity
    h.add(E.EVENT_TYPE_TIMER_STARTED)
    h.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    h.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
    h.add(E.EVENT_TYPE_TIMER_FIRED)
    h.add(E.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED)
    h.add(E.EVENT_TYPE_WORKFLOW_TASK_STARTED)
    h.add(E.EVENT_TYPE_WORKFLOW_TASK_FAILED)
    third = h.task()
    h.activity(attempt=3)  # two retries, which write no events of their own
    h.add(E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED)
    h.add(E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED)
    h.marker(third)
    h.task()
    h.add(E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)

    count = count_actions(WorkflowHistory("wf-1", h.events), heartbeats=2)

    assert count == ActionCount(
        workflow_started=1,
        activities_scheduled=2,
        activity_retries=2,
        timers_started=1,
        signals_received=2,
        updates_accepted=1,
        search_attribute_upserts=1,
        local_activity_tasks=3,
        child_workflows_started=1,
        external_signals_sent=1,
        heartbeats=2,
        local_activities=4,
        history_events=len(h.events),
        workflow_tasks=4,
        workflow_task_failures=1,
    )
    assert count.actions == 1 + 2 + 2 + 1 + 2 + 1 + 1 + 3 + 1 + 1 + 2
    assert count.breakdown().startswith("17 actions = start 1 + activities 2 + activity retries 2 + timers 1")
    assert count.as_dict()["actions"] == 17
    # The events alone, without heartbeats: said to be unobserved, never silently zero.
    unobserved = count_actions(h.events)
    assert unobserved.heartbeats is None and unobserved.actions == 15
    assert "heartbeats not observed" in unobserved.breakdown()
    assert "wf tasks" in table([("built", count)]) and " 17 " in table([("built", count)])


def test_an_empty_history_has_no_actions() -> None:
    count = count_actions([])
    assert count.actions == 0 and count.history_events == 0 and count.workflow_tasks == 0


def test_heartbeats_are_counted_as_the_sdk_throttles_them() -> None:
    now = [0.0]
    counter = HeartbeatCounter(clock=lambda: now[0])
    # No heartbeat timeout: the first call is sent, then at most one per 30 s.
    for second in (0.0, 1.0, 29.0, 30.0, 45.0, 61.0):
        now[0] = second
        counter.record_call("wf-a", "1", 1, None)
    assert counter.for_workflow("wf-a") == 3  # at 0, 30 and 61
    # A retry is a new attempt: its first heartbeat is sent at once.
    counter.record_call("wf-a", "1", 2, None)
    assert counter.for_workflow("wf-a") == 4
    # With a heartbeat timeout of 10 s the interval is 8 s.
    for second in (100.0, 104.0, 108.0, 115.0):
        now[0] = second
        counter.record_call("wf-b", "7", 1, timedelta(seconds=10))
    assert counter.for_workflow("wf-b") == 2
    # The interval is capped at 60 s, however long the timeout.
    for second in (200.0, 260.0):
        now[0] = second
        counter.record_call("wf-c", "1", 1, timedelta(hours=1))
    assert counter.for_workflow("wf-c") == 2
    assert counter.for_workflow("unknown") == 0


# -- a real history -----------------------------------------------------------------------


@activity.defn(name="probe_local")
def probe_local() -> None:
    pass


@activity.defn(name="probe_heartbeating")
def probe_heartbeating() -> None:
    for _ in range(3):
        activity.heartbeat()  # within one throttle interval: one reaches the server


@activity.defn(name="probe_flaky")
def probe_flaky() -> None:
    if activity.info().attempt == 1:
        raise RuntimeError("fails once")


QUICK = timedelta(seconds=10)


@workflow.defn(sandboxed=False)
class ProbeWorkflow:
    def __init__(self) -> None:
        self.pokes = 0
        self.released = False

    @workflow.run
    async def run(self) -> int:
        # One workflow task runs two local activities and upserts.
        await workflow.execute_local_activity(probe_local, start_to_close_timeout=QUICK)
        await workflow.execute_local_activity(probe_local, start_to_close_timeout=QUICK)
        workflow.upsert_search_attributes([APPEAL_STATUS.value_set("PROBE")])
        await workflow.execute_activity(probe_heartbeating, start_to_close_timeout=QUICK)
        await workflow.execute_activity(
            probe_flaky,
            start_to_close_timeout=QUICK,
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=100)),
        )
        await asyncio.sleep(0.1)  # a timer
        await workflow.wait_condition(lambda: self.pokes >= 1 and self.released)
        await workflow.execute_local_activity(probe_local, start_to_close_timeout=QUICK)
        return self.pokes

    @workflow.signal
    def poke(self) -> None:
        self.pokes += 1

    @workflow.update
    def release(self, accept: bool) -> None:
        self.released = True

    @release.validator
    def _only_when_asked(self, accept: bool) -> None:
        if not accept:
            raise ValueError("refused")


@pytest.mark.asyncio(loop_scope="session")
async def test_a_real_history_of_every_kind(temporal_client: Client) -> None:
    heartbeats = HeartbeatCounter()
    client = counting_client(temporal_client, heartbeats)
    queue = unique_queue()
    with ThreadPoolExecutor(max_workers=4) as executor:
        async with Worker(
            client,
            task_queue=queue,
            workflows=[ProbeWorkflow],
            activities=[probe_local, probe_heartbeating, probe_flaky],
            activity_executor=executor,
            workflow_runner=UnsandboxedWorkflowRunner(),
        ):
            handle = await client.start_workflow(ProbeWorkflow.run, id=f"probe-{queue}", task_queue=queue)
            await handle.signal(ProbeWorkflow.poke)
            with pytest.raises(WorkflowUpdateFailedError):
                await handle.execute_update(ProbeWorkflow.release, False)  # rejected: not in history
            await handle.execute_update(ProbeWorkflow.release, True)
            assert await asyncio.wait_for(handle.result(), patience(60)) == 1
    history = await handle.fetch_history()

    count = count_actions(history, heartbeats=heartbeats.for_workflow(handle.id))

    assert (
        count.workflow_started,
        count.activities_scheduled,
        count.activity_retries,
        count.timers_started,
        count.signals_received,
        count.updates_accepted,
        count.search_attribute_upserts,
        count.local_activity_tasks,
        count.heartbeats,
    ) == (1, 2, 1, 1, 1, 1, 1, 2, 1), count
    assert count.local_activities == 3 and count.actions == 11
    assert count.history_events == len(history.events) and count.workflow_tasks >= 4
    assert count.workflow_task_failures == 0
