"""DocumentSweepWorkflow: one run of the document sweep, started by a Temporal Schedule
(launcher/sweep_schedule.py) every `APPEALS_DOCUMENT_SWEEP_INTERVAL`.

Deterministic only: the work (deleting leftovers from storage, marking their rows) is the
`sweep_documents` activity (activities/sweep.py, core/documents/sweep.py).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.sweep import SweepActivities, SweepInput, SweepResult

SWEEP_TIMEOUT = timedelta(minutes=5)


@workflow.defn(name="DocumentSweep")
class DocumentSweepWorkflow:
    @workflow.run
    async def run(self, inp: SweepInput) -> SweepResult:
        return await workflow.execute_activity_method(
            SweepActivities.sweep_documents,
            inp,
            start_to_close_timeout=SWEEP_TIMEOUT,
            retry_policy=RetryPolicy(maximum_attempts=3, initial_interval=timedelta(seconds=10)),
        )
