"""Use cases behind the routes: each opens its own unit of work in a thread (sync DB and
boto3 never run on the event loop) and talks to Temporal through the gateway."""

from __future__ import annotations

import logging
import uuid
from typing import IO, Any

from anyio import to_thread
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.schemas.appeals import (
    AppealDetail,
    AppealSummary,
    ChecklistItemPublic,
    DecisionPublic,
    DocumentPublic,
    TimelineEntry,
)
from api.temporal_gateway import TemporalGateway
from core.appeals.service import NewAppeal, create_appeal, get_appeal, mark_workflow_started
from core.auth import Principal
from core.db import session_scope
from core.db.case_tables import Appeal, AppealEvent, Document
from core.documents.checklist import checklist
from core.documents.types import DocumentType
from core.errors import Conflict, InvalidInput, UnsupportedMediaType
from core.reviews.service import get_task, latest_decision
from core.settings import Settings
from core.status import WITHDRAWABLE_STATUSES, AppealStatus
from core.storage import document_key, put_stream
from workflows.messages import ReviewDecision, WithdrawRequest

log = logging.getLogger(__name__)

ACCEPTED_UPLOAD_TYPES = frozenset(
    {"application/pdf", "image/png", "image/jpeg", "text/csv", "text/plain"}
)


async def submit_appeal(
    engine: Engine, gateway: TemporalGateway, principal: Principal, new: NewAppeal
) -> tuple[Appeal, bool]:
    def _create() -> tuple[Appeal, bool]:
        with session_scope(engine) as session:
            return create_appeal(session, new)

    appeal, created = await to_thread.run_sync(_create)
    if not appeal.workflow_started:
        try:
            await gateway.start_appeal(appeal)
        except Exception:
            # The appeal is recorded; the worker's reconciler starts its workflow later.
            log.warning("workflow start for appeal %s deferred", appeal.id, exc_info=True)
            return appeal, created
        await to_thread.run_sync(_mark_started, engine, appeal.id)
        appeal.workflow_started = True
    return appeal, created


def _mark_started(engine: Engine, appeal_id: str) -> None:
    with session_scope(engine) as session:
        mark_workflow_started(session, appeal_id)


def appeal_detail(engine: Engine, appeal_id: str, customer_id: str | None) -> AppealDetail:
    with session_scope(engine, read_only=True) as session:
        appeal = get_appeal(session, appeal_id, customer_id=customer_id)
        events = session.exec(
            select(AppealEvent)
            .where(AppealEvent.appeal_id == appeal_id)
            .order_by(col(AppealEvent.seq))
        ).all()
        documents = session.exec(
            select(Document)
            .where(Document.appeal_id == appeal_id)
            .order_by(col(Document.created_at))
        ).all()
        decision = latest_decision(session, appeal_id)
        return AppealDetail(
            **AppealSummary.model_validate(appeal, from_attributes=True).model_dump(),
            customer_id=appeal.customer_id,
            status_reason=appeal.status_reason,
            amount_owed_minor=appeal.amount_owed_minor,
            closed_at=appeal.closed_at,
            workflow_id=appeal.workflow_id,
            timeline=[TimelineEntry.model_validate(e, from_attributes=True) for e in events],
            checklist=[
                ChecklistItemPublic.model_validate(item, from_attributes=True)
                for item in checklist(session, appeal_id)
            ],
            documents=[DocumentPublic.model_validate(d, from_attributes=True) for d in documents],
            decision=DecisionPublic.model_validate(decision, from_attributes=True)
            if decision
            else None,
        )


async def upload_document(
    engine: Engine,
    s3: Any,
    settings: Settings,
    gateway: TemporalGateway,
    principal: Principal,
    *,
    appeal_id: str,
    doc_type: str,
    filename: str,
    content_type: str,
    stream: IO[bytes],
) -> Document:
    try:
        document_type = DocumentType(doc_type)
    except ValueError as exc:
        raise InvalidInput(
            f"Unknown document type {doc_type!r}; use one of {', '.join(DocumentType)}.",
            code="unknown_document_type",
        ) from exc
    base_type = content_type.split(";")[0].strip().lower()
    if base_type not in ACCEPTED_UPLOAD_TYPES:
        raise UnsupportedMediaType(
            f"Files of type {content_type or 'unknown'} are not accepted; "
            "upload a PDF, PNG, JPEG or CSV file.",
            code="unsupported_document_type",
        )

    def _store() -> Document:
        with session_scope(engine, read_only=True) as session:
            appeal = get_appeal(session, appeal_id, customer_id=principal.subject)
            if appeal.status != AppealStatus.AWAITING_DOCUMENTS:
                raise Conflict(
                    f"The appeal is {appeal.status.value} and is not collecting documents.",
                    code="not_collecting_documents",
                    appeal_status=appeal.status.value,
                )
        document_id = str(uuid.uuid4())
        key = document_key(appeal_id, document_id)
        stored = put_stream(
            s3,
            settings,
            key=key,
            stream=stream,
            content_type=base_type,
            max_bytes=settings.document_max_bytes,
        )
        with session_scope(engine) as session:
            document = Document(
                id=document_id,
                appeal_id=appeal_id,
                customer_id=principal.subject,
                doc_type=document_type.value,
                s3_key=key,
                filename=filename[:255] or "upload",
                declared_content_type=base_type,
                size_bytes=stored.size,
                sha256=stored.sha256,
            )
            session.add(document)
        return document

    document = await to_thread.run_sync(_store)
    # Failure here is not fatal: the reconciler re-signals UPLOADED documents.
    try:
        await gateway.document_uploaded(f"appeal-{appeal_id}", document.id)
    except Exception:
        log.warning("document_uploaded signal for %s deferred", document.id, exc_info=True)
    return document


async def withdraw_appeal(
    engine: Engine, gateway: TemporalGateway, principal: Principal, appeal_id: str, reason: str
) -> Appeal:
    def _load() -> Appeal:
        with session_scope(engine, read_only=True) as session:
            return get_appeal(session, appeal_id, customer_id=principal.subject)

    appeal = await to_thread.run_sync(_load)
    if appeal.status not in WITHDRAWABLE_STATUSES:
        raise Conflict(
            f"The appeal is {appeal.status.value}; it can no longer be withdrawn.",
            code="not_withdrawable",
            appeal_status=appeal.status.value,
        )
    await gateway.withdraw(
        appeal.workflow_id, WithdrawRequest(requested_by=principal.actor, reason=reason)
    )
    return appeal


async def decide_task(
    engine: Engine,
    gateway: TemporalGateway,
    principal: Principal,
    *,
    task_id: str,
    decision: ReviewDecision,
    idempotency_key: str | None,
) -> tuple[str, Any]:
    def _load() -> str:
        with session_scope(engine, read_only=True) as session:
            return get_task(session, task_id).appeal_id

    appeal_id = await to_thread.run_sync(_load)
    update_id = idempotency_key or f"decision-{uuid.uuid4()}"
    accepted = await gateway.decide(f"appeal-{appeal_id}", decision, update_id=update_id)
    return appeal_id, accepted
