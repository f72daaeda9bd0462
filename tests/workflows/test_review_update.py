"""The reviewer's decision as a Workflow Update, on the dev server (Updates hang on the
time-skipping server), with real activities on SQLite."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from core.auth import Principal, Role
from core.db import session_scope
from core.db.case_tables import Appeal, Decision, Document, ReviewTask, TaskStatus
from core.db.ledger_tables import CreditAccount, LimitEvent
from core.reviews import queue
from core.status import AppealStatus
from tests.documents import recent_statement_csv, text_pdf
from tests.eventually import eventually, patience
from tests.factories import LedgerCustomer, make_customer
from tests.workflows.conftest import running_worker, start_appeal
from workflows.appeal import AppealWorkflow
from workflows.messages import DocumentUploaded, ReviewClaim, ReviewDecision, ReviewOutcome, WithdrawRequest

pytestmark = pytest.mark.asyncio(loop_scope="session")

LATE_PAYER = (0, 5, 0, 45, 0, 20, 0, 0, 0, 0, 0, 0)  # routes to manual review


def _status(engine: Engine, appeal_id: str) -> AppealStatus:
    with session_scope(engine, read_only=True) as session:
        appeal = session.get(Appeal, appeal_id)
        assert appeal is not None
        return AppealStatus(appeal.status)


async def wait_status(engine: Engine, appeal_id: str, status: AppealStatus) -> None:
    """Until the DB projection shows `status`: one the appeal stays in until the test acts."""
    await eventually(
        lambda: _status(engine, appeal_id),
        lambda seen: seen == status,
        what=f"appeal {appeal_id} to be {status.value}",
    )


def _open_task(engine: Engine, appeal_id: str) -> ReviewTask | None:
    with session_scope(engine, read_only=True) as session:
        return session.exec(
            select(ReviewTask).where(ReviewTask.appeal_id == appeal_id, ReviewTask.status == TaskStatus.OPEN)
        ).first()


async def _to_review(
    client: Client,
    settings: Any,
    engine: Engine,
    customer: LedgerCustomer,
    s3: Any,
    requested: int = 700_000,
) -> tuple[WorkflowHandle[AppealWorkflow, Any], str, str]:
    """Starts an appeal and uploads one valid PDF so that it reaches PENDING_REVIEW."""
    handle = await start_appeal(
        client,
        settings,
        engine,
        customer.customer_id,
        customer.account_id,
        requested_limit_minor=requested,
    )
    appeal_id = handle.id.removeprefix("appeal-")
    await wait_status(engine, appeal_id, AppealStatus.AWAITING_DOCUMENTS)
    await upload_documents(handle, settings, engine, s3, customer.customer_id, appeal_id)
    await wait_status(engine, appeal_id, AppealStatus.PENDING_REVIEW)
    task = _open_task(engine, appeal_id)
    assert task is not None
    return handle, appeal_id, task.id


async def upload_documents(
    handle: WorkflowHandle[AppealWorkflow, Any],
    settings: Any,
    engine: Engine,
    s3: Any,
    customer_id: str,
    appeal_id: str,
    documents: tuple[tuple[str, bytes, str], ...] | None = None,
) -> list[str]:
    """Stores documents in S3 as an upload would and signals the workflow for each."""
    documents = documents or (
        ("BANK_STATEMENT", recent_statement_csv(), "text/csv"),
        ("CREDIT_REPORT", text_pdf(), "application/pdf"),
    )
    ids = []
    for doc_type, body, content_type in documents:
        document_id = str(uuid.uuid4())
        key = f"appeals/{appeal_id}/{document_id}"
        s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=body, ContentType=content_type)
        with session_scope(engine) as session:
            session.add(
                Document(
                    id=document_id,
                    appeal_id=appeal_id,
                    customer_id=customer_id,
                    doc_type=doc_type,
                    s3_key=key,
                    filename="upload",
                    declared_content_type=content_type,
                )
            )
        await handle.signal(AppealWorkflow.document_uploaded, DocumentUploaded(document_id=document_id))
        ids.append(document_id)
    return ids


async def claim_as(
    handle: WorkflowHandle[AppealWorkflow, Any], engine: Engine, task_id: str, reviewer: str
) -> None:
    """What POST /review-tasks/{id}/claim does: the database claim, then the workflow is told."""
    with session_scope(engine) as session:
        queue.claim(session, task_id, Principal(subject=reviewer, role=Role.REVIEWER))
    await handle.signal(
        AppealWorkflow.review_claim_changed, ReviewClaim(task_id=task_id, reviewer=reviewer, actor=reviewer)
    )


@pytest.fixture
def s3(settings: Any) -> Any:
    from core.storage import make_s3_client

    return make_s3_client(settings)


async def test_validator_rejects_bad_decisions_then_accepts_one(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, s3: Any
) -> None:
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER, original_limit_minor=800_000)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        handle, appeal_id, task_id = await _to_review(temporal_client, settings, sqlite_engine, customer, s3)
        assert _status(sqlite_engine, appeal_id) == AppealStatus.PENDING_REVIEW
        # Nobody holds the claim yet: even a well-formed decision is refused.
        unclaimed = ReviewDecision(
            task_id=task_id, reviewer="r-1", outcome=ReviewOutcome.APPROVE, approved_limit_minor=500_000
        )
        with pytest.raises(WorkflowUpdateFailedError) as info:
            await handle.execute_update(AppealWorkflow.decide, unclaimed, id="u-unclaimed")
        assert isinstance(info.value.cause, ApplicationError) and info.value.cause.type == "NotClaimHolder"
        await claim_as(handle, sqlite_engine, task_id, "r-1")
        await wait_status(sqlite_engine, appeal_id, AppealStatus.IN_REVIEW)

        rejected = {
            "someone else": ReviewDecision(
                task_id=task_id, reviewer="r-2", outcome=ReviewOutcome.APPROVE, approved_limit_minor=500_000
            ),
            "wrong task": ReviewDecision(
                task_id="not-this-one",
                reviewer="r-1",
                outcome=ReviewOutcome.APPROVE,
                approved_limit_minor=500_000,
            ),
            "above original": ReviewDecision(
                task_id=task_id,
                reviewer="r-1",
                outcome=ReviewOutcome.APPROVE,
                approved_limit_minor=800_001,
            ),
            "decline without reason": ReviewDecision(
                task_id=task_id, reviewer="r-1", outcome=ReviewOutcome.DECLINE, reasons=["  "]
            ),
        }
        for label, decision in rejected.items():
            with pytest.raises(WorkflowUpdateFailedError) as info:
                await handle.execute_update(AppealWorkflow.decide, decision, id=f"u-{label}")
            assert isinstance(info.value.cause, ApplicationError), label
        # Rejected updates change nothing.
        assert _status(sqlite_engine, appeal_id) == AppealStatus.IN_REVIEW

        partial = ReviewDecision(
            task_id=task_id,
            reviewer="r-1",
            outcome=ReviewOutcome.APPROVE,
            approved_limit_minor=500_000,
        )
        accepted = await handle.execute_update(AppealWorkflow.decide, partial, id="decision-1")
        assert accepted.status == AppealStatus.PARTIALLY_APPROVED
        # The same update id again is answered from the first, not decided twice; a second
        # decision with a new id finds the task closed. The workflow may have closed by then
        # (the limit is applied at once), which refuses both too: the API answers repeats from
        # the recorded decision instead (tests/api/test_appeals_api.py).
        try:
            again = await handle.execute_update(AppealWorkflow.decide, partial, id="decision-1")
            assert again == accepted
        except RPCError as closed:
            assert "clos" in str(closed) or closed.status == RPCStatusCode.NOT_FOUND
        with pytest.raises((WorkflowUpdateFailedError, RPCError)):
            await handle.execute_update(AppealWorkflow.decide, partial, id="decision-2")
        result = await asyncio.wait_for(handle.result(), patience(60))

    assert result.status == AppealStatus.CLOSED and result.decided_limit_minor == 500_000
    with session_scope(sqlite_engine, read_only=True) as session:
        account = session.get(CreditAccount, customer.account_id)
        events = session.exec(select(LimitEvent).where(LimitEvent.appeal_id == appeal_id)).all()
        decisions = session.exec(select(Decision).where(Decision.appeal_id == appeal_id)).all()
    assert account is not None and account.current_limit_minor == 500_000
    assert len(events) == 1 and len(decisions) == 1


async def test_decline_closes_without_touching_the_ledger(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, s3: Any
) -> None:
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER, current_limit_minor=0)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        handle, appeal_id, task_id = await _to_review(temporal_client, settings, sqlite_engine, customer, s3)
        await claim_as(handle, sqlite_engine, task_id, "r-2")
        decision = ReviewDecision(
            task_id=task_id,
            reviewer="r-2",
            outcome=ReviewOutcome.DECLINE,
            reasons=["RC_LATE_PAYMENTS"],
        )
        accepted = await handle.execute_update(AppealWorkflow.decide, decision, id="d-1")
        assert accepted.status == AppealStatus.DECLINED
        result = await asyncio.wait_for(handle.result(), patience(60))
    assert result.status == AppealStatus.CLOSED
    with session_scope(sqlite_engine, read_only=True) as session:
        assert session.exec(select(LimitEvent).where(LimitEvent.appeal_id == appeal_id)).first() is None
        account = session.get(CreditAccount, customer.account_id)
    assert account is not None and account.current_limit_minor == 0


async def test_withdraw_while_in_review_cancels_the_task(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, s3: Any
) -> None:
    customer = make_customer(sqlite_engine, days_past_due=LATE_PAYER)
    async with running_worker(temporal_client, settings, sqlite_engine, s3):
        handle, appeal_id, task_id = await _to_review(temporal_client, settings, sqlite_engine, customer, s3)
        await handle.signal(
            AppealWorkflow.withdraw,
            WithdrawRequest(requested_by=f"customer:{customer.customer_id}"),
        )
        result = await asyncio.wait_for(handle.result(), patience(60))
        # A decision after withdrawal is refused.
        assert result.status == AppealStatus.WITHDRAWN
    with session_scope(sqlite_engine, read_only=True) as session:
        task = session.get(ReviewTask, task_id)
        appeal = session.get(Appeal, appeal_id)
    assert task is not None and task.status == TaskStatus.CANCELLED
    assert appeal is not None and not appeal.is_open and appeal.status == AppealStatus.WITHDRAWN


async def test_withdraw_while_waiting_for_documents(
    temporal_client: Client, settings: Any, sqlite_engine: Engine, tmp_path: Path
) -> None:
    customer = make_customer(sqlite_engine)
    async with running_worker(temporal_client, settings, sqlite_engine):
        handle = await start_appeal(
            temporal_client, settings, sqlite_engine, customer.customer_id, customer.account_id
        )
        appeal_id = handle.id.removeprefix("appeal-")
        await wait_status(sqlite_engine, appeal_id, AppealStatus.AWAITING_DOCUMENTS)
        await handle.signal(
            AppealWorkflow.withdraw,
            WithdrawRequest(requested_by="customer:x", reason="changed my mind"),
        )
        result = await asyncio.wait_for(handle.result(), patience(60))
    assert result.status == AppealStatus.WITHDRAWN
    assert _status(sqlite_engine, appeal_id) == AppealStatus.WITHDRAWN
