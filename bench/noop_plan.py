"""The plan of the no-op workflow (bench/noop_workflow.py), read off a real appeal's history.

It lives outside the workflow's module on purpose: the sandbox imports a workflow's module
afresh for every run, so a plan class defined there would be a new class each run, and the
data converter would build a pydantic TypeAdapter for it every time (the appeal's own input and
messages are passed through the sandbox, as these are).

`plan_from_history` reads a finished AppealWorkflow run and writes down, for each of its
workflow tasks, what woke it (activities that completed, timers that fired, signals received
so far) and what it then did (local activities run, search-attribute upserts, timers started
or cancelled, activities scheduled). `NoopAppealWorkflow` replays that plan with activities
that do nothing: the same number of workflow tasks, activities, timers, local-activity tasks,
upserts and signals, so whatever the real workflow's shape becomes, the no-op follows it and
the comparison measures the work done in the steps, not the orchestration.

Not mirrored: updates and child workflows (the auto path has none; the plan refuses a history
with them), activity retries, and the sizes of payloads (the no-op's are a few bytes).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent

E = EventType
LOCAL_ACTIVITY_MARKER = "core_local_activity"


@dataclass
class Step:
    """One workflow task of the real run: what it waited for, then what it did."""

    wait_activities: list[int] = field(default_factory=list)  # indexes into the plan's activities
    wait_timers: list[int] = field(default_factory=list)
    wait_signals: int = 0  # signals received by then, in all
    local_activities: int = 0
    upserts: int = 0
    cancel_timers: list[int] = field(default_factory=list)
    start_timers: list[tuple[int, float]] = field(default_factory=list)  # (index, seconds)
    start_activities: list[int] = field(default_factory=list)


@dataclass
class NoopPlan:
    steps: list[Step] = field(default_factory=list)

    def totals(self) -> dict[str, int]:
        return {
            "workflow tasks": len(self.steps),
            "activities": sum(len(s.start_activities) for s in self.steps),
            "timers": sum(len(s.start_timers) for s in self.steps),
            "local-activity tasks": sum(1 for s in self.steps if s.local_activities),
            "local activities": sum(s.local_activities for s in self.steps),
            "upserts": sum(s.upserts for s in self.steps),
            "signals": max([s.wait_signals for s in self.steps] or [0]),
        }


_COMMANDS = {
    E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED: "activity_task_scheduled_event_attributes",
    E.EVENT_TYPE_TIMER_STARTED: "timer_started_event_attributes",
    E.EVENT_TYPE_TIMER_CANCELED: "timer_canceled_event_attributes",
    E.EVENT_TYPE_MARKER_RECORDED: "marker_recorded_event_attributes",
    E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES: "upsert_workflow_search_attributes_event_attributes",
}
_ACTIVITY_ENDS = {
    E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED: "activity_task_completed_event_attributes",
    E.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_task_failed_event_attributes",
    E.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_task_timed_out_event_attributes",
    E.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_task_canceled_event_attributes",
}
_NOT_MIRRORED = {
    E.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED: "an update",
    E.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED: "a child workflow",
    E.EVENT_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED: "a signal to another workflow",
}


def plan_from_history(events: Iterable[HistoryEvent]) -> NoopPlan:
    """The plan of a finished run (see the module's docstring)."""
    events = list(events)
    commands: dict[int, list[HistoryEvent]] = defaultdict(list)
    for event in events:
        if event.event_type in _NOT_MIRRORED:
            raise ValueError(f"the history has {_NOT_MIRRORED[event.event_type]}; the no-op cannot mirror it")
        name = _COMMANDS.get(event.event_type)
        if name is not None:
            commands[getattr(event, name).workflow_task_completed_event_id].append(event)

    activity_index: dict[int, int] = {}  # ActivityTaskScheduled event id -> index
    timer_index: dict[str, int] = {}  # timer id -> index
    plan = NoopPlan()
    signals = 0
    woke: Step = Step()  # what happened since the last workflow task started
    current: Step = Step()  # the triggers of the workflow task under way
    for event in events:
        kind = event.event_type
        if kind == E.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            signals += 1
        elif kind in _ACTIVITY_ENDS:
            scheduled = getattr(event, _ACTIVITY_ENDS[kind]).scheduled_event_id
            woke.wait_activities.append(activity_index[scheduled])
        elif kind == E.EVENT_TYPE_TIMER_FIRED:
            woke.wait_timers.append(timer_index[event.timer_fired_event_attributes.timer_id])
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            current, woke = woke, Step()
            current.wait_signals = signals
        elif kind in (E.EVENT_TYPE_WORKFLOW_TASK_FAILED, E.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT):
            # Its triggers wake the next attempt.
            woke.wait_activities[:0] = current.wait_activities
            woke.wait_timers[:0] = current.wait_timers
        elif kind == E.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            step = current
            for command in commands.get(event.event_id, []):
                if command.event_type == E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    activity_index[command.event_id] = len(activity_index)
                    step.start_activities.append(activity_index[command.event_id])
                elif command.event_type == E.EVENT_TYPE_TIMER_STARTED:
                    attributes = command.timer_started_event_attributes
                    timer_index[attributes.timer_id] = len(timer_index)
                    seconds = attributes.start_to_fire_timeout.ToTimedelta().total_seconds()
                    step.start_timers.append((timer_index[attributes.timer_id], seconds))
                elif command.event_type == E.EVENT_TYPE_TIMER_CANCELED:
                    step.cancel_timers.append(timer_index[command.timer_canceled_event_attributes.timer_id])
                elif command.event_type == E.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
                    step.upserts += 1
                elif command.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER:
                    step.local_activities += 1
            plan.steps.append(step)
            current = Step()
    return plan
