"""Use cases behind the routes: each opens its own unit of work in a thread (sync DB and
boto3 never run on the event loop) and talks to Temporal through the gateway."""

from __future__ import annotations

import logging
from datetime import date

from anyio import to_thread
from sqlalchemy.engine import Engine

from api.schemas.appeals import (
    AppealDetail,
    AppealSummary,
    ChecklistItemPublic,
    DecisionPublic,
    DocumentPublic,
    NotificationStatusPublic,
    TimelineEntry,
)
from core.appeals.audit import appeal_events
from core.appeals.service import NewAppeal, appeal_documents, create_appeal, get_appeal, mark_workflow_started
from core.appeals.status_reason import localize_status_reason, reader_locale
from core.auth import Principal
from core.db import session_scope
from core.db.case_tables import Appeal
from core.db.ledger_tables import Customer
from core.documents.checklist import checklist
from core.errors import Conflict
from core.notifications.outbox import list_for_appeal
from core.policy.loader import load_default_policy
from core.reviews.service import latest_decision
from core.status import WITHDRAWABLE_STATUSES, AppealStatus
from gateway.temporal import TemporalGateway
from workflows.messages import HumanReviewRequest, WithdrawRequest

log = logging.getLogger(__name__)


async def submit_appeal(
    engine: Engine, gateway: TemporalGateway, principal: Principal, new: NewAppeal, *, today: date
) -> tuple[Appeal, bool]:
    def _create() -> tuple[Appeal, bool]:
        with session_scope(engine) as session:
            return create_appeal(session, new, today=today)

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


def appeal_detail(
    engine: Engine, appeal_id: str, customer_id: str | None, *, accept_language: str | None = None
) -> AppealDetail:
    """The appeal page. `customer_id` set: the customer's own appeal, its status reason in
    their locale; None: staff, in English unless `accept_language` prefers Chinese."""
    with session_scope(engine, read_only=True) as session:
        appeal = get_appeal(session, appeal_id, customer_id=customer_id)
        customer = session.get(Customer, appeal.customer_id) if customer_id is not None else None
        locale = reader_locale(
            customer_locale=customer.locale if customer else None,
            accept_language=accept_language,
            is_customer=customer_id is not None,
        )
        reason = localize_status_reason(
            appeal.status_reason,
            locale,
            load_default_policy().policy.reasons,
            amount_owed_minor=appeal.amount_owed_minor,
        )
        events = appeal_events(session, appeal_id)
        documents = appeal_documents(session, appeal_id)
        decision = latest_decision(session, appeal_id)
        return AppealDetail(
            **AppealSummary.model_validate(appeal, from_attributes=True).model_dump(),
            customer_id=appeal.customer_id,
            status_reason=reason.text,
            status_reason_codes=reason.codes,
            amount_owed_minor=appeal.amount_owed_minor,
            closed_at=appeal.closed_at,
            workflow_id=appeal.workflow_id,
            timeline=[TimelineEntry.model_validate(e, from_attributes=True) for e in events],
            checklist=[
                ChecklistItemPublic.model_validate(item, from_attributes=True)
                for item in checklist(session, appeal_id)
            ],
            documents=[DocumentPublic.model_validate(d, from_attributes=True) for d in documents],
            decision=DecisionPublic.model_validate(decision, from_attributes=True) if decision else None,
            notifications=[
                NotificationStatusPublic.model_validate(row, from_attributes=True)
                for row in list_for_appeal(session, appeal_id)
                if row.audience == "customer"
            ],
        )


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
    await gateway.withdraw(appeal.id, WithdrawRequest(requested_by=principal.actor, reason=reason))
    return appeal


async def request_human_review(
    engine: Engine, gateway: TemporalGateway, principal: Principal, appeal_id: str, reason: str
) -> None:
    """The customer asks for a person to review an automatic decline (once, within the window
    the workflow keeps open; its Update validator has the last word)."""

    def _check() -> None:
        with session_scope(engine, read_only=True) as session:
            appeal = get_appeal(session, appeal_id, customer_id=principal.subject)
            if appeal.status != AppealStatus.AUTO_DECLINED:
                raise Conflict(
                    f"The appeal is {appeal.status.value}; a human review can be asked for only "
                    "after an automatic decline.",
                    code="human_review_not_available",
                    appeal_status=appeal.status.value,
                )

    await to_thread.run_sync(_check)
    request = HumanReviewRequest(requested_by=principal.actor, reason=reason)
    await gateway.request_human_review(appeal_id, request, update_id=f"human-review-{appeal_id}")
