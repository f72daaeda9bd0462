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
    template = environment().get_template(
        f"notifications/{channel}/{event}.{pick_locale(locale)}.j2"
    )
    module = template.make_module(context)
    subject = str(module.subject).strip()  # type: ignore[attr-defined]
    return RenderedNotice(subject=subject, body=str(module).strip())
