"""The notification outbox: one row per (appeal, event, sequence, channel), never sent twice.

Planning and delivering are separate steps.

`plan_notifications` writes, in the caller's transaction, one Notification row per channel
with the unique key `appeal:event:sequence:channel` (webhooks: one row per partner endpoint,
`...:WEBHOOK:<sha256(url)[:8]>`), the recipient, and the content rendered now: what a
retry sends later is exactly what was planned. Planning again returns the existing rows.
IN_APP rows are written SENT (the row is the delivery, as `record_in_app` does, with the
same key); EMAIL, SMS and WEBHOOK rows start PENDING. A channel without a recipient (no
email address or phone on file, no webhook URL configured) gets no row.

A caller that sends what it plans at once (an appeal's step) uses `plan_and_claim`: the rows
are written SENDING in its own transaction and `send_claimed` sends them after the commit and
records every outcome in one more transaction; a row its sender never got to is stale after
`SENDING_STALE_AFTER` and the relay (`undelivered`, `deliver`) takes it.

`deliver` moves one row PENDING -> SENDING -> SENT, or -> FAILED with `last_error` and
`attempts`; FAILED rows may be delivered again (the caller's retry with backoff, or an
operator). Each row is delivered on its own: a failed channel leaves the others and the
appeal alone. A SENT row is never sent again: on retry, replay or restart `deliver`
returns it untouched.

The window no system can close. The SENDING mark is committed before the send and SENT
right after it, each in its own short transaction with no lock held while the network is
used. If the process dies after the SMTP server or partner accepted the message and
before SENT is committed, nothing can tell whether the message left: the row stays
SENDING, and a later `deliver` (after `stale_after`, so that a send still in progress on
another worker is not doubled) sends it again. That window is kept to the time between
the provider's acceptance and one single-row UPDATE. Every message carries what lets its
receiver drop the duplicate: an email's Message-ID is derived from the idempotency key
(`<sha256(key)[:32]@appeals.local>`, fixed at planning), a webhook carries the key as its
`Idempotency-Key` header (and the same body), an SMS provider gets it as client reference.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.db import session_scope
from core.db.case_tables import Appeal, Notification
from core.db.ledger_tables import Customer
from core.db.lender_tables import AccountNotice
from core.db.types import utcnow
from core.notifications.channels.base import OutboundMessage, RetryableSendError, Sender, SendError
from core.notifications.channels.email import email_message_id
from core.notifications.rendering import (
    RenderedEmail,
    notice_subject,
    pick_locale,
    render_email,
    render_notice,
    render_sms,
)
from core.notifications.service import notification_key, original_limit_minor

IN_APP = "IN_APP"
EMAIL = "EMAIL"
SMS = "SMS"
WEBHOOK = "WEBHOOK"
CHANNELS = (IN_APP, EMAIL, SMS, WEBHOOK)
# A customer's notice goes to every channel (a channel without a recipient gets no row).
CUSTOMER_CHANNELS = CHANNELS
# A SENDING row younger than this may still be in the hands of another worker; older, its
# sender is taken to have died (longer than any sender's timeout: SMTP and webhooks 10 s), so
# a send lost in a crash is retried within seconds. Should a slow send outlive it, the copy
# carries the same key, which the channel's receiver drops (see the module's docstring).
SENDING_STALE_AFTER = timedelta(seconds=20)
_MAX_ERROR = 1000


class NotificationStatus(StrEnum):
    PENDING = "PENDING"
    SENDING = "SENDING"
    SENT = "SENT"
    FAILED = "FAILED"


# The outbox tables `deliver` works on: an appeal's notices, and an account's
# (core/notifications/account_notices.py); the same delivery columns.
OutboxRow = Notification | AccountNotice
OutboxTable = type[Notification] | type[AccountNotice]


class DeliveryInProgress(RetryableSendError):
    """Another worker marked the row SENDING less than `stale_after` ago."""


def webhook_key(appeal_id: str, event: str, sequence: int, url: str) -> str:
    suffix = hashlib.sha256(url.encode()).hexdigest()[:8]
    return f"{notification_key(appeal_id, event, sequence, WEBHOOK)}:{suffix}"


def _webhook_body(
    appeal: Appeal, event: str, sequence: int, locale: str, key: str, subject: str, context: Mapping[str, Any]
) -> str:
    payload = {
        "id": key,
        "type": f"appeal.{event}",
        "subject": subject,
        "appeal_id": appeal.id,
        "customer_id": appeal.customer_id,
        "account_id": appeal.account_id,
        "sequence": sequence,
        "locale": locale,
        "occurred_at": utcnow().isoformat(),
        "data": dict(context),
    }
    return json.dumps(payload, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str)


_Row = TypeVar("_Row", Notification, AccountNotice)


def existing_row(session: Session, key: str, table: type[_Row]) -> _Row | None:
    """The row of either outbox table with this idempotency key, if any."""
    return session.exec(select(table).where(col(table.idempotency_key) == key)).first()


def _existing_rows(session: Session, keys: Sequence[str]) -> dict[str, Notification]:
    """The appeal outbox's rows with these idempotency keys, by key."""
    if not keys:
        return {}
    found = session.exec(select(Notification).where(col(Notification.idempotency_key).in_(keys)))
    return {row.idempotency_key: row for row in found}


def insert_once(session: Session, row: _Row) -> _Row:
    """Insert `row` into its outbox table, or return the row a concurrent planner inserted under
    the same key. The savepoint keeps the caller's transaction (and rows planned before) intact."""
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        existing = existing_row(session, row.idempotency_key, type(row))
        if existing is None:
            raise
        return existing
    return row


def plan_notifications(
    session: Session,
    *,
    appeal: Appeal,
    event: str,
    sequence: int,
    context: Mapping[str, Any],
    channels: Sequence[str],
    webhook_urls: Sequence[str] | None = None,
) -> list[Notification]:
    """The outbox rows of one customer notice, one per channel (webhooks: per endpoint),
    existing rows returned as they are. `webhook_urls` defaults to the settings'."""
    rows, _ = _plan(session, appeal, event, sequence, context, channels, webhook_urls, claim=False)
    return rows


def plan_and_claim(
    session: Session,
    *,
    appeal: Appeal,
    event: str,
    sequence: int,
    context: Mapping[str, Any],
    channels: Sequence[str],
    webhook_urls: Sequence[str] | None = None,
) -> tuple[list[Notification], list[Notification]]:
    """`plan_notifications` for a caller that sends what it plans right after its commit: the
    rows it creates to be sent are claimed (SENDING, one attempt) in the caller's transaction,
    so the send needs no claim of its own; if the caller dies before sending, the relay takes
    them once they are stale. Returns every row of the notice, and the rows claimed now (for
    `send_claimed`); rows planned before are left to whoever holds them."""
    return _plan(session, appeal, event, sequence, context, channels, webhook_urls, claim=True)


def _plan(
    session: Session,
    appeal: Appeal,
    event: str,
    sequence: int,
    context: Mapping[str, Any],
    channels: Sequence[str],
    webhook_urls: Sequence[str] | None,
    *,
    claim: bool,
) -> tuple[list[Notification], list[Notification]]:
    unknown = set(channels) - set(CHANNELS)
    if unknown:
        raise ValueError(f"unknown notification channels: {sorted(unknown)}")
    if webhook_urls is None and WEBHOOK in channels:
        from core.settings import get_settings

        webhook_urls = get_settings().webhook_urls
    customer = session.get(Customer, appeal.customer_id)
    locale = pick_locale(customer.locale if customer else None)
    full = {
        "customer_name": customer.name if customer else appeal.customer_id,
        "appeal_id": appeal.id,
        "account_id": appeal.account_id,
        "requested_limit_minor": appeal.requested_limit_minor,
        "original_limit_minor": original_limit_minor(session, appeal),
        **context,
    }
    # One subject per event and locale on every channel (in-app, email, SMS, webhook).
    subject = notice_subject(event, locale, full)

    now = utcnow()

    def new_row(channel: str, key: str, **fields: Any) -> Notification:
        if claim and channel != IN_APP:
            fields |= {"status": NotificationStatus.SENDING.value, "attempts": 1, "last_attempt_at": now}
        return Notification(
            appeal_id=appeal.id,
            customer_id=appeal.customer_id,
            channel=channel,
            event=event,
            locale=locale,
            idempotency_key=key,
            created_at=now,
            **{"status": NotificationStatus.PENDING.value, **fields},
        )

    # Every row of the notice, in channel order, as (key, how to build it); the builder
    # returns None for a channel the customer cannot be reached on.
    planned: list[tuple[str, Callable[[], Notification | None]]] = []

    def in_app_row(key: str) -> Notification:
        notice = render_notice("in_app", event, locale, full)
        row = new_row(IN_APP, key, subject=notice.subject, body=notice.body, recipient=appeal.customer_id)
        row.status, row.sent_at = NotificationStatus.SENT.value, row.created_at
        return row

    def email_row(key: str) -> Notification | None:
        if not (customer and customer.email):
            return None
        mail: RenderedEmail = render_email(event, locale, full)
        return new_row(
            EMAIL,
            key,
            subject=mail.subject,
            body=mail.text,
            body_html=mail.html,
            recipient=customer.email,
            message_id=email_message_id(key),
        )

    def sms_row(key: str) -> Notification | None:
        if not (customer and customer.phone):
            return None
        return new_row(
            SMS, key, subject=subject, body=render_sms(event, locale, full), recipient=customer.phone
        )

    def webhook_row(key: str, url: str) -> Notification:
        body = _webhook_body(appeal, event, sequence, locale, key, subject, context)
        return new_row(WEBHOOK, key, audience="partner", recipient=url, subject=subject, body=body)

    builders = {IN_APP: in_app_row, EMAIL: email_row, SMS: sms_row}
    for channel in channels:
        if channel == WEBHOOK:
            for url in webhook_urls or ():
                key = webhook_key(appeal.id, event, sequence, url)
                planned.append((key, functools.partial(webhook_row, key, url)))
        else:
            key = notification_key(appeal.id, event, sequence, channel)
            planned.append((key, functools.partial(builders[channel], key)))

    existing = _existing_rows(session, [key for key, _ in planned])
    fresh = {key: row for key, build in planned if key not in existing and (row := build()) is not None}
    try:
        # All new rows in one savepoint: one flush instead of one per channel.
        if fresh:
            with session.begin_nested():
                session.add_all(fresh.values())
        inserted = list(fresh.values())
    except IntegrityError:
        # A concurrent planner inserted some of them: take its rows and insert the rest one by
        # one, as fresh objects (the rolled-back ones may keep ids the database handed out).
        inserted = []
        for key, build in planned:
            if key in fresh and (row := build()) is not None:
                fresh[key] = insert_once(session, row)
                if fresh[key] is row:
                    inserted.append(row)
    found = existing | fresh
    rows = [found[key] for key, _ in planned if key in found]
    claimed = [row for row in inserted if row.status == NotificationStatus.SENDING]
    session.flush()
    return rows, claimed


_MESSAGE_COLUMNS = [
    col(Notification.channel),
    col(Notification.event),
    col(Notification.locale),
    col(Notification.idempotency_key),
    col(Notification.recipient),
    col(Notification.subject),
    col(Notification.body),
    col(Notification.body_html),
    col(Notification.message_id),
]


def outbound_message(row: Any) -> OutboundMessage:
    """From an outbox entity or a row of _MESSAGE_COLUMNS."""
    return OutboundMessage(
        channel=row.channel,
        event=row.event,
        locale=row.locale,
        idempotency_key=row.idempotency_key,
        recipient=row.recipient or "",
        subject=row.subject,
        body=row.body,
        html=row.body_html,
        message_id=row.message_id,
    )


def _locked(session: Session, notification_id: int, table: OutboxTable = Notification) -> OutboxRow:
    found = session.exec(select(table).where(table.id == notification_id).with_for_update()).one_or_none()
    row = found if isinstance(found, Notification | AccountNotice) else None
    if row is None:
        raise LookupError(f"notification {notification_id} does not exist")
    return row


def deliver(
    engine: Engine,
    notification_id: int,
    senders: Mapping[str, Sender],
    *,
    stale_after: timedelta = SENDING_STALE_AFTER,
    raise_errors: bool = False,
) -> Notification:
    """Send one outbox row at most once successfully; returns the row as it ends.

    SENT: returned untouched. PENDING, FAILED, or SENDING older than `stale_after` (a crash
    mid-send): marked SENDING (attempts + 1) and committed, sent with the Message-ID /
    Idempotency-Key fixed at planning, then marked SENT, or FAILED with `last_error`.
    SENDING younger than `stale_after`: left alone (another worker may be sending it).
    With `raise_errors` the SendError is raised after it is recorded (RetryableSendError /
    PermanentSendError, DeliveryInProgress for the young SENDING row), for a Temporal
    activity to map onto its retry policy."""
    row = deliver_row(
        engine,
        notification_id,
        senders,
        table=Notification,
        stale_after=stale_after,
        raise_errors=raise_errors,
    )
    assert isinstance(row, Notification)
    return row


def deliver_row(
    engine: Engine,
    notification_id: int,
    senders: Mapping[str, Sender],
    *,
    table: OutboxTable,
    stale_after: timedelta = SENDING_STALE_AFTER,
    raise_errors: bool = False,
) -> OutboxRow:
    """`deliver` for a row of either outbox table: an appeal's notices (Notification) or an
    account's (AccountNotice, core/notifications/account_notices.py)."""
    now = utcnow()
    # Raised only after the transaction that records the state has committed.
    not_sent: SendError | None = None
    sender: Sender | None = None
    with session_scope(engine) as session:
        row = _locked(session, notification_id, table)
        if row.status == NotificationStatus.SENT:
            pass
        elif row.channel == IN_APP:
            row.status, row.sent_at = NotificationStatus.SENT.value, row.sent_at or now
        elif (
            row.status == NotificationStatus.SENDING
            and row.last_attempt_at is not None
            and now - row.last_attempt_at < stale_after
        ):
            not_sent = DeliveryInProgress(
                f"notification {notification_id} is being sent since {row.last_attempt_at}"
            )
        else:
            sender = senders.get(row.channel)
            row.attempts += 1
            row.last_attempt_at = now
            if sender is None:
                row.status = NotificationStatus.FAILED.value
                row.last_error = f"retryable: no sender configured for channel {row.channel}"
                not_sent = RetryableSendError(row.last_error)
            else:
                row.status = NotificationStatus.SENDING.value
        session.add(row)
        message = outbound_message(row)
    if sender is None:
        if not_sent is not None and raise_errors:
            raise not_sent
        return row

    error = _send(sender, message)
    with session_scope(engine) as session:
        row = _record(session, notification_id, error, table)
    if error is not None and raise_errors:
        raise error
    return row


def _send(sender: Sender, message: OutboundMessage) -> SendError | None:
    try:
        sender.send(message)
    except SendError as exc:
        return exc
    except Exception as exc:  # a sender bug or an unexpected library error: try again later
        error = RetryableSendError(f"{type(exc).__name__}: {exc}")
        error.__cause__ = exc
        return error
    return None


def _record(
    session: Session, notification_id: int, error: SendError | None, table: OutboxTable = Notification
) -> OutboxRow:
    row = _locked(session, notification_id, table)
    if error is None:
        row.status, row.sent_at, row.last_error = NotificationStatus.SENT.value, utcnow(), None
    else:
        row.status = NotificationStatus.FAILED.value
        kind = "retryable" if error.retryable else "permanent"
        row.last_error = f"{kind}: {error}"[:_MAX_ERROR]
    session.add(row)
    return row


def send_claimed(engine: Engine, notification_ids: Sequence[int], senders: Mapping[str, Sender]) -> None:
    """Sends the rows `plan_and_claim` claimed, once their transaction has committed, and
    records every outcome in one transaction. A failure is recorded on its row (FAILED, for
    the relay to retry) and never raised."""
    if not notification_ids:
        return
    with session_scope(engine, read_only=True) as session:
        # Columns, not entities: the message's fields and the state that says it is still ours.
        rows = session.execute(
            sa_select(col(Notification.id), col(Notification.status), *_MESSAGE_COLUMNS).where(
                col(Notification.id).in_(notification_ids)
            )
        ).all()
        claimed = [
            (row.id, senders.get(row.channel), outbound_message(row))
            for row in rows
            if row.status == NotificationStatus.SENDING
        ]
    outcomes = {
        notification_id: _send(sender, message)
        if sender is not None
        else RetryableSendError(f"no sender configured for channel {message.channel}")
        for notification_id, sender, message in claimed
    }
    if outcomes:
        sent = [notification_id for notification_id, error in outcomes.items() if error is None]
        with session_scope(engine) as session:
            if sent:  # one statement for what went out (the common case)
                session.execute(
                    update(Notification)
                    .where(col(Notification.id).in_(sent))
                    .values(status=NotificationStatus.SENT.value, sent_at=utcnow(), last_error=None)
                )
            for notification_id, error in outcomes.items():
                if error is not None:
                    _record(session, notification_id, error)


def list_for_appeal(session: Session, appeal_id: str) -> list[Notification]:
    """Every outbox row of an appeal, oldest first: what the appeal page shows per channel."""
    return list(
        session.exec(
            select(Notification)
            .where(Notification.appeal_id == appeal_id)
            .order_by(col(Notification.created_at), col(Notification.id))
        ).all()
    )


# The relay's backoff for a channel that failed: 5 s, doubling to an hour, for about a day.
RELAY_FIRST_DELAY = timedelta(seconds=5)
RELAY_MAX_DELAY = timedelta(hours=1)
RELAY_MAX_ATTEMPTS = 30


def relay_delay(attempts: int) -> timedelta:
    """How long after its last attempt a row is tried again."""
    return min(RELAY_FIRST_DELAY * 2 ** max(attempts - 1, 0), RELAY_MAX_DELAY)


def undelivered(
    session: Session, *, now: datetime | None = None, limit: int = 100, table: OutboxTable = Notification
) -> list[int]:
    """Ids of rows due for another try, oldest first: PENDING rows (planned, not sent: the
    step that planned them died before sending), FAILED rows whose backoff has passed and
    whose error may pass (not `permanent:`, fewer than RELAY_MAX_ATTEMPTS tries), and SENDING
    rows older than SENDING_STALE_AFTER (their sender died). For the relay outside Temporal
    (launcher/reconciler.py); `deliver` itself never sends a row twice. `table`: which outbox
    (an account's notices: AccountNotice, delivered with `deliver_row`)."""
    now = now or utcnow()
    retryable = (
        NotificationStatus.PENDING.value,
        NotificationStatus.FAILED.value,
        NotificationStatus.SENDING.value,
    )
    rows: Sequence[OutboxRow] = session.exec(  # type: ignore[assignment]
        select(table)
        .where(
            col(table.status).in_(retryable),
            col(table.channel) != IN_APP,
            col(table.attempts) < RELAY_MAX_ATTEMPTS,
        )
        .order_by(col(table.id))
        .limit(limit)
    ).all()
    due: list[int] = []
    for row in rows:
        since = now - row.last_attempt_at if row.last_attempt_at is not None else None
        if row.status == NotificationStatus.FAILED and (
            (row.last_error or "").startswith("permanent")
            or (since is not None and since < relay_delay(row.attempts))
        ):
            continue
        if row.status == NotificationStatus.SENDING and since is not None and since < SENDING_STALE_AFTER:
            continue
        if row.id is not None:
            due.append(row.id)
    return due
