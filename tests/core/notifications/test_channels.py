"""Channel details that need no outbox: SMTP settings in production, SMS segments, the sink's
file names."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage

import pytest

from core.notifications.channels import EMAIL, SMS, WEBHOOK, senders_from_settings
from core.notifications.channels.base import OutboundMessage, PermanentSendError
from core.notifications.channels.email import EmailSender, email_message_id
from core.notifications.channels.sms import sms_segments
from core.settings import Environment, Settings
from launcher.smtp_sink import eml_name

PROD_SECRET = "4e8a1c6f9b3d7e2a5c8f0b4d6e9a1c3f"  # strong enough for production (core/settings.py)


def test_message_id_is_derived_from_the_key() -> None:
    first = email_message_id("appeal-1:declined:3:EMAIL")
    assert first == email_message_id("appeal-1:declined:3:EMAIL")
    assert first != email_message_id("appeal-1:declined:4:EMAIL")
    assert (
        first.startswith("<")
        and first.endswith("@appeals.local>")
        and len(first) == len("<") + 32 + len("@appeals.local>")
    )


def test_production_refuses_plain_smtp_to_a_remote_relay() -> None:
    remote = Settings(
        environment=Environment.PRODUCTION, jwt_secret=PROD_SECRET, smtp_host="smtp.example.com"
    )
    with pytest.raises(ValueError, match="APPEALS_SMTP_STARTTLS"):
        EmailSender.from_settings(remote)
    tls = Settings(
        environment=Environment.PRODUCTION,
        jwt_secret=PROD_SECRET,
        smtp_host="smtp.example.com",
        smtp_port=587,
        smtp_starttls=True,
        smtp_username="appeals",
        smtp_password="s3cret",
    )
    sender = EmailSender.from_settings(tls)
    assert (sender.host, sender.port, sender.starttls, sender.username) == (
        "smtp.example.com",
        587,
        True,
        "appeals",
    )
    sidecar = Settings(environment=Environment.PRODUCTION, jwt_secret=PROD_SECRET, smtp_host="127.0.0.1")
    assert EmailSender.from_settings(sidecar).starttls is False


def test_senders_from_settings(tmp_path: object) -> None:
    plain = senders_from_settings(Settings(data_dir=tmp_path))  # type: ignore[arg-type]
    assert set(plain) == {EMAIL, SMS}
    hooks = Settings(data_dir=tmp_path, webhook_urls=["https://p.example/h"], webhook_secret="x" * 32)  # type: ignore[arg-type]
    assert set(senders_from_settings(hooks)) == {EMAIL, SMS, WEBHOOK}


def test_email_build_headers_and_parts() -> None:
    sender = EmailSender(host="127.0.0.1", port=25, from_address="Appeals <no-reply@appeals.local>")
    message = OutboundMessage(
        channel=EMAIL,
        event="withdrawn",
        locale="zh-CN",
        idempotency_key="k:withdrawn:1:EMAIL",
        recipient="li@example.com",
        subject="您的申诉已撤回",
        body="李伟您好：\n",
        html="<p>李伟您好：</p>\n",
        message_id=email_message_id("k:withdrawn:1:EMAIL"),
    )
    for eight_bit in (True, False):
        raw = sender.build(message, eight_bit=eight_bit)
        assert b"\n" not in raw.replace(b"\r\n", b""), "SMTP wants CRLF line ends only"
        email = message_from_bytes(raw, policy=policy.default)
        assert isinstance(email, EmailMessage)
        assert email["Message-ID"] == message.message_id
        assert email["Subject"] == "您的申诉已撤回" and email["To"] == "li@example.com"
        assert email["From"] == "Appeals <no-reply@appeals.local>"
        assert email["Content-Language"] == "zh-CN" and email["Auto-Submitted"] == "auto-generated"
        assert email["X-Appeals-Idempotency-Key"] == "k:withdrawn:1:EMAIL"
        parts = list(email.iter_parts())
        assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
        assert {p["Content-Transfer-Encoding"] for p in parts} == {"8bit" if eight_bit else "base64"}
        texts = [p.get_content().replace("\r\n", "\n") for p in parts]
        assert texts == ["李伟您好：\n", "<p>李伟您好：</p>\n"]
        if eight_bit:
            assert "李伟您好：\r\n".encode() in raw  # readable in the sink's .eml files
        else:
            assert raw.isascii()


@pytest.mark.parametrize("field", ["subject", "recipient", "locale"])
def test_a_line_break_in_a_header_value_is_refused_for_good(field: str) -> None:
    sender = EmailSender(host="127.0.0.1", port=25, from_address="no-reply@appeals.local")
    fields = {"subject": "Received", "recipient": "li@example.com", "locale": "en"}
    fields[field] += "\r\nBcc: everyone@example.com"
    message = OutboundMessage(
        channel=EMAIL, event="received", idempotency_key="k:received:1:EMAIL", body="x", **fields
    )
    with pytest.raises(PermanentSendError, match="line break"):
        sender.build(message, eight_bit=True)
    beyond_ascii = replace(message, recipient=f"李伟@example.com{'' if field != 'recipient' else chr(10)}")
    with pytest.raises(PermanentSendError, match="line break"):  # by EmailMessage and SMTPUTF8 too
        sender._legacy_build(beyond_ascii, eight_bit=True)


def test_email_headers_beyond_ascii_are_encoded() -> None:
    sender = EmailSender(host="127.0.0.1", port=25, from_address="申诉中心 <no-reply@appeals.local>")
    long_subject = "您的申诉已收到，" * 12
    message = OutboundMessage(
        channel=EMAIL,
        event="received",
        locale="zh-CN",
        idempotency_key="k:received:1:EMAIL",
        recipient="Li Wei <li@example.com>",
        subject=long_subject,
        body="x" * 2000,  # a line longer than SMTP's 998 octets goes base64 even with 8BITMIME
        html=None,
        message_id=None,
    )
    raw = sender.build(message, eight_bit=True)
    assert raw.isascii()
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    email = message_from_bytes(raw, policy=policy.default)
    assert isinstance(email, EmailMessage)
    assert email["From"] == "申诉中心 <no-reply@appeals.local>"
    assert email["To"] == "Li Wei <li@example.com>"
    assert email["Subject"] == long_subject
    assert email["Message-ID"] == email_message_id("k:received:1:EMAIL")
    assert email.get_content_type() == "multipart/alternative"
    (part,) = email.iter_parts()
    assert part["Content-Transfer-Encoding"] == "base64" and part.get_content() == "x" * 2000


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("中" * 70, 1),
        ("中" * 71, 2),
        ("¥" + "a" * 159, 1),
        ("€" * 80, 1),
        ("€" * 81, 2),
    ],
)
def test_sms_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_sink_file_names_sort_by_time_and_carry_the_message_id() -> None:
    at = datetime(2025, 3, 12, 10, 15, 30, 123456, tzinfo=UTC)
    assert eml_name("<abc123@appeals.local>", at) == "20250312T101530.123456Z-abc123@appeals.local.eml"
    assert eml_name(None, at) == "20250312T101530.123456Z-no-message-id.eml"
    assert eml_name("<a/../b c@x>", at) == "20250312T101530.123456Z-a_.._b_c@x.eml"
