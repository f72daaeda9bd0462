"""Use cases behind the routes: each opens its own unit of work in a thread (sync DB and
boto3 never run on the event loop) and talks to Temporal through the gateway."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from anyio import to_thread
from pydantic import BaseModel
from sqlalchemy import Integer, String, bindparam, cast, func, literal_column, null, select, union_all
from sqlalchemy.engine import Connection, Engine, Row

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
from core.logs import add_log_context
from core.policy.loader import load_default_policy
from core.staff import customer_view
from core.status import WITHDRAWABLE_STATUSES, AppealStatus
from core.tracing import annotate_span
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
    # The new appeal's id on the request's lines and span (its path has none yet).
    add_log_context(appeal_id=appeal.id, workflow_id=appeal.workflow_id)
    annotate_span(appeal_id=appeal.id)
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

# The appeal page reads columns, not ORM objects, in one read scope: the appeal's row, then its
# lists (core's appeal_events, checklist, appeal_documents, latest_decision and
# list_for_appeal: same filters and order), each statement built once. On PostgreSQL the lists
# come in one UNION ALL (_lists_statement), one round trip instead of five; on SQLite, where a
# statement costs no round trip, one statement per list is cheaper than the union's wide rows.
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


@dataclass(frozen=True)
class _List:
    table: Any
    schema: type[BaseModel]
    order_by: tuple[Any, ...]
    where: tuple[Any, ...] = ()


_LISTS: dict[str, _List] = {
    "timeline": _List(_event, TimelineEntry, (_event.c.seq,)),
    "checklist": _List(_item, ChecklistItemPublic, (_item.c.id,)),
    "documents": _List(_document, DocumentPublic, (_document.c.created_at, _document.c.id)),
    # Newest first: the appeal's decision is the first row of this list.
    "decision": _List(_decision, DecisionPublic, (_decision.c.id.desc(),)),
    # A customer's notices only: staff notices about the appeal are not the customer's.
    "notifications": _List(
        _notification,
        NotificationStatusPublic,
        (_notification.c.created_at, _notification.c.id),
        (_notification.c.audience == "customer",),
    ),
}


def _list_statements(lists: dict[str, _List]) -> dict[str, Any]:
    """One statement per list, for one appeal."""
    return {
        name: select(*(spec.table.c[field] for field in spec.schema.model_fields))
        .where(spec.table.c.appeal_id == _APPEAL_ID, *spec.where)
        .order_by(*spec.order_by)
        for name, spec in lists.items()
    }


def _lists_statement(lists: dict[str, _List]) -> tuple[Any, list[tuple[str, tuple[str, ...], slice]]]:
    """The UNION ALL of `lists` for one appeal, and per `part` number: the list's name, its
    field names and where its values sit in a row. Each branch gives its own list's columns
    and NULLs of the same types in the other lists' places, so every value is typed as a
    statement of its own would type it; `part` says which list a row is of, `pos` its place
    in that list."""
    layout: list[tuple[str, tuple[str, ...], slice]] = []
    at = 2  # after part and pos
    for name, spec in lists.items():
        fields = tuple(spec.schema.model_fields)
        layout.append((name, fields, slice(at, at + len(fields))))
        at += len(fields)
    branches = []
    for part, spec in enumerate(lists.values()):
        values = [
            (other.table.c[field] if other is spec else cast(null(), other.table.c[field].type)).label(
                f"{other_name}_{field}"
            )
            for other_name, other in lists.items()
            for field in other.schema.model_fields
        ]
        branches.append(
            select(
                literal_column(str(part), Integer).label("part"),
                func.row_number().over(order_by=spec.order_by).label("pos"),
                *values,
            ).where(spec.table.c.appeal_id == _APPEAL_ID, *spec.where)
        )
    statement = union_all(*branches).order_by(literal_column("part"), literal_column("pos"))
    return statement, layout


_DETAIL_LISTS = _list_statements(_LISTS)
_DETAIL_UNION, _LAYOUT = _lists_statement(_LISTS)


def dicts(rows: Iterable[Row[Any]]) -> list[dict[str, Any]]:
    """Rows as plain dicts, which pydantic reads natively (a RowMapping it reads key by key in
    Python; Row._asdict is four times slower than this)."""
    out: list[dict[str, Any]] = []
    keys: tuple[str, ...] = ()
    for row in rows:
        keys = keys or row._fields
        out.append(dict(zip(keys, row, strict=True)))
    return out


def _read_lists(connection: Connection, params: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    if connection.dialect.name == "postgresql":
        return _split(connection.execute(_DETAIL_UNION, params))
    return {name: dicts(connection.execute(query, params)) for name, query in _DETAIL_LISTS.items()}


def _split(rows: Iterable[Row[Any]]) -> dict[str, list[dict[str, Any]]]:
    """The rows of _DETAIL_UNION as each list's dicts, in order."""
    lists: dict[str, list[dict[str, Any]]] = {name: [] for name, _, _ in _LAYOUT}
    for row in rows:
        name, fields, where = _LAYOUT[row[0]]
        lists[name].append(dict(zip(fields, row[where], strict=True)))
    return lists


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
        lists = _read_lists(connection, params)
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
    decision = lists.pop("decision")[:1]  # the latest
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
