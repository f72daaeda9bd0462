"""Risk events from the core credit system (docs/lender-loop.md, "Risk events"): validated as a
whole batch, recorded once per event id, applied to the ledger in `occurred_at` order per account
under the account's row lock.

A batch with any bad event is refused with every bad event named (index, id, reason) and changes
nothing. A known id with the same body is answered `already_applied`; with another body it is a
bad event (`event_id_reused`). An event older than the newest one applied to the same bill (or,
for a credit report, to the same account's credit report) is recorded `stale` and changes
nothing. Each applied event gets a limit-action workflow id (`limit-action-<account>-<event id>`),
started by the caller after the commit (`mark_started`), else by the reconciler.

Effects: `bill_overdue` sets the bill's days past due; `bill_paid` adds the payment (never above
the amount due) and its time; `loan_application` records an application elsewhere;
`credit_report_update` upserts the customer's attributes (source `credit-report`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    ValidationError,
    field_validator,
)
from sqlmodel import Session, col, select

from core.db.ledger_tables import Bill, CreditAccount, CustomerAttribute, LoanApplication
from core.db.lender_tables import RiskEvent, RiskEventOutcome
from core.errors import InvalidInput
from core.ledger.account_audit import lock_account
from core.policy.model import RiskEventKind

MAX_EVENTS: Final = 1000
CREDIT_REPORT_SOURCE: Final = "credit-report"
EventId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$")]
AccountId = Annotated[str, StringConstraints(min_length=1, max_length=64)]
AttributeName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")]
AttributeValue = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: EventId
    account_id: AccountId
    occurred_at: AwareDatetime

    @field_validator("occurred_at")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)


class BillOverdue(_Event):
    kind: Literal[RiskEventKind.BILL_OVERDUE]
    bill_due_date: date
    days_past_due: int = Field(ge=0, le=3650)


class BillPaid(_Event):
    kind: Literal[RiskEventKind.BILL_PAID]
    bill_due_date: date
    paid_minor: int = Field(gt=0, le=10**13)


class LoanApplied(_Event):
    kind: Literal[RiskEventKind.LOAN_APPLICATION]
    lender: str = Field(min_length=1, max_length=200)
    amount_minor: int = Field(ge=0, le=10**13)
    small_loan: bool


class CreditReportUpdate(_Event):
    kind: Literal[RiskEventKind.CREDIT_REPORT_UPDATE]
    attributes: dict[AttributeName, AttributeValue] = Field(min_length=1, max_length=100)


RiskEventIn = Annotated[
    BillOverdue | BillPaid | LoanApplied | CreditReportUpdate, Field(discriminator="kind")
]
_EVENT: Final[TypeAdapter[RiskEventIn]] = TypeAdapter(RiskEventIn)


class RiskEventBatch(BaseModel):
    """The request body (for the OpenAPI document; the service validates each event itself)."""

    model_config = ConfigDict(extra="forbid")

    events: list[RiskEventIn] = Field(min_length=1, max_length=MAX_EVENTS)


@dataclass(frozen=True)
class EventProblem:
    index: int | None
    id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "reason": self.reason}


@dataclass(frozen=True)
class EventOutcome:
    index: int
    id: str
    account_id: str
    outcome: str  # applied | stale | already_applied
    workflow_id: str | None
    needs_start: bool = False  # its workflow was not started yet


def limit_action_workflow_id(account_id: str, event_id: str) -> str:
    return f"limit-action-{account_id}-{event_id}"


def _refuse(problems: list[EventProblem]) -> InvalidInput:
    first = problems[0]
    where = (
        f"event {first.index}" + (f" ({first.id})" if first.id else "") if first.index is not None else "body"
    )
    return InvalidInput(
        f"{len(problems)} bad event(s) in the batch; nothing was applied. First: {where}: {first.reason}",
        code="risk_events_invalid",
        errors=[p.as_dict() for p in problems],
        error_count=len(problems),
    )


def _message(error: dict[str, Any]) -> str:
    loc = ".".join(str(part) for part in error["loc"][1:] if part not in RISK_KINDS) or "event"
    return f"{loc}: {error['msg']}"


RISK_KINDS: Final = {kind.value for kind in RiskEventKind}


def parse_batch(body: Any) -> list[RiskEventIn]:
    """Each event validated on its own model (by `kind`); every bad one named. Raises
    InvalidInput (422 `risk_events_invalid`) with `errors`: index, id, reason."""
    if not isinstance(body, dict) or set(body) != {"events"} or not isinstance(body["events"], list):
        raise _refuse([EventProblem(None, None, 'the body must be {"events": [...]} and nothing else')])
    raw = body["events"]
    if not raw:
        raise _refuse([EventProblem(None, None, "no events")])
    if len(raw) > MAX_EVENTS:
        raise _refuse([EventProblem(None, None, f"at most {MAX_EVENTS} events per batch, not {len(raw)}")])
    events: list[RiskEventIn] = []
    problems: list[EventProblem] = []
    for index, item in enumerate(raw):
        item_id = item.get("id") if isinstance(item, dict) and isinstance(item.get("id"), str) else None
        try:
            events.append(_EVENT.validate_python(item))
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            if isinstance(item, dict) and item.get("kind") not in RISK_KINDS:
                reason = f"kind: must be one of {', '.join(sorted(RISK_KINDS))}"
            else:
                reason = "; ".join(_message(dict(e)) for e in errors)
            problems.append(EventProblem(index, item_id, reason))
    if problems:
        raise _refuse(problems)
    return events


def _payload(event: RiskEventIn) -> dict[str, Any]:
    payload: dict[str, Any] = json.loads(event.model_dump_json())
    return payload


@dataclass(frozen=True)
class BatchResult:
    outcomes: list[EventOutcome]

    @property
    def to_start(self) -> list[EventOutcome]:
        return [o for o in self.outcomes if o.needs_start and o.workflow_id is not None]


def record_batch(
    session: Session, events: Sequence[RiskEventIn], *, received_from: str, now: datetime
) -> BatchResult:
    """Checks the batch against the ledger and what was received before, then applies it, all in
    the caller's transaction; raises InvalidInput naming every bad event (nothing applied)."""
    problems: list[EventProblem] = []
    first_index: dict[str, int] = {}
    for index, event in enumerate(events):
        if event.id in first_index:
            problems.append(
                EventProblem(
                    index, event.id, f"the id is used twice in this batch (first at {first_index[event.id]})"
                )
            )
        first_index.setdefault(event.id, index)
    known = {
        row.id: row
        for row in session.exec(select(RiskEvent).where(col(RiskEvent.id).in_([e.id for e in events]))).all()
    }
    accounts = {
        row.id: row
        for row in session.exec(
            select(CreditAccount).where(col(CreditAccount.id).in_({e.account_id for e in events}))
        ).all()
    }
    for index, event in enumerate(events):
        previous = known.get(event.id)
        if previous is not None:
            if previous.payload != _payload(event):
                problems.append(
                    EventProblem(
                        index,
                        event.id,
                        "event_id_reused: an event with this id was received before with another body",
                    )
                )
            continue
        if event.account_id not in accounts:
            problems.append(
                EventProblem(index, event.id, f"account_id: unknown account {event.account_id!r}")
            )
            continue
        if (
            isinstance(event, BillOverdue | BillPaid)
            and _bill(session, event.account_id, event.bill_due_date) is None
        ):
            problems.append(
                EventProblem(
                    index,
                    event.id,
                    f"bill_due_date: account {event.account_id} has no bill due on "
                    f"{event.bill_due_date.isoformat()}",
                )
            )
    if problems:
        problems.sort(key=lambda p: p.index if p.index is not None else -1)
        raise _refuse(problems)

    outcomes: dict[int, EventOutcome] = {}
    new: list[tuple[int, RiskEventIn]] = []
    for index, event in enumerate(events):
        if event.id in known:
            row = known[event.id]
            outcomes[index] = EventOutcome(
                index,
                event.id,
                event.account_id,
                "already_applied",
                row.action_workflow_id,
                needs_start=row.action_workflow_id is not None and row.action_started_at is None,
            )
        else:
            new.append((index, event))
    # Per account, in occurred_at order (the order in the batch among equal times), under its lock.
    new.sort(key=lambda pair: (pair[1].account_id, pair[1].occurred_at, pair[0]))
    for account_id in sorted({event.account_id for _, event in new}):
        account = lock_account(session, account_id)
        for index, event in (pair for pair in new if pair[1].account_id == account_id):
            outcomes[index] = _apply(session, account, index, event, received_from=received_from, now=now)
    session.flush()
    return BatchResult([outcomes[i] for i in range(len(events))])


def _bill(session: Session, account_id: str, due: date) -> Bill | None:
    return session.exec(
        select(Bill)
        .where(Bill.account_id == account_id, Bill.due_date == due)
        .order_by(col(Bill.id))
        .limit(1)
    ).first()


def _is_stale(session: Session, event: RiskEventIn) -> bool:
    """Older than the newest applied event about the same bill (bill events) or the same
    account's credit report; applications are never stale."""
    if isinstance(event, LoanApplied):
        return False
    kinds = (
        [RiskEventKind.CREDIT_REPORT_UPDATE.value]
        if isinstance(event, CreditReportUpdate)
        else [RiskEventKind.BILL_OVERDUE.value, RiskEventKind.BILL_PAID.value]
    )
    rows = session.exec(
        select(RiskEvent).where(
            RiskEvent.account_id == event.account_id,
            col(RiskEvent.kind).in_(kinds),
            RiskEvent.outcome == RiskEventOutcome.APPLIED.value,
            col(RiskEvent.occurred_at) > event.occurred_at,
        )
    ).all()
    if isinstance(event, CreditReportUpdate):
        return bool(rows)
    due = event.bill_due_date.isoformat()
    return any(row.payload.get("bill_due_date") == due for row in rows)


def _apply(
    session: Session,
    account: CreditAccount,
    index: int,
    event: RiskEventIn,
    *,
    received_from: str,
    now: datetime,
) -> EventOutcome:
    stale = _is_stale(session, event)
    if not stale:
        _effect(session, account, event, now)
    workflow_id = None if stale else limit_action_workflow_id(account.id, event.id)
    session.add(
        RiskEvent(
            id=event.id,
            kind=event.kind.value,
            account_id=account.id,
            customer_id=account.customer_id,
            occurred_at=event.occurred_at,
            payload=_payload(event),
            received_at=now,
            received_from=received_from[:80],
            outcome=(RiskEventOutcome.STALE if stale else RiskEventOutcome.APPLIED).value,
            action_workflow_id=workflow_id,
        )
    )
    session.flush()
    return EventOutcome(
        index, event.id, account.id, "stale" if stale else "applied", workflow_id, needs_start=not stale
    )


def _effect(session: Session, account: CreditAccount, event: RiskEventIn, now: datetime) -> None:
    if isinstance(event, BillOverdue | BillPaid):
        bill = _bill(session, account.id, event.bill_due_date)
        assert bill is not None  # checked before anything was applied
        if isinstance(event, BillOverdue):
            bill.days_past_due = event.days_past_due
        else:
            bill.paid_minor = min(bill.amount_due_minor, bill.paid_minor + event.paid_minor)
            bill.paid_at = event.occurred_at
        session.add(bill)
    elif isinstance(event, LoanApplied):
        session.add(
            LoanApplication(
                customer_id=account.customer_id,
                applied_on=event.occurred_at.date(),
                lender=event.lender,
                amount_minor=event.amount_minor,
                small_loan=event.small_loan,
            )
        )
    else:
        existing = {
            row.name: row
            for row in session.exec(
                select(CustomerAttribute).where(
                    CustomerAttribute.customer_id == account.customer_id,
                    col(CustomerAttribute.name).in_(list(event.attributes)),
                )
            ).all()
        }
        for name, value in sorted(event.attributes.items()):
            row = existing.get(name) or CustomerAttribute(
                customer_id=account.customer_id, name=name, value=value, source=CREDIT_REPORT_SOURCE
            )
            row.value, row.source, row.updated_at = value, CREDIT_REPORT_SOURCE, now
            session.add(row)
    session.flush()


def mark_started(session: Session, event_ids: Sequence[str], *, at: datetime) -> None:
    """Records that the limit-action workflows of these events were started."""
    if not event_ids:
        return
    for row in session.exec(select(RiskEvent).where(col(RiskEvent.id).in_(list(event_ids)))).all():
        if row.action_started_at is None:
            row.action_started_at = at
            session.add(row)


# -- receiving a batch: who sent it, the raw body --------------------------------------------

MAX_BODY_BYTES: Final = 2 * 1024 * 1024  # 1,000 events of any kind fit easily


def signed_sender(
    secret: str | None, *, timestamp: str | None, signature: str | None, body: bytes, now: datetime
) -> str:
    """`"signature"` when the body carries a valid signature of the core credit system (the
    webhooks' scheme, core/notifications/channels/webhook.py, within 5 minutes of `now`); raises
    Unauthorized `invalid_signature` otherwise."""
    from core.errors import Unauthorized
    from core.notifications.channels.webhook import verify_signature

    if not secret:
        raise Unauthorized(
            "Signed risk events are not accepted here (no APPEALS_RISK_EVENT_SECRET); use a staff token.",
            code="invalid_signature",
        )
    if not timestamp or not signature:
        raise Unauthorized(
            "Both X-Appeals-Timestamp and X-Appeals-Signature are needed.", code="invalid_signature"
        )
    if not verify_signature(secret, timestamp, body, signature, now=now.timestamp()):
        raise Unauthorized(
            "The signature does not match the body, or its timestamp is more than 5 minutes off.",
            code="invalid_signature",
        )
    return "signature"


def parse_body(body: bytes) -> list[RiskEventIn]:
    """The raw JSON body, each event validated (InvalidInput `risk_events_invalid` naming each
    bad one, or the body itself)."""
    if len(body) > MAX_BODY_BYTES:
        from core.errors import PayloadTooLarge

        raise PayloadTooLarge(f"At most {MAX_BODY_BYTES // (1024 * 1024)} MiB of events per request.")
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _refuse([EventProblem(None, None, f"the body is not JSON: {exc}")]) from exc
    if "\x00" in body.decode("utf-8", "replace") or "\\u0000" in body.decode("utf-8", "replace"):
        raise _refuse([EventProblem(None, None, "the body holds a NUL character")])
    return parse_batch(data)


def batch_schema() -> dict[str, Any]:
    """The request body's JSON Schema with its definitions inlined (for the OpenAPI document)."""
    schema = RiskEventBatch.model_json_schema()
    defs = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return inline(defs[ref.removeprefix("#/$defs/")])
            return {key: inline(value) for key, value in node.items() if key != "mapping"}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    inlined: dict[str, Any] = inline(schema)
    return inlined
