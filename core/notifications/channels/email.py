"""Email over SMTP: multipart/alternative (text and HTML), a Message-ID derived from the
outbox idempotency key, STARTTLS and credentials from settings in production.

The Message-ID is the receiver's handle on duplicates: the one case where a message can go
out twice (see core/notifications/outbox.py) sends it under the same Message-ID, which mail
stores and clients use to collapse copies.

Connections are kept open between messages (a few, idle for at most `idle_seconds`): a
connection costs a TCP handshake, the greeting, EHLO, STARTTLS and a login, several round trips
that a message sent on an open one does not pay. A kept connection is checked with RSET before
it carries a message, so one the relay dropped is replaced before anything is sent on it.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable
from email import policy as email_policy
from email.charset import Charset
from email.header import Header
from email.message import EmailMessage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formataddr, formatdate, getaddresses, parseaddr
from functools import cache

from core.notifications.channels.base import OutboundMessage, PermanentSendError, RetryableSendError
from core.settings import Environment, Settings

MESSAGE_ID_DOMAIN = "appeals.local"


def email_message_id(idempotency_key: str) -> str:
    """`<first 32 hex digits of sha256(key)@appeals.local>`: the same key, the same Message-ID."""
    return f"<{hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]}@{MESSAGE_ID_DOMAIN}>"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cache
def _local_hostname() -> str:
    """What EHLO says; smtplib would look it up again for every connection."""
    return socket.getfqdn()


def _close_quietly(smtp: smtplib.SMTP) -> None:
    with contextlib.suppress(OSError):
        smtp.close()


def _cte(text: str, eight_bit: bool) -> str:
    fits = all(len(line.encode("utf-8")) <= 998 for line in text.splitlines())
    return "8bit" if eight_bit and fits else "base64"


# The message is put together with the email package's compat32 classes and written with CRLF:
# about a third of the CPU of EmailMessage under the default policy, which parses every header
# it is given into objects (bench/temporal_bench.py: two messages per automatic appeal).
_WIRE = email_policy.compat32.clone(linesep="\r\n")
_UTF8_8BIT = Charset("utf-8")
_UTF8_8BIT.body_encoding = None  # type: ignore[assignment]  # raw UTF-8 lines: 8bit (typeshed: int)


def _text_part(text: str, subtype: str, eight_bit: bool) -> MIMEText:
    charset = _UTF8_8BIT if _cte(text, eight_bit) == "8bit" else "utf-8"
    part = MIMEText(text, subtype, charset)  # type: ignore[arg-type]  # a Charset is taken too
    del part["MIME-Version"]  # the message's own says it
    return part


def _header(value: str) -> str | Header:
    return value if value.isascii() else Header(value, "utf-8")


def _refuse_line_breaks(message: OutboundMessage, from_address: str) -> None:
    """A line break in a header value would start a header of its own (a Bcc, say): such a
    message is refused for good, never sent."""
    values = (from_address, message.recipient, message.subject, message.event, message.locale)
    if any("\r" in value or "\n" in value for value in (*values, message.idempotency_key)):
        raise PermanentSendError("a header value holds a line break: not sent")


def _fixed_headers(message: OutboundMessage) -> list[tuple[str, str]]:
    """The headers both builds write as they are (no address, no text beyond ASCII)."""
    return [
        ("Date", formatdate(usegmt=True)),
        ("Message-ID", message.message_id or email_message_id(message.idempotency_key)),
        ("Auto-Submitted", "auto-generated"),
        ("X-Appeals-Event", message.event),
        ("X-Appeals-Idempotency-Key", message.idempotency_key),
    ]


def _mailbox(address: str) -> str:
    """A From/To value with any non-ASCII display name encoded (RFC 2047)."""
    name, addr = parseaddr(address)
    return formataddr((name, addr), charset="utf-8") if name else addr


def _ascii_addresses(*addresses: str) -> bool:
    return all(addr.isascii() for _, addr in getaddresses(list(addresses)))


class EmailSender:
    def __init__(
        self,
        *,
        host: str,
        port: int,
        from_address: str,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout: float = 30.0,
        keep_connections: int = 4,
        idle_seconds: float = 20.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.host, self.port, self.from_address = host, port, from_address
        self.username, self.password = username, password
        self.starttls, self.timeout = starttls, timeout
        self.keep_connections, self.idle_seconds, self._monotonic = keep_connections, idle_seconds, monotonic
        self._idle: list[tuple[smtplib.SMTP, float]] = []  # open connections, when each was last used
        self._idle_lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailSender:
        """Production refuses a plain-text connection to a relay on another host: credentials
        and customer notices would cross the network in the clear."""
        production = settings.environment is Environment.PRODUCTION
        if production and not settings.smtp_starttls and not _is_loopback(settings.smtp_host):
            raise ValueError(f"APPEALS_SMTP_STARTTLS must be true in production (relay {settings.smtp_host})")
        return cls(
            host=settings.smtp_host,
            port=settings.smtp_port,
            from_address=settings.smtp_from,
            username=settings.smtp_username,
            password=settings.smtp_password,
            starttls=settings.smtp_starttls,
            timeout=settings.smtp_timeout_seconds,
        )

    def build(self, message: OutboundMessage, *, eight_bit: bool = False) -> bytes:
        """The message as it goes on the wire (CRLF line ends). `eight_bit`: the parts go as
        raw UTF-8 (readable in the .eml files of the local sink) where the server takes
        8BITMIME and every line fits SMTP's 998 octets; otherwise base64."""
        _refuse_line_breaks(message, self.from_address)
        mail = MIMEMultipart("alternative", policy=_WIRE)
        mail["From"] = _mailbox(self.from_address)
        mail["To"] = _mailbox(message.recipient)
        mail["Subject"] = _header(message.subject)  # type: ignore[assignment]
        for name, value in _fixed_headers(message):
            mail[name] = value
        mail["Content-Language"] = message.locale
        mail.attach(_text_part(message.body, "plain", eight_bit))
        if message.html is not None:
            mail.attach(_text_part(message.html, "html", eight_bit))
        return mail.as_bytes()

    def _legacy_build(self, message: OutboundMessage, *, eight_bit: bool) -> EmailMessage:
        """For an address beyond ASCII: EmailMessage, which smtplib sends with SMTPUTF8 where
        the relay offers it (and refuses where it does not)."""
        _refuse_line_breaks(message, self.from_address)
        email = EmailMessage()
        email["From"] = self.from_address
        email["To"] = message.recipient
        email["Subject"] = message.subject
        for name, value in _fixed_headers(message):
            email[name] = value
        email.set_content(message.body, charset="utf-8", cte=_cte(message.body, eight_bit))
        if message.html is not None:
            email.add_alternative(
                message.html, subtype="html", charset="utf-8", cte=_cte(message.html, eight_bit)
            )
        email["Content-Language"] = message.locale  # after the content: set_content clears Content-*
        return email

    def _transmit(self, smtp: smtplib.SMTP, message: OutboundMessage) -> None:
        eight_bit = smtp.has_extn("8bitmime")
        options = ["BODY=8BITMIME"] if eight_bit else []
        if not _ascii_addresses(self.from_address, message.recipient):
            smtp.send_message(self._legacy_build(message, eight_bit=eight_bit), mail_options=options)
            return
        raw = self.build(message, eight_bit=eight_bit)
        smtp.sendmail(parseaddr(self.from_address)[1], [parseaddr(message.recipient)[1]], raw, options)

    def _connect(self) -> smtplib.SMTP:
        smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout, local_hostname=_local_hostname())
        try:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()  # the extensions offered inside TLS
            if self.username:
                smtp.login(self.username, self.password or "")
        except BaseException:
            _close_quietly(smtp)
            raise
        return smtp

    def _open_connection(self) -> smtplib.SMTP:
        """A kept connection that still answers, else a new one."""
        now = self._monotonic()
        while True:
            with self._idle_lock:
                if not self._idle:
                    break
                smtp, last_used = self._idle.pop()
            if now - last_used > self.idle_seconds:
                _close_quietly(smtp)  # relays drop idle clients; do not find out mid-message
                continue
            try:
                smtp.rset()
                return smtp
            except (smtplib.SMTPException, OSError):
                _close_quietly(smtp)
        return self._connect()

    def _keep(self, smtp: smtplib.SMTP) -> None:
        with self._idle_lock:
            if len(self._idle) < self.keep_connections:
                self._idle.append((smtp, self._monotonic()))
                return
        _close_quietly(smtp)

    def close(self) -> None:
        """Closes the kept connections (QUIT where the relay still listens)."""
        with self._idle_lock:
            idle, self._idle = self._idle, []
        for smtp, _ in idle:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                _close_quietly(smtp)

    def send(self, message: OutboundMessage) -> None:
        try:
            smtp = self._open_connection()
            try:
                self._transmit(smtp, message)
            except BaseException:
                _close_quietly(smtp)  # its state after a failure is unknown
                raise
            self._keep(smtp)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _ in exc.recipients.values()]
            error = f"recipient refused: {exc.recipients}"
            if all(code >= 500 for code in codes):
                raise PermanentSendError(error) from exc
            raise RetryableSendError(error) from exc
        except smtplib.SMTPNotSupportedError as exc:  # e.g. no STARTTLS on the relay
            raise PermanentSendError(f"SMTP: {exc}") from exc
        except smtplib.SMTPResponseException as exc:  # sender refused, data refused, auth, ...
            error = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
            if exc.smtp_code >= 500:
                raise PermanentSendError(error) from exc
            raise RetryableSendError(error) from exc
        except ssl.SSLCertVerificationError as exc:
            raise PermanentSendError(f"TLS certificate of {self.host} refused: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:  # disconnects, refused connections, timeouts
            raise RetryableSendError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}") from exc
