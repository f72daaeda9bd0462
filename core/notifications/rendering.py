"""Rendering customer notices from the Jinja2 templates under templates/notifications/."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache, wraps
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, Undefined

from core.appeals.cooldown import may_appeal_again_on
from core.clock import SYSTEM_CLOCK

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"
SUPPORTED_LOCALES = ("zh-CN", "en")


def format_money(minor: int, currency: str = "CNY") -> str:
    """`¥1,234.50`; a negative amount (a debit on a statement) is `-¥359.53`."""
    amount = Decimal(minor) / 100
    symbol = "¥" if currency == "CNY" else f"{currency} "
    sign = "-" if amount < 0 else ""
    return f"{sign}{symbol}{abs(amount):,.2f}"


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


def format_money_code(minor: int, currency: str = "CNY") -> str:
    """Money with the ISO code instead of a symbol: `CNY 8,000.00` (GSM-7 safe, for English SMS)."""
    amount = Decimal(minor) / 100
    return f"{'-' if amount < 0 else ''}{currency} {abs(amount):,.2f}"


# What an adverse-action notice names as "the data sources used" (codes in `data_sources`).
_DATA_SOURCE_LABELS = {
    "ACCOUNT_HISTORY": (
        "your billing and repayment history on this credit account with us",
        "您在我行该信用账户的账单与还款记录",
    ),
    "UPLOADED_DOCUMENTS": (
        "the documents you uploaded for this appeal, such as bank statements",
        "您为本次申诉上传的材料（如银行流水）",
    ),
    "CUSTOMER_DECLARATION": (
        "the income and employment details you gave us",
        "您向我们提供的收入与工作信息",
    ),
    "CREDIT_REPORT": ("the credit report you provided", "您提供的个人信用报告"),
    "REVIEWER_ASSESSMENT": ("the assessment by our review team", "审核人员的人工评估"),
}
DEFAULT_DATA_SOURCES = ("ACCOUNT_HISTORY", "UPLOADED_DOCUMENTS", "CUSTOMER_DECLARATION")


def data_source_label(code: str, locale: str) -> str:
    en, zh = _DATA_SOURCE_LABELS.get(code, (code, code))
    return zh if locale.startswith("zh") else en


def _as_date(value: date | datetime | str) -> date:
    """Dates arrive as date objects or, through Temporal's JSON, as ISO strings."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def date_label(value: date | datetime | str, locale: str) -> str:
    d = _as_date(value)
    if locale.startswith("zh"):
        return f"{d.year}年{d.month}月{d.day}日"
    return f"{d.day} {d:%B} {d.year}"


# Sentence stops a reason text may already end with (policy reason texts, document rejections).
_STOPS = "。．.！!"


def clause(text: str) -> str:
    """`text` without its closing full stop: for a reason set inside a sentence of the
    template, which supplies the punctuation (no "。。" or ".;" in front of the customer)."""
    return str(text).rstrip().rstrip(_STOPS).rstrip()


def sentence(text: str, locale: str) -> str:
    """`text` ending in exactly one full stop of `locale` (。 or .), whether or not it had one."""
    return clause(text) + ("。" if locale.startswith("zh") else ".")


def _autoescape(name: str | None) -> bool:
    # Plain-text email parts and SMS are not HTML: escaping would put `&amp;` in front of
    # the customer. Everything else (HTML email, in-app) is escaped.
    if name is None:
        return True
    return not (name.endswith(".txt.j2") or name.startswith("notifications/sms/"))


def _strict(filter_: Callable[..., str]) -> Callable[..., str]:
    """A filter given an undefined variable raises UndefinedError naming it, rather than
    whatever the conversion in the filter would make of it."""

    @wraps(filter_)
    def checked(value: Any, *args: Any) -> str:
        if isinstance(value, Undefined):
            value._fail_with_undefined_error()
        return filter_(value, *args)

    return checked


@lru_cache
def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=_autoescape,
        # A missing variable is a bug in the caller, never an empty gap in a customer notice.
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["money"] = _strict(format_money)
    env.filters["doc_label"] = _strict(document_label)
    env.filters["money_code"] = _strict(format_money_code)
    env.filters["source_label"] = _strict(data_source_label)
    env.filters["date_label"] = _strict(date_label)
    env.filters["clause"] = _strict(clause)
    env.filters["sentence"] = _strict(sentence)
    return env


@dataclass(frozen=True)
class RenderedNotice:
    subject: str
    body: str


def pick_locale(locale: str | None) -> str:
    if locale and locale.lower().startswith("zh"):
        return "zh-CN"
    return "en"


# Optional context keys per event. StrictUndefined stays strict: instead of `|default` in the
# templates, complete_context() passes an explicit None for each optional key the caller left
# out, so a template tests `is none` and a misspelt or forgotten required key still fails.
OPTIONAL_CONTEXT: dict[str, tuple[str, ...]] = {
    "declined": (
        "score",  # None: a reviewer's decline has no score
        "score_min",
        "score_max",
        "automated",
        "human_review_days",
        "decided_on",  # default: the day the notice is rendered
        "scored_on",  # the score's date; default: decided_on
        "data_sources",  # default: DEFAULT_DATA_SOURCES
        "cooldown_days",  # default: DEFAULT_DECLINE_COOLDOWN_DAYS
        "reapply_on",  # default: decided_on + cooldown_days
        "human_review_until",  # default: decided_on + human_review_days, automated declines only
    ),
    "limit_restored": (
        "partial_reasons",
        # With the new limit below it, the notice says the customer may appeal again (the rule
        # of core/ledger/eligibility.py); the notification service passes the account's.
        "original_limit_minor",
    ),
    "information_requested": ("message",),
    "ineligible": ("amount_owed_minor", "reason_code"),
}
MAX_PRINCIPAL_REASONS = 4
# The policy's `appeals.decline_cooldown_days` (policy/limit-restore-v1.toml); the caller
# should pass the policy's value as `cooldown_days` or the exact date as `reapply_on`.
DEFAULT_DECLINE_COOLDOWN_DAYS = 30


def complete_context(event: str, context: Mapping[str, Any], *, today: date | None = None) -> dict[str, Any]:
    """The context a template of `event` sees: explicit None for omitted optional keys, and
    for a decline the derived dates (decided_on, reapply_on, human_review_until), the data
    sources and at most MAX_PRINCIPAL_REASONS reasons."""
    out: dict[str, Any] = dict.fromkeys(OPTIONAL_CONTEXT.get(event, ()))
    out.update(context)
    if event == "declined":
        decided_on = _as_date(out["decided_on"]) if out["decided_on"] else (today or SYSTEM_CLOCK.today())
        if out["cooldown_days"] is None:
            out["cooldown_days"] = DEFAULT_DECLINE_COOLDOWN_DAYS
        out["decided_on"] = decided_on
        out["scored_on"] = _as_date(out["scored_on"]) if out["scored_on"] else decided_on
        if out["reapply_on"] is None:
            out["reapply_on"] = may_appeal_again_on(decided_on, int(out["cooldown_days"]))
        if out["human_review_until"] is None and out["automated"] and out["human_review_days"]:
            out["human_review_until"] = decided_on + timedelta(days=int(out["human_review_days"]))
        if not out["data_sources"]:
            out["data_sources"] = list(DEFAULT_DATA_SOURCES)
        if "reasons" in out:  # required: a decline without reasons fails to render
            out["reasons"] = list(out["reasons"])[:MAX_PRINCIPAL_REASONS]
    return out


STAFF_CHANNEL = "staff"


def _subject(event: str, locale: str, full: Mapping[str, Any]) -> str:
    module = environment().get_template(f"notifications/subjects.{locale}.j2").make_module(dict(full))
    macro = getattr(module, event, None)
    if macro is None:
        raise LookupError(f"no subject for notice event {event!r} in notifications/subjects.{locale}.j2")
    return " ".join(str(macro()).split())


def notice_subject(event: str, locale: str, context: Mapping[str, Any]) -> str:
    """The subject of a customer notice: one per event and locale, from
    `templates/notifications/subjects.{locale}.j2`, shared by every channel (in-app, email,
    SMS and webhook rows)."""
    return _subject(event, pick_locale(locale), complete_context(event, context))


def _with_subject(event: str, locale: str, context: Mapping[str, Any]) -> dict[str, Any]:
    full = complete_context(event, context)
    full["subject"] = _subject(event, locale, full)
    return full


def render_notice(channel: str, event: str, locale: str, context: dict[str, Any]) -> RenderedNotice:
    """A short notice (`in_app`, or `staff`: staff notices name their own subject)."""
    loc = pick_locale(locale)
    template = environment().get_template(f"notifications/{channel}/{event}.{loc}.j2")
    if channel == STAFF_CHANNEL:
        module = template.make_module(complete_context(event, context))
        subject = " ".join(str(module.subject).split())  # type: ignore[attr-defined]
    else:
        full = _with_subject(event, loc, context)
        module, subject = template.make_module(full), full["subject"]
    return RenderedNotice(subject=subject, body=str(module).strip())


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def render_email(event: str, locale: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Both parts of `email/{event}.{locale}.{txt,html}.j2`, under the event's subject
    (`notice_subject`; the HTML layout shows it as title and heading)."""
    env, loc = environment(), pick_locale(locale)
    full = _with_subject(event, loc, context)
    text = str(env.get_template(f"notifications/email/{event}.{loc}.txt.j2").render(full))
    html = str(env.get_template(f"notifications/email/{event}.{loc}.html.j2").render(full))
    return RenderedEmail(subject=full["subject"], text=text.strip() + "\n", html=html.strip() + "\n")


def render_sms(event: str, locale: str, context: Mapping[str, Any]) -> str:
    """`sms/{event}.{locale}.j2`, whitespace collapsed to single spaces."""
    loc = pick_locale(locale)
    template = environment().get_template(f"notifications/sms/{event}.{loc}.j2")
    return " ".join(template.render(_with_subject(event, loc, context)).split())
