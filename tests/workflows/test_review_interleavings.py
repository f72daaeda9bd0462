"""Claims, releases, decisions and withdrawals in every order the workflow can receive them.

The worker is stopped while messages are sent, so they reach the workflow together, in one
activation, when it starts again: the interleaving that once left a decision hanging for good.
On the dev server (Updates hang on the time-skipping server), with real activities on SQLite.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.update.v1 import UpdateRef, WaitPolicy
from temporalio.api.workflowservice.v1 import PollWorkflowExecutionUpdateRequest
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError, WorkflowUpdateStage
from temporalio.exceptions import ApplicationError

from core.auth import Principal, Role
from core.db import session_scope
from core.db.case_tables import Appeal, AppealEvent, Decision, ReviewTask, TaskStatus
from core.db.ledger_tables import CreditAccount, LimitEvent
from core.reviews import queue
from core.status import AppealStatus
from tests.eventually import eventually, patience
from tests.factories import make_customer
from tests.workflows.conftest import running_worker
from tests.workflows.test_review_update import LATE_PAYER, _to_review, claim_as, wait_status
from workflows.appeal import AppealWorkflow
from workflows.messages import (
    DecisionAccepted,
    ReviewClaim,
    ReviewDecision,
    ReviewOutcome,
    WithdrawRequest,
)
from workflows.search_attributes import APPEAL_REVIEWER, APPEAL_SLA_DUE_AT, APPEAL_STATUS

pytestmark = pytest.mark.asyncio(loop_scope="session")

Handle = WorkflowHandle[AppealWorkflow, Any]


@pytest.fixture
def s3(settings: Any) -> Any:
    from core.storage import make_s3_client

    return make_s3_client(settings)


def _approve(task_id: str, reviewer: str, amount: int = 500_000) -> ReviewDecision:
    return ReviewDecision(
        task_id=task_id, reviewer=reviewer, outcome=ReviewOutcome.APPROVE, approved_limit_minor=amount
    )


def _appeal(engine: Engine, appeal_id: str) -> Appeal:
    with session_scope(engine, read_only=True) as session:
        appeal = session.get(Appeal, appeal_id)
        assert appeal is not None
        return appeal


def _task(engine: Engine, task_id: str) -> ReviewTask:
    with session_scope(engine, read_only=True) as session:
        task = session.get(ReviewTask, task_id)
        assert task is not None
        return task


async def _admitted(client: Client, handle: Handle, update_id: str) -> None:
    """Waits until the server holds the update, so that a worker started afterwards receives
    it in the same workflow task as the signals sent before it."""
    request = PollWorkflowExecutionUpdateRequest(
        namespace=client.namespace,
        update_ref=UpdateRef(
            workflow_execution=WorkflowExecution(workflow_id=handle.id), update_id=update_id
        ),
        identity="interleaving-test",
        wait_policy=WaitPolicy(
            lifecycle_stage=UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ADMITTED
        ),
    )
    await eventually(
        lambda: client.workflow_service.poll_workflow_execution_update(request),
        what=f"update {update_id} to be admitted by the server",
    )


def _send_decision(
    handle: Handle, decision: ReviewDecision, update_id: str
) -> asyncio.Task[DecisionAccepted]:
    return asyncio.create_task(handle.execute_update(AppealWorkflow.decide, decision, id=update_id))


async def _release(handle: Handle, engine: Engine, task_id: str, reviewer: str) -> None:
    """What POST /review-tasks/{id}/release does: the database release, then the signal."""
    with session_scope(engine) as session:
        task = queue.release(session, task_id, Principal(subject=reviewer, role=Role.REVIEWER))
        version = task.version
    await handle.signal(
        AppealWorkflow.review_claim_changed,
        ReviewClaim(task_id=task_id, reviewer=None, actor=reviewer, version=version),
    )


async def _withdraw(handle: Handle) -> None:
    await handle.signal(AppealWorkflow.withdraw, WithdrawRequest(requested_by="customer:test"))


async def _closed_with_limit(handle: Handle, engine: Engine, account_id: str, limit: int) -> None:
    result = await asyncio.wait_for(handle.result(), patience(60))
    assert result.status == AppealStatus.CLOSED and result.decided_limit_minor == limit
    appeal_id = handle.id.removeprefix("appeal-")
    with session_scope(engine, read_only=True) as session:
        account = session.get(CreditAccount, account_id)
        events = session.exec(select(LimitEvent).where(LimitEvent.appeal_id == appeal_id)).all()
        decisions = session.exec(select(Decision).where(Decision.appeal_id == appeal_id)).all()
    assert account is not None and account.current_limit_minor == limit
    assert len(events) == 1 and len(decisions) == 1


async def _approve_and_close(
    handle: Handle, engine: Engine, account_id: str, task_id: str, reviewer: str, amount: int
) -> None:
    """The claim holder approves `amount` (below the request) and the appeal closes with it."""
    accepted = await asyncio.wait_for(
        handle.execute_update(AppealWorkflow.decide, _approve(task_id, reviewer, amount), id=reviewer),
        patience(60),
    )
    assert accepted.status == AppealStatus.PARTIALLY_APPROVED
    await _closed_with_limit(handle, engine, account_id, amount)


async def _search_attributes(handle: Handle) -> Any:
    return (await handle.describe()).typed_search_attributes


async def test_claim_and_decision_in_one_activation(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, s3: Any
) -> None:
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        handle, appeal_id, task_id = await _to_review(temporal_client, settings, sqlite_engine, customer, s3)
    # Worker stopped: the claim and the decision wait on the server together.
    await claim_as(handle, sqlite_engine, task_id, "r-1")
    decision = _send_decision(handle, _approve(task_id, "r-1"), "together-1")
    await _admitted(temporal_client, handle, "together-1")
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        accepted = await asyncio.wait_for(decision, patience(60))
        assert accepted.status == AppealStatus.PARTIALLY_APPROVED
        await _closed_with_limit(handle, sqlite_engine, customer.account_id, 500_000)
    # The claim was projected before the decision: the audit trail shows IN_REVIEW first.
    statuses = [
        e["to_status"]
        for e in _timeline(sqlite_engine, appeal_id)
        if e["to_status"] in ("IN_REVIEW", "PARTIALLY_APPROVED")
    ]
    assert statuses == ["IN_REVIEW", "PARTIALLY_APPROVED"]
    attributes = await _search_attributes(handle)
    assert attributes.get(APPEAL_STATUS) == "CLOSED"
    assert attributes.get(APPEAL_SLA_DUE_AT) is None, "no task is open, so no SLA is shown"
    assert attributes.get(APPEAL_REVIEWER) == "r-1"


def _timeline(engine: Engine, appeal_id: str) -> list[dict[str, Any]]:
    with session_scope(engine, read_only=True) as session:
        rows = session.exec(
            select(AppealEvent).where(AppealEvent.appeal_id == appeal_id).order_by(col(AppealEvent.seq))
        ).all()
        return [{"to_status": row.to_status, "kind": row.kind} for row in rows]


async def test_decision_right_after_the_claim_with_a_running_worker(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, s3: Any
) -> None:
    """As the API does it: the claim signal, then at once the decision, no waiting between."""
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        handle, _, task_id = await _to_review(temporal_client, settings, sqlite_engine, customer, s3)
        await claim_as(handle, sqlite_engine, task_id, "r-1")
        await _approve_and_close(handle, sqlite_engine, customer.account_id, task_id, "r-1", 500_000)


async def test_release_then_decide_is_refused_and_the_task_goes_back_to_the_queue(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, s3: Any
) -> None:
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        handle, appeal_id, task_id = await _to_review(temporal_client, settings, sqlite_engine, customer, s3)
        await claim_as(handle, sqlite_engine, task_id, "r-1")
        await wait_status(sqlite_engine, appeal_id, AppealStatus.IN_REVIEW)
    # Worker stopped: r-1 releases, then (a stale page) still sends a decision.
    await _release(handle, sqlite_engine, task_id, "r-1")
    decision = _send_decision(handle, _approve(task_id, "r-1"), "after-release")
    await _admitted(temporal_client, handle, "after-release")
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await asyncio.wait_for(decision, patience(60))
        assert isinstance(info.value.cause, ApplicationError)
        assert info.value.cause.type == "NotClaimHolder"
        await wait_status(sqlite_engine, appeal_id, AppealStatus.PENDING_REVIEW)
        assert _task(sqlite_engine, task_id).status == TaskStatus.OPEN
        # Someone else picks it up and decides: the appeal is not stuck.
        await claim_as(handle, sqlite_engine, task_id, "r-2")
        await _approve_and_close(handle, sqlite_engine, customer.account_id, task_id, "r-2", 600_000)


async def test_a_stale_claim_message_changes_nothing(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, s3: Any
) -> None:
    """Messages about an older version of the task than the one followed are ignored, so a
    claim signal delivered after the release that followed it cannot revive the claim."""
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        handle, appeal_id, task_id = await _to_review(temporal_client, settings, sqlite_engine, customer, s3)
    with session_scope(sqlite_engine) as session:
        claimed_version = queue.claim(session, task_id, Principal(subject="r-1", role=Role.REVIEWER)).version
    await _release(handle, sqlite_engine, task_id, "r-1")  # the release's signal arrives first
    await handle.signal(
        AppealWorkflow.review_claim_changed,
        ReviewClaim(task_id=task_id, reviewer="r-1", actor="r-1", version=claimed_version),
    )
    decision = _send_decision(handle, _approve(task_id, "r-1"), "stale-claim")
    await _admitted(temporal_client, handle, "stale-claim")
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await asyncio.wait_for(decision, patience(60))
        assert isinstance(info.value.cause, ApplicationError)
        assert info.value.cause.type == "NotClaimHolder"
        await handle.signal(AppealWorkflow.withdraw, WithdrawRequest(requested_by="customer:test"))
        result = await asyncio.wait_for(handle.result(), patience(60))
    assert result.status == AppealStatus.WITHDRAWN
    assert _appeal(sqlite_engine, appeal_id).status == AppealStatus.WITHDRAWN


async def test_withdrawal_while_the_decision_is_recorded_is_too_late(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, s3: Any
) -> None:
    """Once the workflow has accepted a decision, the outcome stands: a withdrawal that
    arrives while it is being recorded waits for it and then finds the appeal decided."""
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        handle, _, task_id = await _to_review(temporal_client, settings, sqlite_engine, customer, s3)
        await claim_as(handle, sqlite_engine, task_id, "r-1")
        update = await handle.start_update(
            AppealWorkflow.decide,
            _approve(task_id, "r-1"),
            id="before-withdraw",
            wait_for_stage=WorkflowUpdateStage.ACCEPTED,
        )
        await _withdraw(handle)
        accepted = await asyncio.wait_for(update.result(), patience(60))
        assert accepted.status == AppealStatus.PARTIALLY_APPROVED
        await _closed_with_limit(handle, sqlite_engine, customer.account_id, 500_000)


@pytest.mark.parametrize("decision_sent_first", [True, False])
async def test_withdrawal_and_decision_in_one_activation(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, s3: Any, decision_sent_first: bool
) -> None:
    """Until the workflow accepts a decision the customer may still withdraw. When both wait
    on the server, the withdrawal (a signal, in history) reaches the workflow before the
    decision (an update, accepted by the workflow), whichever was sent first: the appeal is
    withdrawn and the reviewer is told so."""
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER, current_limit_minor=0)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        handle, appeal_id, task_id = await _to_review(temporal_client, settings, sqlite_engine, customer, s3)
    await claim_as(handle, sqlite_engine, task_id, "r-1")
    if not decision_sent_first:
        await _withdraw(handle)
    decision = _send_decision(handle, _approve(task_id, "r-1"), "with-withdraw")
    await _admitted(temporal_client, handle, "with-withdraw")
    if decision_sent_first:
        await _withdraw(handle)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await asyncio.wait_for(decision, patience(60))
        assert isinstance(info.value.cause, ApplicationError)
        assert info.value.cause.type == "TaskNotOpen"
        assert "withdrawn" in info.value.cause.message
        result = await asyncio.wait_for(handle.result(), patience(60))
    assert result.status == AppealStatus.WITHDRAWN
    assert _task(sqlite_engine, task_id).status == TaskStatus.CANCELLED
    with session_scope(sqlite_engine, read_only=True) as session:
        account = session.get(CreditAccount, customer.account_id)
        assert session.exec(select(Decision).where(Decision.appeal_id == appeal_id)).first() is None
    assert account is not None and account.current_limit_minor == 0
    attributes = await _search_attributes(handle)
    assert attributes.get(APPEAL_STATUS) == "WITHDRAWN"
    assert attributes.get(APPEAL_SLA_DUE_AT) is None


async def test_two_decisions_together_record_one(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, s3: Any
) -> None:
    """A double click with two keys: the first decision is recorded, the second refused."""
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        handle, _, task_id = await _to_review(temporal_client, settings, sqlite_engine, customer, s3)
    await claim_as(handle, sqlite_engine, task_id, "r-1")
    first = _send_decision(handle, _approve(task_id, "r-1", 500_000), "click-1")
    await _admitted(temporal_client, handle, "click-1")
    second = _send_decision(handle, _approve(task_id, "r-1", 700_000), "click-2")
    await _admitted(temporal_client, handle, "click-2")
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        accepted = await asyncio.wait_for(first, patience(60))
        assert accepted.approved_limit_minor == 500_000
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await asyncio.wait_for(second, patience(60))
        assert isinstance(info.value.cause, ApplicationError)
        assert info.value.cause.type == "TaskNotOpen"
        await _closed_with_limit(handle, sqlite_engine, customer.account_id, 500_000)
