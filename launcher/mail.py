"""Starting the local SMTP sink (launcher/smtp_sink.py) as a managed process, for `appeals dev`
and the tests, and reading what it stored."""

from __future__ import annotations

import email
import email.policy
import socket
import sys
from email.message import EmailMessage
from pathlib import Path

from launcher.stack import ManagedProcess, wait_until


def smtp_sink(*, host: str, port: int, mail_dir: Path, log_path: Path) -> ManagedProcess:
    """Every message sent to host:port lands in mail_dir as an .eml file."""
    args = [
        sys.executable,
        "-m",
        "launcher.smtp_sink",
        "--host",
        host,
        "--port",
        str(port),
        "--dir",
        str(mail_dir),
    ]
    return ManagedProcess("SMTP sink", args, log_path)


def smtp_ready(host: str, port: int) -> bool:
    """The server greets with 220."""
    with socket.create_connection((host, port), timeout=2) as sock:
        return sock.recv(512).startswith(b"220")


def start_smtp_sink(
    *, host: str, port: int, mail_dir: Path, log_path: Path, timeout: float = 20.0
) -> ManagedProcess:
    proc = smtp_sink(host=host, port=port, mail_dir=mail_dir, log_path=log_path).start()
    try:
        wait_until(lambda: smtp_ready(host, port), proc, timeout)
    except BaseException:
        proc.stop()
        raise
    return proc


def read_mail(mail_dir: Path) -> list[tuple[Path, EmailMessage]]:
    """Every stored message, oldest first (the file names start with the time)."""
    out: list[tuple[Path, EmailMessage]] = []
    for path in sorted(mail_dir.glob("*.eml")):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        out.append((path, message))
    return out
