"""A no-op workflow with the shape of a real appeal's history, for bench/temporal_bench.py:
it replays the plan bench/noop_plan.py reads off a finished AppealWorkflow run, with activities
that do nothing (see that module for what is mirrored and what is not).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import activity, workflow

with workflow.unsafe.imports_passed_through():
    from bench.noop_plan import NoopPlan, Step, plan_from_history
    from workflows.search_attributes import APPEAL_STATUS

__all__ = ["NoopAppealWorkflow", "NoopPlan", "Step", "noop_local", "noop_step", "plan_from_history"]

STEP_TIMEOUT = timedelta(seconds=30)


@activity.defn(name="noop_step")
def noop_step(index: int) -> None:
    """An activity that does nothing."""


@activity.defn(name="noop_local")
def noop_local(index: int) -> None:
    """A local activity that does nothing."""


@workflow.defn(name="NoopAppealWorkflow")
class NoopAppealWorkflow:
    def __init__(self) -> None:
        self._signals = 0

    @workflow.run
    async def run(self, plan: NoopPlan) -> int:
        activities: dict[int, asyncio.Task[None]] = {}
        timers: dict[int, asyncio.Task[None]] = {}
        for number, step in enumerate(plan.steps):

            def woken(step: Step = step) -> bool:
                return (
                    self._signals >= step.wait_signals
                    and all(activities[i].done() for i in step.wait_activities)
                    and all(timers[i].done() for i in step.wait_timers)
                )

            await workflow.wait_condition(woken)
            for _ in range(step.local_activities):
                await workflow.execute_local_activity(noop_local, number, start_to_close_timeout=STEP_TIMEOUT)
            for k in range(step.upserts):
                workflow.upsert_search_attributes([APPEAL_STATUS.value_set(f"NOOP_{number}_{k}")])
            for i in step.cancel_timers:
                timers[i].cancel()
            for i, seconds in step.start_timers:
                timers[i] = asyncio.create_task(asyncio.sleep(seconds))
            for i in step.start_activities:
                activities[i] = asyncio.create_task(
                    workflow.execute_activity(noop_step, i, start_to_close_timeout=STEP_TIMEOUT)
                )
        return self._signals

    @workflow.signal(name="document_uploaded")
    def document_uploaded(self, upload: dict[str, str]) -> None:
        self._signals += 1
