"""Money cells from bank exports to integer minor units (fen). Decimal, never float."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation
from typing import Final

_FAST: Final = re.compile(r"(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?")
_BLANK: Final = frozenset({"", "-", "--", "—", "－", "/", "n/a", "na", "nil", "null", "none"})
_CURRENCY: Final = re.compile(r"cny|rmb|usd|hkd|eur|gbp|人民币|元|[¥$€£]", re.IGNORECASE)
_SPACES: Final = re.compile(r"[\s'_]")
# Thousands grouping must be regular: "1,234,567.89", or no grouping at all.
_DOT_DECIMAL: Final = re.compile(r"(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?")
# Continental style, e.g. from a semicolon-delimited export: "1.234,56" or "12,5".
_COMMA_DECIMAL: Final = re.compile(r"(\d{1,3}(?:\.\d{3})+|\d+),(\d{1,2})")


class AmountError(ValueError):
    pass


def parse_amount_minor(raw: str) -> int | None:
    """`"¥1,234.50"` -> 123450, `"(12.00)"` / `"12.00-"` / `"12.00 DR"` -> -1200; blank -> None.

    Raises AmountError for anything else, including fractions of a fen.
    """
    fast = _FAST.fullmatch(raw)
    if fast is not None:  # the common case in machine exports; skips the slow path below
        sign, whole, frac = fast.groups()
        value = int(whole.replace(",", "")) * 100 + int((frac or "0").ljust(2, "0"))
        return -value if sign else value
    return _parse_slow(raw)


def _parse_slow(raw: str) -> int | None:
    # NFKC folds full-width digits, "￥", "（）" and "，" into their ASCII forms.
    text = unicodedata.normalize("NFKC", raw).strip().replace("\u2212", "-")
    if text.lower() in _BLANK:
        return None
    negatives = 0
    upper = text.upper()
    if upper.endswith(("DR", "CR")):
        negatives += upper.endswith("DR")
        text = text[:-2]
    text = _SPACES.sub("", _CURRENCY.sub("", text))
    if text.startswith("(") and text.endswith(")"):
        negatives, text = negatives + 1, text[1:-1]
    if text.endswith("-"):
        negatives, text = negatives + 1, text[:-1]
    if text.startswith(("-", "+")):
        negatives, text = negatives + (text[0] == "-"), text[1:]
    if negatives > 1 or not text:
        raise AmountError(raw)
    minor = _digits_to_minor(text, raw)
    return -minor if negatives else minor


def _digits_to_minor(text: str, raw: str) -> int:
    match = _COMMA_DECIMAL.fullmatch(text)
    if match is not None:
        whole, frac = match.group(1).replace(".", ""), match.group(2)
    else:
        match = _DOT_DECIMAL.fullmatch(text)
        if match is None:
            raise AmountError(raw)
        whole, frac = match.group(1).replace(",", ""), match.group(2) or "0"
    try:
        minor = Decimal(f"{whole}.{frac}").scaleb(2)
    except InvalidOperation as exc:
        raise AmountError(raw) from exc
    if minor != minor.to_integral_value():
        raise AmountError(raw)  # a fraction of a fen is a misread column, not money
    return int(minor)


def format_minor(amount_minor: int) -> str:
    """1234567 -> "12,345.67", for messages."""
    sign = "-" if amount_minor < 0 else ""
    whole, frac = divmod(abs(amount_minor), 100)
    return f"{sign}{whole:,}.{frac:02d}"
