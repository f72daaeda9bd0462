"""The Temporal Schedule that runs the document sweep (workflows/sweep.py): created, or
brought up to date with the settings, each time a worker starts (launcher/worker.py), so
`appeals dev` and every deployment have it. It is listed in the Web UI under Schedules.

One schedule per task queue (`document-sweep-{queue}`), so that stacks sharing a Temporal
namespace sweep their own store; a run still going when the next is due is skipped.
"""

from __future__ import annotations

import logging

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleHandle,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from activities.sweep import SweepInput
from core.settings import Settings
from workflows.sweep import DocumentSweepWorkflow

log = logging.getLogger(__name__)


def sweep_schedule_id(settings: Settings) -> str:
    return f"document-sweep-{settings.temporal_task_queue}"


def sweep_schedule(settings: Settings) -> Schedule:
    retention = settings.document_leftover_retention
    return Schedule(
        action=ScheduleActionStartWorkflow(
            DocumentSweepWorkflow.run,
            SweepInput(retention=retention),
            id=sweep_schedule_id(settings),  # each run: this id plus its scheduled time
            task_queue=settings.temporal_task_queue,
            static_summary=f"Document sweep: rejected and never-completed uploads older than {retention}",
        ),
        spec=ScheduleSpec(intervals=[ScheduleIntervalSpec(every=settings.document_sweep_interval)]),
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
        state=ScheduleState(
            note="Deletes rejected files and uploads never completed once "
            "APPEALS_DOCUMENT_LEFTOVER_RETENTION has passed (core/documents/sweep.py)."
        ),
    )


async def ensure_schedule(client: Client, schedule_id: str, schedule: Schedule) -> ScheduleHandle:
    """Creates a schedule, or brings it up to date with `schedule` if it exists: the action,
    timing and policy from the code and settings, an operator's pause kept."""
    try:
        return await client.create_schedule(schedule_id, schedule)
    except ScheduleAlreadyRunningError:
        handle = client.get_schedule_handle(schedule_id)

        def _update(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = current.description.schedule.state
            return ScheduleUpdate(schedule=schedule)

        await handle.update(_update)
        log.info("schedule %s updated", schedule_id)
        return handle


async def ensure_sweep_schedule(client: Client, settings: Settings) -> ScheduleHandle:
    """Creates the schedule, or updates it to the current settings if it exists."""
    return await ensure_schedule(client, sweep_schedule_id(settings), sweep_schedule(settings))
