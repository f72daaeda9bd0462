"""An appeal's status reason as a person reads it: policy reason codes in their language.

The projection stores `status_reason` as the workflow wrote it: for a decline, the policy's
reason codes joined by "; " (`RC_LATE_PAYMENTS; RC_RECENT_LATE_PAYMENT`); for an ineligibility
or a passed deadline, a code of the workflow's own (`overdue_balance_outstanding`, with the
amount in `amount_owed_minor`); otherwise a sentence (a withdrawal note, a refusal by the
credit-line API). The reader gets the
codes' texts from the policy in their locale, and the codes alongside.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from core.ledger.eligibility import INELIGIBILITY_TEXTS, ineligibility_text
from core.notifications.rendering import pick_locale
from core.policy.model import ReasonText

CODE_SEPARATOR = ";"
DEADLINE_PASSED = "document_deadline_passed"
_DEADLINE_TEXTS = ("The document deadline passed.", "提交材料的期限已过。")
# Reasons the workflow records as a code of its own (not a policy reason code).
SYSTEM_REASON_CODES = frozenset({*INELIGIBILITY_TEXTS, DEADLINE_PASSED})


@dataclass(frozen=True)
class StatusReason:
    text: str | None
    codes: list[str] = field(default_factory=list)


def localize_status_reason(
    raw: str | None,
    locale: str,
    reasons: Mapping[str, ReasonText],
    *,
    amount_owed_minor: int | None = None,
) -> StatusReason:
    """Policy reason codes, and the workflow's own codes (an ineligibility with the amount
    owed, a passed deadline), become their text in `locale` (zh-CN or en); anything else (a
    withdrawal note, a refusal by the credit-line API) is returned as it is, with no codes."""
    if not raw or not raw.strip():
        return StatusReason(text=None)
    if raw in INELIGIBILITY_TEXTS:
        return StatusReason(
            text=ineligibility_text(raw, locale, amount_owed_minor=amount_owed_minor), codes=[raw]
        )
    if raw == DEADLINE_PASSED:
        en, zh = _DEADLINE_TEXTS
        return StatusReason(text=zh if pick_locale(locale) == "zh-CN" else en, codes=[raw])
    codes = [part.strip() for part in raw.split(CODE_SEPARATOR) if part.strip()]
    if not codes or any(code not in reasons for code in codes):
        return StatusReason(text=raw)
    if pick_locale(locale) == "zh-CN":
        return StatusReason(text="".join(reasons[code].zh_cn for code in codes), codes=codes)
    return StatusReason(text=" ".join(reasons[code].en for code in codes), codes=codes)


def _preferred_languages(accept_language: str) -> list[str]:
    """The language tags of an Accept-Language header, most preferred first (q=0 dropped)."""
    ranked: list[tuple[float, int, str]] = []
    for position, item in enumerate(accept_language.split(",")):
        tag, _, params = item.partition(";")
        quality = 1.0
        name, _, value = params.partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                quality = 0.0
        if tag.strip() and quality > 0:
            ranked.append((-quality, position, tag.strip().lower()))
    return [tag for _, _, tag in sorted(ranked)]


def reader_locale(*, customer_locale: str | None, accept_language: str | None, is_customer: bool) -> str:
    """The language an appeal is shown in: a customer reads their own locale (the one their
    notices use); staff read English unless Accept-Language prefers Chinese."""
    if is_customer:
        return pick_locale(customer_locale)
    for tag in _preferred_languages(accept_language or ""):
        if tag.startswith(("zh", "en")):
            return pick_locale(tag)
    return "en"
