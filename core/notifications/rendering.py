"""Rendering customer notices from the Jinja2 templates under templates/notifications/."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
SUPPORTED_LOCALES = ("zh-CN", "en")


def format_money(minor: int, currency: str = "CNY") -> str:
    amount = Decimal(minor) / 100
    symbol = "¥" if currency == "CNY" else f"{currency} "
    return f"{symbol}{amount:,.2f}"


_DOCUMENT_LABELS = {
    "BANK_STATEMENT": ("bank statement covering the last 3 full months", "近3个完整自然月的银行流水"),
    "INCOME_PROOF": ("proof of income", "收入证明"),
    "CREDIT_REPORT": ("credit report", "个人信用报告"),
    "EMPLOYMENT_PROOF": ("proof of employment", "在职证明"),
    "OTHER": ("other document", "其他材料"),
}


def document_label(code: str, locale: str) -> str:
    en, zh = _DOCUMENT_LABELS.get(code, (code, code))
    return zh if locale.startswith("zh") else en


@lru_cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(["html", "j2"]),
        # A missing variable is a bug in the caller, never an empty gap in a customer notice.
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["money"] = format_money
    env.filters["doc_label"] = document_label
    return env


@dataclass(frozen=True)
class RenderedNotice:
    subject: str
    body: str


def pick_locale(locale: str | None) -> str:
    if locale and locale.lower().startswith("zh"):
        return "zh-CN"
    return "en"


def render_notice(channel: str, event: str, locale: str, context: dict[str, Any]) -> RenderedNotice:
    template = environment().get_template(f"notifications/{channel}/{event}.{pick_locale(locale)}.j2")
    module = template.make_module(context)
    subject = str(module.subject).strip()  # type: ignore[attr-defined]
    return RenderedNotice(subject=subject, body=str(module).strip())
