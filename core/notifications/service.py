"""Customer notices recorded in the outbox; the idempotency key makes a retry a no-op."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core.db.case_tables import Appeal, Notification
from core.db.ledger_tables import CreditAccount, Customer
from core.db.types import utcnow
from core.notifications.rendering import pick_locale, render_notice

IN_APP = "IN_APP"


def original_limit_minor(session: Session, appeal: Appeal) -> int | None:
    """The account's original limit: a limit notice compares the new limit with it."""
    account = session.get(CreditAccount, appeal.account_id)
    return account.original_limit_minor if account else None


def notification_key(appeal_id: str, event: str, sequence: int, channel: str) -> str:
    return f"{appeal_id}:{event}:{sequence}:{channel}"


def record_in_app(
    session: Session, *, appeal: Appeal, event: str, sequence: int, context: dict[str, Any]
) -> Notification:
    key = notification_key(appeal.id, event, sequence, IN_APP)
    existing = session.exec(select(Notification).where(Notification.idempotency_key == key)).first()
    if existing is not None:
        return existing
    customer = session.get(Customer, appeal.customer_id)
    locale = pick_locale(customer.locale if customer else None)
    notice = render_notice(
        "in_app",
        event,
        locale,
        {
            "customer_name": customer.name if customer else appeal.customer_id,
            "appeal_id": appeal.id,
            "account_id": appeal.account_id,
            "requested_limit_minor": appeal.requested_limit_minor,
            "original_limit_minor": original_limit_minor(session, appeal),
            **context,
        },
    )
    row = Notification(
        appeal_id=appeal.id,
        customer_id=appeal.customer_id,
        channel=IN_APP,
        event=event,
        locale=locale,
        idempotency_key=key,
        subject=notice.subject,
        body=notice.body,
        status="SENT",  # in-app delivery is the row itself
        created_at=utcnow(),
    )
    session.add(row)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        return session.exec(select(Notification).where(Notification.idempotency_key == key)).one()
    return row


def list_for_customer(session: Session, customer_id: str, limit: int = 50) -> list[Notification]:
    return list(
        session.exec(
            select(Notification)
            .where(
                Notification.customer_id == customer_id,
                Notification.audience == "customer",
                # Email and SMS rows of the outbox carry the same notice; the app lists it once.
                Notification.channel == IN_APP,
            )
            .order_by(col(Notification.created_at).desc(), col(Notification.id).desc())
            .limit(limit)
        ).all()
    )
