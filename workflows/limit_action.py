"""LimitActionWorkflow (docs/lender-loop.md, "Limit actions"): one per applied risk event, id
`limit-action-<account>-<event id>` (REJECT_DUPLICATE: a redelivered event starts nothing).

Deterministic only: activity 1 evaluates the policy's limit actions on the account's ledger
snapshot and, if one acts, applies it in one transaction (limit event, limit and status, audit
event, notices planned), once per event; activity 2 sends the planned notices, retried per
channel. The result names what it did.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.limit_action import (
        LimitActionActivities,
        LimitActionDone,
        LimitActionInput,
        SendNoticesInput,
    )

APPLY_TIMEOUT = timedelta(minutes=1)
SEND_TIMEOUT = timedelta(minutes=2)
APPLY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(minutes=1))
# A channel that fails is tried again for about a day; a permanent failure stops at once.
SEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(hours=1),
    maximum_attempts=30,
)


@workflow.defn(name="LimitAction")
class LimitActionWorkflow:
    @workflow.run
    async def run(self, inp: LimitActionInput) -> LimitActionDone:
        done = await workflow.execute_activity_method(
            LimitActionActivities.apply_limit_action,
            inp,
            start_to_close_timeout=APPLY_TIMEOUT,
            retry_policy=APPLY_RETRY,
        )
        if not done.notice_ids:
            return done
        try:
            await workflow.execute_activity_method(
                LimitActionActivities.send_account_notices,
                SendNoticesInput(notice_ids=done.notice_ids),
                start_to_close_timeout=SEND_TIMEOUT,
                retry_policy=SEND_RETRY,
            )
        except ActivityError:
            # The limit stands; what could not be sent is on its outbox row (FAILED, last_error).
            workflow.logger.warning("notices %s of %s not all sent", done.notice_ids, inp.event_id)
            return done.model_copy(update={"notices_sent": False})
        return done.model_copy(update={"notices_sent": True})
