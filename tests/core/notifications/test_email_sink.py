"""Email through the real SMTP sink process: the right message per customer event and locale,
the derived Message-ID, nothing sent again once SENT, the same Message-ID across a crash."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from core.db import session_scope
from core.notifications.channels.base import OutboundMessage
from core.notifications.channels.email import email_message_id
from core.notifications.outbox import EMAIL, deliver, plan_notifications
from core.notifications.rendering import render_email
from launcher.mail import read_mail
from tests.core.notifications.conftest import MakeAppeal, SmtpSink
from tests.core.notifications.samples import SAMPLES


def _lf(content: str) -> str:
    return content.replace("\r\n", "\n").strip()


CASES = [(event, locale) for event in sorted(SAMPLES) for locale in ("en", "zh-CN")]


def _plan_email(engine: Engine, appeal_id: str, event: str, sequence: int, context: dict[str, object]) -> int:
    from core.db.case_tables import Appeal

    with session_scope(engine) as session:
        appeal = session.get(Appeal, appeal_id)
        assert appeal is not None
        [row] = plan_notifications(
            session, appeal=appeal, event=event, sequence=sequence, context=context, channels=[EMAIL]
        )
        assert row.id is not None
        return row.id


@pytest.mark.parametrize(("event", "locale"), CASES, ids=[f"{e}.{loc}" for e, loc in CASES])
def test_sink_receives_the_right_message_per_event(
    engine: Engine, make_appeal: MakeAppeal, smtp_sink: SmtpSink, event: str, locale: str
) -> None:
    appeal = make_appeal(locale=locale, email=f"customer+{event}@example.com")
    context = next(iter(SAMPLES[event].values()))
    notification_id = _plan_email(engine, appeal.id, event, 7, dict(context))
    row = deliver(engine, notification_id, {EMAIL: smtp_sink.sender()})
    assert row.status == "SENT", row.last_error

    expected_id = email_message_id(f"{appeal.id}:{event}:7:EMAIL")
    [message] = smtp_sink.messages_with_id(expected_id)
    with session_scope(engine, read_only=True) as session:
        from core.db.ledger_tables import Customer

        customer = session.get(Customer, appeal.customer_id)
        assert customer is not None
    expected = render_email(
        event,
        locale,
        {
            "customer_name": customer.name,
            "appeal_id": appeal.id,
            "account_id": appeal.account_id,
            "requested_limit_minor": appeal.requested_limit_minor,
            **context,
        },
    )
    assert message["Subject"] == expected.subject == row.subject
    assert message["To"] == f"customer+{event}@example.com"
    assert message["Content-Language"] == locale
    assert message["X-Appeals-Event"] == event
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert text is not None and html is not None
    assert _lf(text.get_content()) == expected.text.strip()
    assert _lf(html.get_content()) == expected.html.strip()
    assert appeal.id in text.get_content()


def test_deliver_after_sent_sends_nothing(
    engine: Engine, make_appeal: MakeAppeal, smtp_sink: SmtpSink
) -> None:
    appeal = make_appeal(locale="zh-CN")
    notification_id = _plan_email(engine, appeal.id, "declined", 4, dict(SAMPLES["declined"]["reviewer"]))
    before = len(read_mail(smtp_sink.mail_dir))
    for _ in range(3):  # a retried activity, a replayed workflow, a restarted worker
        assert deliver(engine, notification_id, {EMAIL: smtp_sink.sender()}).status == "SENT"
    assert len(read_mail(smtp_sink.mail_dir)) == before + 1
    [message] = smtp_sink.messages_with_id(email_message_id(f"{appeal.id}:declined:4:EMAIL"))
    assert message["Subject"] == "您的申诉未获批准"
    assert "主要原因" in message.get_body(("plain",)).get_content()


class Crash(BaseException):
    pass


def test_redelivery_across_a_crash_carries_the_same_message_id(
    engine: Engine, make_appeal: MakeAppeal, smtp_sink: SmtpSink
) -> None:
    appeal = make_appeal()
    notification_id = _plan_email(
        engine, appeal.id, "declined", 2, dict(SAMPLES["declined"]["automated_with_range"])
    )
    real = smtp_sink.sender()

    class SendThenDie:
        def send(self, message: OutboundMessage) -> None:
            real.send(message)  # the SMTP server accepted it ...
            raise Crash  # ... and the worker died before marking the row

    with pytest.raises(Crash):
        deliver(engine, notification_id, {EMAIL: SendThenDie()})
    row = deliver(engine, notification_id, {EMAIL: real}, stale_after=timedelta(0))
    assert row.status == "SENT" and row.attempts == 2
    # The one window no outbox closes: it was sent twice, under one Message-ID, and the
    # mailbox (the sink, as mail stores do) keeps one copy.
    [kept] = smtp_sink.messages_with_id(email_message_id(f"{appeal.id}:declined:2:EMAIL"))
    assert kept["Message-ID"] == row.message_id
    assert kept["Subject"] == "Your appeal was declined"
    # Once marked, nothing more.
    deliver(engine, notification_id, {EMAIL: real}, stale_after=timedelta(0))
    assert len(smtp_sink.messages_with_id(row.message_id or "")) == 1


def test_sink_unreachable_is_a_retryable_failure(engine: Engine, make_appeal: MakeAppeal) -> None:
    from core.notifications.channels.email import EmailSender
    from launcher.stack import free_port

    appeal = make_appeal()
    notification_id = _plan_email(engine, appeal.id, "expired", 1, {})
    dead = EmailSender(host="127.0.0.1", port=free_port(), from_address="x@appeals.local", timeout=2)
    row = deliver(engine, notification_id, {EMAIL: dead})
    assert (
        row.status == "FAILED" and row.last_error is not None and row.last_error.startswith("retryable: SMTP")
    )


def test_the_sink_keeps_one_copy_of_a_message_id_across_restarts(tmp_path: Path) -> None:
    from core.notifications.channels.email import EmailSender
    from launcher.mail import start_smtp_sink
    from launcher.stack import free_port

    mail_dir = tmp_path / "mail"
    message = OutboundMessage(
        channel=EMAIL,
        event="expired",
        locale="en",
        idempotency_key="appeal-1:expired:1:EMAIL",
        recipient="li.wei@example.com",
        subject="Your appeal expired",
        body="text",
    )
    for run in range(2):
        port = free_port()
        sink = start_smtp_sink(host="127.0.0.1", port=port, mail_dir=mail_dir, log_path=tmp_path / "sink.log")
        try:
            sender = EmailSender(host="127.0.0.1", port=port, from_address="x@appeals.local", timeout=5)
            sender.send(message)
            sender.send(message)
            sender.close()
        finally:
            sink.stop()
        copies = [
            m for _, m in read_mail(mail_dir) if m["Message-ID"] == email_message_id(message.idempotency_key)
        ]
        assert len(copies) == 1, f"run {run}"
    assert "dropped a copy" in (tmp_path / "sink.log").read_text()
