"""Delivery channels for the notification outbox (core/notifications/outbox.py)."""

from __future__ import annotations

from core.notifications.channels.base import (
    OutboundMessage,
    PermanentSendError,
    RetryableSendError,
    Sender,
    SendError,
)
from core.notifications.channels.email import EmailSender, email_message_id
from core.notifications.channels.sms import RecordingSmsProvider, SmsProvider, SmsSender
from core.notifications.channels.webhook import WebhookSender, verify_signature
from core.settings import Settings

EMAIL = "EMAIL"
SMS = "SMS"
WEBHOOK = "WEBHOOK"


def senders_from_settings(settings: Settings) -> dict[str, Sender]:
    """The senders for a running service: SMTP from settings, the recording SMS provider under
    data_dir (the only provider so far), webhooks when a secret is configured."""
    senders: dict[str, Sender] = {
        EMAIL: EmailSender.from_settings(settings),
        SMS: SmsSender(RecordingSmsProvider.for_data_dir(settings.data_dir)),
    }
    if settings.webhook_secret:
        senders[WEBHOOK] = WebhookSender.from_settings(settings)
    return senders


__all__ = [
    "EMAIL",
    "SMS",
    "WEBHOOK",
    "EmailSender",
    "OutboundMessage",
    "PermanentSendError",
    "RecordingSmsProvider",
    "RetryableSendError",
    "SendError",
    "Sender",
    "SmsProvider",
    "SmsSender",
    "WebhookSender",
    "email_message_id",
    "senders_from_settings",
    "verify_signature",
]
