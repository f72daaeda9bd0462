"""Use cases behind the routes: each opens its own unit of work in a thread (sync DB and
boto3 never run on the event loop) and talks to Temporal through the gateway."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import date
from typing import Any

from anyio import to_thread
from pydantic import BaseModel
from sqlalchemy import String, bindparam, select
from sqlalchemy.engine import Engine, Row

from api.schemas.appeals import (
    AppealDetail,
    AppealSummary,
    ChecklistItemPublic,
    DecisionPublic,
    DocumentPublic,
    NotificationStatusPublic,
    TimelineEntry,
)
from core.appeals.service import (
    NewAppeal,
    check_visible,
    create_appeal,
    get_appeal,
    mark_workflow_started,
)
from core.appeals.status_reason import localize_status_reason, reader_locale
from core.auth import Principal
from core.db import read_scope, session_scope
from core.db.case_tables import Appeal, AppealEvent, ChecklistItem, Decision, Document, Notification
from core.db.ledger_tables import Customer
from core.errors import Conflict
from core.policy.loader import load_default_policy
from core.staff import customer_view
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


def _columns(table: Any, schema: type[BaseModel]) -> list[Any]:
    """The columns of `table` that the public schema shows, by field name."""
    return [table.c[name] for name in schema.model_fields]


_APPEAL_ID = bindparam("appeal_id", type_=String())
_appeal, _customer = Appeal.__table__, Customer.__table__  # type: ignore[attr-defined]
_event, _document, _item = (
    AppealEvent.__table__,  # type: ignore[attr-defined]
    Document.__table__,  # type: ignore[attr-defined]
    ChecklistItem.__table__,  # type: ignore[attr-defined]
)
_decision, _notification = Decision.__table__, Notification.__table__  # type: ignore[attr-defined]

# The appeal page reads columns, not ORM objects, in one read transaction: the rows of
# core's appeal_events, appeal_documents, checklist, latest_decision and list_for_appeal
# (same filters and order), each statement built once.
_DETAIL_APPEAL = (
    select(
        *_columns(_appeal, AppealSummary),
        *(
            _appeal.c[name]
            for name in ("customer_id", "status_reason", "amount_owed_minor", "closed_at", "workflow_id")
        ),
        _customer.c.locale.label("customer_locale"),
    )
    .outerjoin(_customer, _customer.c.id == _appeal.c.customer_id)
    .where(_appeal.c.id == _APPEAL_ID)
)
_DETAIL_LISTS = {
    "timeline": select(*_columns(_event, TimelineEntry))
    .where(_event.c.appeal_id == _APPEAL_ID)
    .order_by(_event.c.seq),
    "checklist": select(*_columns(_item, ChecklistItemPublic))
    .where(_item.c.appeal_id == _APPEAL_ID)
    .order_by(_item.c.id),
    "documents": select(*_columns(_document, DocumentPublic))
    .where(_document.c.appeal_id == _APPEAL_ID)
    .order_by(_document.c.created_at, _document.c.id),
    "decision": select(*_columns(_decision, DecisionPublic))
    .where(_decision.c.appeal_id == _APPEAL_ID)
    .order_by(_decision.c.id.desc())
    .limit(1),
    # A customer's notices only: staff notices about the appeal are not the customer's.
    "notifications": select(*_columns(_notification, NotificationStatusPublic))
    .where(_notification.c.appeal_id == _APPEAL_ID, _notification.c.audience == "customer")
    .order_by(_notification.c.created_at, _notification.c.id),
}


def dicts(rows: Iterable[Row[Any]]) -> list[dict[str, Any]]:
    """Rows as plain dicts, which pydantic reads natively (a RowMapping it reads key by key in
    Python; Row._asdict is four times slower than this)."""
    out: list[dict[str, Any]] = []
    keys: tuple[str, ...] = ()
    for row in rows:
        keys = keys or row._fields
        out.append(dict(zip(keys, row, strict=True)))
    return out


def appeal_detail(
    engine: Engine, appeal_id: str, customer_id: str | None, *, accept_language: str | None = None
) -> AppealDetail:
    """The appeal page. `customer_id` set: the customer's own appeal, its status reason in
    their locale; None: staff, in English unless `accept_language` prefers Chinese."""
    params = {"appeal_id": appeal_id}
    with read_scope(engine) as connection:
        found = connection.execute(_DETAIL_APPEAL, params).first()
        check_visible(appeal_id, found.customer_id if found else None, customer_id=customer_id)
        assert found is not None
        lists = {name: dicts(connection.execute(query, params)) for name, query in _DETAIL_LISTS.items()}
    appeal = found._asdict()
    locale = reader_locale(
        customer_locale=appeal["customer_locale"],
        accept_language=accept_language,
        is_customer=customer_id is not None,
    )
    reason = localize_status_reason(
        appeal["status_reason"],
        locale,
        load_default_policy().policy.reasons,
        amount_owed_minor=appeal["amount_owed_minor"],
    )
    decision = lists.pop("decision")
    if customer_id is not None:  # a customer sees what staff did by role, never who did it
        customer_view(lists["timeline"], decision)
    return AppealDetail.model_validate(
        {
            **appeal,
            "status_reason": reason.text,
            "status_reason_codes": reason.codes,
            "decision": decision[0] if decision else None,
            **lists,
        }
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
