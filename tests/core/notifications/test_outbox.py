"""The outbox: one row per channel and key, PENDING -> SENDING -> SENT / FAILED, never twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.case_tables import Appeal, Notification
from core.notifications.channels.base import OutboundMessage, PermanentSendError, RetryableSendError
from core.notifications.channels.email import email_message_id
from core.notifications.channels.sms import RecordingSmsProvider, SmsSender
from core.notifications.outbox import (
    EMAIL,
    IN_APP,
    SMS,
    WEBHOOK,
    DeliveryInProgress,
    deliver,
    list_for_appeal,
    plan_and_claim,
    plan_notifications,
    relay_delay,
    send_claimed,
    undelivered,
    webhook_key,
)
from core.notifications.service import list_for_customer, record_in_app
from tests.core.notifications.conftest import MakeAppeal
from tests.core.notifications.samples import SAMPLES

ALL = [IN_APP, EMAIL, SMS, WEBHOOK]
PARTNERS = ["https://partner-a.example/hooks", "https://partner-b.example/hooks"]


class Recording:
    def __init__(self, fail: list[Exception] | None = None) -> None:
        self.sent: list[OutboundMessage] = []
        self.fail = list(fail or [])

    def send(self, message: OutboundMessage) -> None:
        if self.fail:
            raise self.fail.pop(0)
        self.sent.append(message)


def _plan(
    engine: Engine, appeal: Appeal, event: str = "limit_restored", sequence: int = 1, **kw: Any
) -> list[int]:
    context = kw.pop("context", dict(SAMPLES["limit_restored"]["partial"]))
    with session_scope(engine) as session:
        rows = plan_notifications(
            session,
            appeal=appeal,
            event=event,
            sequence=sequence,
            context=context,
            channels=kw.pop("channels", ALL),
            webhook_urls=kw.pop("webhook_urls", PARTNERS),
        )
        return [row.id for row in rows if row.id is not None]


def _row(engine: Engine, notification_id: int) -> Notification:
    with session_scope(engine, read_only=True) as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        return row


def test_plan_creates_one_row_per_channel_and_is_idempotent(engine: Engine, make_appeal: MakeAppeal) -> None:
    appeal = make_appeal(locale="zh-CN")
    first = _plan(engine, appeal)
    again = _plan(engine, appeal)
    assert first == again and len(first) == 5  # in-app, email, SMS, two partners
    rows = [_row(engine, i) for i in first]
    by_channel = {(row.channel, row.recipient): row for row in rows}
    base = f"{appeal.id}:limit_restored:1"
    in_app = by_channel[(IN_APP, appeal.customer_id)]
    assert in_app.idempotency_key == f"{base}:IN_APP" and in_app.status == "SENT"
    email = by_channel[(EMAIL, "li.wei@example.com")]
    assert email.idempotency_key == f"{base}:EMAIL" and email.status == "PENDING"
    assert email.message_id == email_message_id(email.idempotency_key)
    assert email.locale == "zh-CN" and email.subject == "您的申诉已部分获批"
    assert email.body_html and "¥12,000.00" in email.body_html and "¥12,000.00" in email.body
    sms = by_channel[(SMS, "+8613800138000")]
    assert sms.idempotency_key == f"{base}:SMS" and "¥12,000.00" in sms.body and len(sms.body) <= 70
    for url in PARTNERS:
        hook = by_channel[(WEBHOOK, url)]
        assert hook.idempotency_key == webhook_key(appeal.id, "limit_restored", 1, url)
        assert hook.idempotency_key.startswith(f"{base}:WEBHOOK:") and hook.audience == "partner"
        assert '"type":"appeal.limit_restored"' in hook.body and '"new_limit_minor":1200000' in hook.body
    assert all(row.attempts == 0 and row.last_error is None for row in rows)
    # The app lists the notice once, not once per channel.
    with session_scope(engine, read_only=True) as session:
        assert [n.channel for n in list_for_customer(session, appeal.customer_id)] == [IN_APP]
        assert len(list_for_appeal(session, appeal.id)) == 5


def test_in_app_row_is_shared_with_record_in_app(engine: Engine, make_appeal: MakeAppeal) -> None:
    appeal = make_appeal()
    context = dict(SAMPLES["withdrawn"]["plain"])
    with session_scope(engine) as session:
        recorded = record_in_app(session, appeal=appeal, event="withdrawn", sequence=3, context=context)
    planned = _plan(engine, appeal, "withdrawn", 3, context=context, channels=[IN_APP, EMAIL])
    assert planned[0] == recorded.id


def test_channels_without_a_recipient_get_no_row(engine: Engine, make_appeal: MakeAppeal) -> None:
    appeal = make_appeal(email=None, phone=None)
    ids = _plan(engine, appeal, webhook_urls=[])
    assert [_row(engine, i).channel for i in ids] == [IN_APP]


def test_deliver_marks_sent_and_never_sends_again(engine: Engine, make_appeal: MakeAppeal) -> None:
    appeal = make_appeal()
    ids = _plan(engine, appeal)
    sender = Recording()
    senders = {EMAIL: sender, SMS: sender, WEBHOOK: sender}
    for notification_id in ids:
        row = deliver(engine, notification_id, senders)
        assert row.status == "SENT"
    assert len(sender.sent) == 4  # in-app is the row itself
    for notification_id in ids:  # a retried activity, a replay, a restart
        assert deliver(engine, notification_id, senders).status == "SENT"
    assert len(sender.sent) == 4
    rows = [_row(engine, i) for i in ids]
    assert all(row.sent_at is not None for row in rows)
    assert [row.attempts for row in rows if row.channel != IN_APP] == [1, 1, 1, 1]
    with session_scope(engine, read_only=True) as session:
        assert undelivered(session) == []


def test_a_failed_channel_leaves_the_others_alone(engine: Engine, make_appeal: MakeAppeal) -> None:
    appeal = make_appeal()
    ids = _plan(engine, appeal, webhook_urls=PARTNERS[:1])
    email_sender = Recording(fail=[RetryableSendError("SMTP 421: try later")])
    sms_sender = Recording(fail=[PermanentSendError("number unreachable")])
    hook_sender = Recording()
    senders = {EMAIL: email_sender, SMS: sms_sender, WEBHOOK: hook_sender}
    results = {(row := deliver(engine, i, senders)).channel: row for i in ids}
    assert results[EMAIL].status == "FAILED" and results[EMAIL].last_error == "retryable: SMTP 421: try later"
    assert results[SMS].status == "FAILED" and results[SMS].last_error == "permanent: number unreachable"
    assert results[WEBHOOK].status == "SENT" and results[IN_APP].status == "SENT"
    with session_scope(engine, read_only=True) as session:
        # The relay waits out the email's backoff and never retries a permanent refusal.
        assert undelivered(session) == []
        later = SYSTEM_CLOCK.now() + relay_delay(1) + timedelta(seconds=1)
        assert undelivered(session, now=later) == [results[EMAIL].id]
    # The caller retries: the email goes out on the second attempt.
    email_id = results[EMAIL].id
    assert email_id is not None
    retried = deliver(engine, email_id, senders)
    assert retried.status == "SENT" and retried.attempts == 2 and retried.last_error is None
    assert len(email_sender.sent) == 1 and len(hook_sender.sent) == 1


def test_raise_errors_reports_after_recording(engine: Engine, make_appeal: MakeAppeal) -> None:
    appeal = make_appeal()
    [email_id] = _plan(engine, appeal, channels=[EMAIL])
    with pytest.raises(PermanentSendError):
        deliver(
            engine,
            email_id,
            {EMAIL: Recording(fail=[PermanentSendError("550 no such user")])},
            raise_errors=True,
        )
    assert _row(engine, email_id).status == "FAILED"
    with pytest.raises(RetryableSendError, match="no sender"):
        deliver(engine, email_id, {}, raise_errors=True)
    row = _row(engine, email_id)
    assert row.status == "FAILED" and row.attempts == 2
    # An unexpected exception from a sender is recorded as retryable.
    row = deliver(engine, email_id, {EMAIL: Recording(fail=[ValueError("boom")])})
    assert row.status == "FAILED" and row.last_error == "retryable: ValueError: boom"


class Crash(BaseException):
    """The process dies inside the send: nothing after it runs."""


def test_a_row_left_sending_is_redelivered_with_the_same_identity(
    engine: Engine, make_appeal: MakeAppeal
) -> None:
    appeal = make_appeal()
    [email_id] = _plan(engine, appeal, channels=[EMAIL])

    class AcceptThenCrash(Recording):
        def send(self, message: OutboundMessage) -> None:
            self.sent.append(message)
            raise Crash

    crashing = AcceptThenCrash()
    with pytest.raises(Crash):
        deliver(engine, email_id, {EMAIL: crashing})
    assert _row(engine, email_id).status == "SENDING"
    # Within the lease another worker may still be sending: left alone.
    survivor = Recording()
    assert deliver(engine, email_id, {EMAIL: survivor}).status == "SENDING"
    with pytest.raises(DeliveryInProgress):
        deliver(engine, email_id, {EMAIL: survivor}, raise_errors=True)
    assert survivor.sent == []
    # Past it, the sender is taken to have died: the same message goes out again.
    row = deliver(engine, email_id, {EMAIL: survivor}, stale_after=timedelta(0))
    assert row.status == "SENT" and row.attempts == 2
    assert survivor.sent[0].message_id == crashing.sent[0].message_id == email_message_id(row.idempotency_key)
    assert survivor.sent[0] == crashing.sent[0]


def test_sms_is_recorded_by_the_local_provider(
    engine: Engine, make_appeal: MakeAppeal, tmp_path: Any
) -> None:
    appeal = make_appeal(locale="zh-CN")
    [sms_id] = _plan(engine, appeal, channels=[SMS])
    provider = RecordingSmsProvider.for_data_dir(tmp_path)
    senders = {SMS: SmsSender(provider)}
    deliver(engine, sms_id, senders)
    deliver(engine, sms_id, senders)
    [message] = provider.messages()
    assert message["to"] == "+8613800138000" and message["segments"] == 1
    assert message["text"].startswith("【额度申诉】") and message["idempotency_key"].endswith(":SMS")


def test_unknown_channel_is_refused(engine: Engine, make_appeal: MakeAppeal) -> None:
    appeal = make_appeal()
    with pytest.raises(ValueError, match="FAX"):
        _plan(engine, appeal, channels=["FAX"])
    with session_scope(engine, read_only=True) as session:
        assert session.exec(select(Notification).where(Notification.appeal_id == appeal.id)).all() == []


def _plan_and_claim(engine: Engine, appeal: Appeal, channels: list[str] = ALL) -> tuple[list[int], list[int]]:
    with session_scope(engine) as session:
        rows, claimed = plan_and_claim(
            session,
            appeal=appeal,
            event="limit_restored",
            sequence=1,
            context=dict(SAMPLES["limit_restored"]["partial"]),
            channels=channels,
            webhook_urls=PARTNERS,
        )
        return [r.id for r in rows if r.id is not None], [r.id for r in claimed if r.id is not None]


def test_a_step_claims_what_it_plans_and_sends_it_after_its_commit(
    engine: Engine, make_appeal: MakeAppeal
) -> None:
    appeal = make_appeal()
    ids, claimed = _plan_and_claim(engine, appeal)
    # Everything but the in-app notice (the row is its delivery) is claimed by the planner.
    assert len(ids) == 5 and len(claimed) == 4
    assert {_row(engine, i).status for i in claimed} == {"SENDING"}
    assert all(_row(engine, i).attempts == 1 for i in claimed)
    # Claimed, so not the relay's while its planner may still be sending.
    with session_scope(engine, read_only=True) as session:
        assert undelivered(session) == []
    # Planning again (a retried step) claims nothing: the first attempt holds those rows.
    assert _plan_and_claim(engine, appeal) == (ids, [])

    email_fails = Recording(fail=[RetryableSendError("421 try later")])
    others = Recording()
    senders: dict[str, Any] = {EMAIL: email_fails, SMS: others, WEBHOOK: others}
    send_claimed(engine, claimed, senders)
    rows = {_row(engine, i).channel + (_row(engine, i).recipient or ""): _row(engine, i) for i in claimed}
    email = next(row for row in rows.values() if row.channel == EMAIL)
    assert email.status == "FAILED" and email.last_error == "retryable: 421 try later"
    assert {row.status for row in rows.values() if row.channel != EMAIL} == {"SENT"}
    assert all(row.sent_at and row.last_error is None for row in rows.values() if row.channel != EMAIL)
    assert email.sent_at is None
    assert len(others.sent) == 3 and email_fails.sent == []
    # Sent rows are never sent again; the failed one is the relay's after its backoff.
    send_claimed(engine, claimed, senders)
    assert len(others.sent) == 3 and email_fails.sent == []
    later = SYSTEM_CLOCK.now() + relay_delay(1) + timedelta(seconds=1)
    with session_scope(engine, read_only=True) as session:
        assert undelivered(session, now=later) == [email.id]


def test_a_planner_that_read_before_another_committed_takes_its_rows(
    engine: Engine, make_appeal: MakeAppeal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two planners of one notice that both found nothing (READ COMMITTED lets them): the one
    that inserts second keeps the first's rows, inserts only the rest and claims only those."""
    appeal = make_appeal()
    first_ids, _ = _plan_and_claim(engine, appeal, channels=[IN_APP, EMAIL])
    monkeypatch.setattr("core.notifications.outbox._existing_rows", lambda session, keys: {})
    ids, claimed = _plan_and_claim(engine, appeal)
    rows = [_row(engine, i) for i in ids]
    assert len(ids) == 5 and [row.channel for row in rows] == [IN_APP, EMAIL, SMS, WEBHOOK, WEBHOOK]
    assert ids[:2] == first_ids
    assert rows[1].status == "SENDING"  # claimed by the other planner, which sends it
    assert sorted(claimed) == sorted(ids[2:]) and {_row(engine, i).status for i in claimed} == {"SENDING"}
    with session_scope(engine, read_only=True) as session:
        assert len(list_for_appeal(session, appeal.id)) == 5


def test_claimed_rows_whose_sender_died_go_to_the_relay_once_stale(
    engine: Engine, make_appeal: MakeAppeal
) -> None:
    appeal = make_appeal()
    _, claimed = _plan_and_claim(engine, appeal)  # the step dies before send_claimed
    with session_scope(engine, read_only=True) as session:
        assert undelivered(session) == []
        stale = SYSTEM_CLOCK.now() + timedelta(minutes=3)
        assert sorted(undelivered(session, now=stale)) == sorted(claimed)
    survivor = Recording()
    senders: dict[str, Any] = {EMAIL: survivor, SMS: survivor, WEBHOOK: survivor}
    for notification_id in claimed:
        assert deliver(engine, notification_id, senders, stale_after=timedelta(0)).status == "SENT"
    assert len(survivor.sent) == 4


def test_the_local_sms_provider_drops_a_key_it_already_holds(
    engine: Engine, make_appeal: MakeAppeal, tmp_path: Any
) -> None:
    """A send lost in a crash after the provider took it is sent again: the provider (this one,
    as those with a client reference) keeps one, across processes (two providers on one file)
    and threads."""
    from concurrent.futures import ThreadPoolExecutor

    appeal = make_appeal()
    [sms_id] = _plan(engine, appeal, channels=[SMS])
    first = RecordingSmsProvider.for_data_dir(tmp_path)
    other_process = RecordingSmsProvider.for_data_dir(tmp_path)

    class SendThenDie:
        def send(self, message: OutboundMessage) -> None:
            SmsSender(first).send(message)
            raise Crash

    with pytest.raises(Crash):
        deliver(engine, sms_id, {SMS: SendThenDie()})
    row = deliver(engine, sms_id, {SMS: SmsSender(other_process)}, stale_after=timedelta(0))
    assert row.status == "SENT" and row.attempts == 2
    [message] = first.messages()
    assert message["idempotency_key"] == row.idempotency_key

    keys = [f"k-{n % 5}" for n in range(40)]
    providers = [first, other_process]
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(
            pool.map(
                lambda n: providers[n % 2].send_sms(to="+8613800138000", text="hi", idempotency_key=keys[n]),
                range(40),
            )
        )
    assert ids == [f"rec-{key}" for key in keys]
    assert sorted(m["idempotency_key"] for m in first.messages()) == sorted(
        [row.idempotency_key, *{f"k-{n}" for n in range(5)}]
    )
