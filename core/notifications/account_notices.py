"""Notices about a credit account rather than an appeal: a limit frozen or reduced by a limit
action, a limit restored or an invitation to appeal from the portfolio review
(docs/lender-loop.md).

They live in their own outbox table (`account_notice`) with the same delivery columns as an
appeal's (`notification`) and are delivered by the same code (core/notifications/outbox.py
`deliver_row`): PENDING -> SENDING -> SENT, at most once successfully, the email's Message-ID
derived from the idempotency key.

Templates: `templates/notifications/account/<kind>/`, one set per kind and locale (zh-CN, en):

    subject.<locale>.txt.j2     the subject, shared by every channel
    in_app.<locale>.j2          the notice in the portal (HTML-escaped)
    email.<locale>.txt.j2       the email's text part
    email.<locale>.html.j2      the email's HTML part
    sms.<locale>.txt.j2         the SMS (whitespace collapsed)

Every template sees `customer_name`, `account_id`, `currency`, `portal_url` and the caller's
context (undefined variables fail, as for appeal notices).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core.db import session_scope
from core.db.ledger_tables import CreditAccount, Customer
from core.db.lender_tables import AccountNotice
from core.errors import NotFound
from core.notifications.channels.base import PermanentSendError, RetryableSendError, Sender, SendError
from core.notifications.channels.email import email_message_id
from core.notifications.outbox import (
    EMAIL,
    IN_APP,
    SMS,
    NotificationStatus,
    deliver_row,
    existing_row,
    insert_once,
)
from core.notifications.rendering import environment, pick_locale

ACCOUNT_CHANNELS = (IN_APP, EMAIL, SMS)


@dataclass(frozen=True)
class RenderedAccountNotice:
    subject: str
    in_app: str
    email_text: str
    email_html: str
    sms: str


def _template(kind: str, name: str) -> str:
    return f"notifications/account/{kind}/{name}"


def render_account_notice(kind: str, locale: str, context: Mapping[str, Any]) -> RenderedAccountNotice:
    """Every channel's text of one account notice in `locale` (zh-CN or en)."""
    env, loc = environment(), pick_locale(locale)
    full = dict(context)
    subject = " ".join(env.get_template(_template(kind, f"subject.{loc}.txt.j2")).render(full).split())
    full["subject"] = subject
    in_app = str(env.get_template(_template(kind, f"in_app.{loc}.j2")).render(full)).strip()
    text = str(env.get_template(_template(kind, f"email.{loc}.txt.j2")).render(full)).strip() + "\n"
    html = str(env.get_template(_template(kind, f"email.{loc}.html.j2")).render(full)).strip() + "\n"
    sms = " ".join(env.get_template(_template(kind, f"sms.{loc}.txt.j2")).render(full).split())
    return RenderedAccountNotice(subject, in_app, text, html, sms)


def notice_key(key: str, channel: str) -> str:
    """The idempotency key of one channel's row: the caller's key (which names the account and
    what happened, e.g. `limit-action:<account>:<event id>`) and the channel."""
    return f"{key}:{channel}"


def _existing(session: Session, key: str) -> AccountNotice | None:
    return existing_row(session, key, AccountNotice)


def plan_account_notices(
    session: Session, *, account_id: str, kind: str, key: str, context: dict[str, Any], at: datetime
) -> list[int]:
    """The outbox rows of one notice about an account, in the caller's transaction: IN_APP
    always (written SENT: the row is the delivery), EMAIL when the customer has an address, SMS
    when a phone (PENDING, for `send_account_notices`), rendered now in the customer's locale.
    Planning again with the same key returns the same ids and renders nothing."""
    from core.settings import get_settings

    account = session.get(CreditAccount, account_id)
    if account is None:
        raise NotFound(f"Credit account {account_id} was not found.", code="account_not_found")
    customer = session.get(Customer, account.customer_id)
    channels = [IN_APP]
    if customer is not None and customer.email:
        channels.append(EMAIL)
    if customer is not None and customer.phone:
        channels.append(SMS)
    found = {channel: _existing(session, notice_key(key, channel)) for channel in channels}
    if all(row is not None for row in found.values()):
        return [row.id for row in found.values() if row is not None and row.id is not None]

    locale = pick_locale(customer.locale if customer else None)
    full = {
        "customer_name": customer.name if customer else account.customer_id,
        "account_id": account_id,
        "currency": account.currency,
        "portal_url": get_settings().portal_url,
        **context,
    }
    rendered = render_account_notice(kind, locale, full)
    ids: list[int] = []
    for channel in channels:
        row = found[channel]
        if row is None:
            row_key = notice_key(key, channel)
            fields: dict[str, Any] = {"subject": rendered.subject, "status": NotificationStatus.PENDING.value}
            if channel == IN_APP:
                fields |= {
                    "body": rendered.in_app,
                    "recipient": account.customer_id,
                    "status": NotificationStatus.SENT.value,
                    "sent_at": at,
                }
            elif channel == EMAIL:
                assert customer is not None
                fields |= {
                    "body": rendered.email_text,
                    "body_html": rendered.email_html,
                    "recipient": customer.email,
                    "message_id": email_message_id(row_key),
                }
            else:
                assert customer is not None
                fields |= {"body": rendered.sms, "recipient": customer.phone}
            row = insert_once(
                session,
                AccountNotice(
                    account_id=account_id,
                    customer_id=account.customer_id,
                    channel=channel,
                    event=kind,
                    locale=locale,
                    idempotency_key=row_key,
                    created_at=at,
                    **fields,
                ),
            )
        session.flush()
        assert row.id is not None
        ids.append(row.id)
    return ids


def send_account_notices(
    engine: Engine, ids: Sequence[int], senders: Mapping[str, Sender], *, raise_errors: bool = False
) -> None:
    """Delivers each row at most once successfully (core/notifications/outbox.py `deliver_row`:
    a SENT row is left alone, a SENDING one younger than the stale window too). Every row is
    tried; with `raise_errors`, a failure is raised afterwards (retryable if any was), for a
    Temporal activity's retry, which then sends only what is still unsent. A row that failed
    permanently before is not tried again here."""
    errors: list[SendError] = []
    with session_scope(engine, read_only=True) as session:
        given = list(ids)
        rows = session.exec(select(AccountNotice).where(col(AccountNotice.id).in_(given))).all()
        by_id = {row.id: row for row in rows}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise LookupError(f"account notices {missing} do not exist")
    for notice_id in ids:
        row = by_id[notice_id]
        if row.status == NotificationStatus.SENT:
            continue
        if row.status == NotificationStatus.FAILED and (row.last_error or "").startswith("permanent"):
            errors.append(PermanentSendError(row.last_error or "permanent"))
            continue
        try:
            deliver_row(engine, notice_id, senders, table=AccountNotice, raise_errors=True)
        except SendError as exc:
            errors.append(exc)
    if errors and raise_errors:
        retryable = [e for e in errors if e.retryable]
        if retryable:
            raise RetryableSendError("; ".join(str(e) for e in retryable))
        raise PermanentSendError("; ".join(str(e) for e in errors))


def list_account_notices(session: Session, customer_id: str, limit: int = 50) -> list[AccountNotice]:
    """The customer's in-app notices about their accounts, newest first (the email and SMS
    rows carry the same notice; the portal lists it once)."""
    return list(
        session.exec(
            select(AccountNotice)
            .where(
                AccountNotice.customer_id == customer_id,
                AccountNotice.audience == "customer",
                AccountNotice.channel == IN_APP,
            )
            .order_by(col(AccountNotice.created_at).desc(), col(AccountNotice.id).desc())
            .limit(limit)
        ).all()
    )


def notices_for_account(session: Session, account_id: str) -> list[AccountNotice]:
    """Every outbox row about one account, oldest first (each channel's delivery)."""
    return list(
        session.exec(
            select(AccountNotice)
            .where(AccountNotice.account_id == account_id)
            .order_by(col(AccountNotice.created_at), col(AccountNotice.id))
        ).all()
    )
