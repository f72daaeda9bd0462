"""The worker's structured log: one line per activity start, finish or failure (and, from
core/appeals/service.py once committed, one per appeal transition), written as JSON lines by
core/logs.py's formatter (docs/traces-and-logs.md); the key=value form is the record's message.

Lines carry IDs, codes, counts and durations only, never personal data: no names, phone
numbers, email addresses or document contents. So activity arguments, results and error
messages are not logged (a refusal or a send error may quote a customer's address), only the
error's type. Each activity runs in a log context of its appeal and workflow ids, so every line
written while it runs (core's too) carries them. `appeals dev` writes them to
.data/logs/worker.log.

    activity_started activity=open_appeal appeal_id=3f2b... workflow_id=appeal-3f2b... attempt=1
    activity_finished activity=open_appeal appeal_id=3f2b... ... duration_ms=12.4
    appeal_transition appeal_id=3f2b... from_status=SUBMITTED to_status=AWAITING_DOCUMENTS actor=workflow
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError
from temporalio.worker import ActivityInboundInterceptor, ExecuteActivityInput, Interceptor

from core.logs import TRANSITION_LOGGER, log_context, log_event, log_line
from core.tracing import annotate_span

__all__ = ["ACTIVITY_LOGGER", "TRANSITION_LOGGER", "ActivityLogInterceptor", "log_event", "log_line"]

ACTIVITY_LOGGER = "appeals.activity"
APPEAL_WORKFLOW_PREFIX = "appeal-"  # core.appeals.service.workflow_id_for

activity_log = logging.getLogger(ACTIVITY_LOGGER)


def appeal_id_of(workflow_id: str | None) -> str | None:
    if workflow_id and workflow_id.startswith(APPEAL_WORKFLOW_PREFIX):
        return workflow_id[len(APPEAL_WORKFLOW_PREFIX) :]
    return None


def task_id_of(args: Sequence[Any]) -> str | None:
    """The review task an activity works on, where its input names one (activities/types.py:
    `task_id`, or the `review_task` it opens)."""
    for arg in args:
        task_id = getattr(arg, "task_id", None) or getattr(getattr(arg, "review_task", None), "task_id", None)
        if isinstance(task_id, str):
            return task_id
    return None


class ActivityLogInterceptor(Interceptor):
    """Logs every activity (regular and local) the worker runs, with its duration."""

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityLog(next)


class _ActivityLog(ActivityInboundInterceptor):
    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = activity.info()
        fields: dict[str, object] = {
            "activity": info.activity_type,
            "appeal_id": appeal_id_of(info.workflow_id),
            "workflow_id": info.workflow_id,
            "attempt": info.attempt,
            "local": info.is_local,
        }
        ids = {
            "appeal_id": fields["appeal_id"],
            "workflow_id": info.workflow_id,
            "task_id": task_id_of(input.args),
        }
        # Every line the activity writes (core's transition lines too, in the activity's thread:
        # the SDK runs it in a copy of this context) carries its appeal and workflow.
        with log_context(**ids):
            annotate_span(**ids)
            return await self._logged(input, fields)

    async def _logged(self, input: ExecuteActivityInput, fields: dict[str, object]) -> Any:
        # A retry is worth a warning: an earlier attempt failed.
        log_event(
            activity_log,
            logging.WARNING if fields["attempt"] != 1 else logging.INFO,
            "activity_started",
            **fields,
        )
        started = time.monotonic()
        try:
            result = await self.next.execute_activity(input)
        except BaseException as exc:  # cancellation too: the line says how the run ended
            log_event(
                activity_log,
                logging.WARNING,
                "activity_failed",
                **fields,
                duration_ms=_ms_since(started),
                error=type(exc).__name__,
                error_type=exc.type if isinstance(exc, ApplicationError) else None,
            )
            raise
        log_event(activity_log, logging.INFO, "activity_finished", **fields, duration_ms=_ms_since(started))
        return result


def _ms_since(started: float) -> float:
    return round((time.monotonic() - started) * 1000, 1)
