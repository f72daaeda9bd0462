"""Partner webhooks against a real local HTTP receiver: signatures verified with
verify_signature, duplicates dropped on Idempotency-Key, each event recorded once even when
the first delivery attempt fails after the receiver stored it."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy.engine import Engine

from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.case_tables import Appeal
from core.notifications.channels.base import OutboundMessage, PermanentSendError, RetryableSendError
from core.notifications.channels.webhook import WebhookSender, sign, verify_signature
from core.notifications.outbox import WEBHOOK, deliver, plan_notifications
from core.settings import Settings
from tests.core.notifications.conftest import WEBHOOK_SECRET, MakeAppeal, Receiver
from tests.core.notifications.samples import SAMPLES


def _plan(engine: Engine, appeal: Appeal, event: str, sequence: int, urls: list[str]) -> list[int]:
    context = dict(next(iter(SAMPLES[event].values())))
    with session_scope(engine) as session:
        rows = plan_notifications(
            session,
            appeal=appeal,
            event=event,
            sequence=sequence,
            context=context,
            channels=[WEBHOOK],
            webhook_urls=urls,
        )
        return [row.id for row in rows if row.id is not None]


def _sender() -> dict[str, WebhookSender]:
    return {WEBHOOK: WebhookSender(WEBHOOK_SECRET, timeout=5)}


EVENTS = ["appeal_received", "declined", "limit_restored", "withdrawn"]


@pytest.mark.parametrize("failure", ["500_after_store", "connection_dropped_after_store"])
def test_each_event_recorded_once_despite_a_failed_first_attempt(
    engine: Engine, make_appeal: MakeAppeal, webhook_receiver: Receiver, failure: str
) -> None:
    appeal = make_appeal()
    ids = [
        _plan(engine, appeal, event, seq, [webhook_receiver.url])[0] for seq, event in enumerate(EVENTS, 1)
    ]
    if failure == "500_after_store":
        webhook_receiver.fail_after_store = 1
    else:
        webhook_receiver.drop_connection_after_store = 1

    first = [deliver(engine, i, _sender()) for i in ids]
    assert first[0].status == "FAILED" and first[0].last_error is not None
    assert first[0].last_error.startswith("retryable:")
    assert [row.status for row in first[1:]] == ["SENT"] * 3  # a failed row does not hold up others
    # The retry (Temporal's, with backoff) sends the same body with the same key.
    retried = deliver(engine, ids[0], _sender())
    assert retried.status == "SENT" and retried.attempts == 2
    for i in ids:  # and a replay after that sends nothing
        deliver(engine, i, _sender())

    requests = webhook_receiver.requests
    assert len(requests) == len(EVENTS) + 1
    assert all(request["valid"] for request in requests)
    assert requests[0]["key"] == requests[-1]["key"] == first[0].idempotency_key
    events = webhook_receiver.events
    assert len(events) == len(EVENTS)
    assert [events[row.idempotency_key]["type"] for row in first] == [f"appeal.{e}" for e in EVENTS]
    received = events[first[1].idempotency_key]
    assert received["appeal_id"] == appeal.id and received["sequence"] == 2
    assert received["data"]["score"] == 262 and received["id"] == first[1].idempotency_key


def test_each_partner_has_its_own_row(
    engine: Engine, make_appeal: MakeAppeal, webhook_receiver: Receiver
) -> None:
    appeal = make_appeal()
    broken = "http://127.0.0.1:9/unreachable"  # the discard port: nothing listens
    ids = _plan(engine, appeal, "withdrawn", 1, [webhook_receiver.url, broken])
    rows = {row.recipient: row for row in (deliver(engine, i, _sender()) for i in ids)}
    assert rows[webhook_receiver.url].status == "SENT"
    assert rows[broken].status == "FAILED" and "retryable" in (rows[broken].last_error or "")
    assert len(webhook_receiver.events) == 1


def test_a_wrong_secret_is_refused_and_is_permanent(
    engine: Engine, make_appeal: MakeAppeal, webhook_receiver: Receiver
) -> None:
    appeal = make_appeal()
    [notification_id] = _plan(engine, appeal, "expired", 1, [webhook_receiver.url])
    row = deliver(engine, notification_id, {WEBHOOK: WebhookSender("not-the-shared-secret")})
    assert row.status == "FAILED" and row.last_error is not None and "HTTP 401" in row.last_error
    assert row.last_error.startswith("permanent:")
    assert webhook_receiver.events == {} and webhook_receiver.requests[0]["valid"] is False


def _message(url: str = "http://partner.test/hook") -> OutboundMessage:
    return OutboundMessage(
        channel=WEBHOOK,
        event="declined",
        locale="en",
        idempotency_key="a:declined:1:WEBHOOK:abcd1234",
        recipient=url,
        subject="appeal.declined",
        body=json.dumps({"type": "appeal.declined", "note": "中文"}, ensure_ascii=False),
    )


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, RetryableSendError),
        (503, RetryableSendError),
        (429, RetryableSendError),
        (408, RetryableSendError),
        (400, PermanentSendError),
        (404, PermanentSendError),
        (410, PermanentSendError),
        (301, PermanentSendError),
    ],
)
def test_status_codes_map_to_retryable_or_permanent(status: int, error: type[Exception]) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text="nope")

    sender = WebhookSender(WEBHOOK_SECRET, client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(error):
        sender.send(_message())
    request = seen[0]
    assert request.headers["Idempotency-Key"] == "a:declined:1:WEBHOOK:abcd1234"
    assert verify_signature(
        WEBHOOK_SECRET,
        request.headers["X-Appeals-Timestamp"],
        request.content,
        request.headers["X-Appeals-Signature"],
    )


def test_connection_errors_are_retryable() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    sender = WebhookSender(WEBHOOK_SECRET, client=httpx.Client(transport=httpx.MockTransport(handler)))
    with pytest.raises(RetryableSendError, match="ReadTimeout"):
        sender.send(_message())


def test_verify_signature() -> None:
    body = '{"type":"appeal.declined","note":"中文"}'.encode()
    now = 1_741_773_600
    signature = sign(WEBHOOK_SECRET, now, body)
    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify_signature(WEBHOOK_SECRET, str(now), body, signature, now=now)
    assert verify_signature(WEBHOOK_SECRET, now, body.decode(), signature, now=now + 299)
    assert not verify_signature(WEBHOOK_SECRET, now, body, signature, now=now + 301)  # replayed later
    assert not verify_signature(WEBHOOK_SECRET, now, body, signature, tolerance=10, now=now - 11)
    assert not verify_signature(WEBHOOK_SECRET, now, body + b" ", signature, now=now)  # body changed
    assert not verify_signature(WEBHOOK_SECRET, now + 1, body, signature, now=now)  # timestamp changed
    assert not verify_signature("another-secret", now, body, signature, now=now)
    assert not verify_signature(WEBHOOK_SECRET, "not-a-number", body, signature, now=now)
    assert not verify_signature(WEBHOOK_SECRET, now, body, "sha256=" + "0" * 64, now=now)
    assert verify_signature(
        WEBHOOK_SECRET,
        int(SYSTEM_CLOCK.now().timestamp()),
        body,
        sign(WEBHOOK_SECRET, int(SYSTEM_CLOCK.now().timestamp()), body),
    )


def test_settings_require_a_secret_with_urls() -> None:
    with pytest.raises(ValueError, match="APPEALS_WEBHOOK_SECRET"):
        Settings(webhook_urls=["https://partner.example/hook"])
    settings = Settings(webhook_urls=["https://partner.example/hook"], webhook_secret=WEBHOOK_SECRET)
    assert WebhookSender.from_settings(settings).secret == WEBHOOK_SECRET
