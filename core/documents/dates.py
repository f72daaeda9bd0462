"""Statement dates, including the dd/mm vs mm/dd question, which is settled per column.

Rules, in order:
1. Year-first forms are unambiguous: 2026-03-01, 2026/3/1, 2026.3.1, 20260301, 2026年3月1日.
   A trailing time ("2026-03-01 10:22:33") is ignored. Month names are unambiguous too:
   "01 Mar 2026", "1-Mar-2026", "Mar 1, 2026".
2. For nn/nn/yyyy (also with "-" or "."), the whole column decides: a first part above 12 anywhere
   means day-first, a second part above 12 means month-first, both means the column is
   inconsistent (an error).
3. If no value settles it, the reading under which the column is in date order (ascending or
   descending, as statements are) wins; if both or neither are, day-first, the convention of
   every market whose exports we expect (mainland China uses year-first; Hong Kong, the UK and
   Europe are day-first).
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from typing import Final

_MONTHS: Final = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}

# Unanchored alternatives, reused by the text-statement line pattern.
DATE_PATTERN: Final = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"
    r"|\d{4}年\d{1,2}月\d{1,2}日?"
    r"|\d{8}"
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{4}"
    r"|\d{1,2}[- ]?[A-Za-z]{3,9}[- ,]*\d{4}"
    r"|[A-Za-z]{3,9}\.? \d{1,2},? \d{4})"
)
_TIME_SUFFIX: Final = re.compile(r"(?:[T ]|\s+)\d{1,2}:\d{2}(?::\d{2})?(?:\.\d+)?.*$")
_YMD: Final = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})")
_YMD_ZH: Final = re.compile(r"(\d{4})年(\d{1,2})月(\d{1,2})日?")
_COMPACT: Final = re.compile(r"(\d{4})(\d{2})(\d{2})")
_NUMERIC_NN_Y: Final = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})")
_DAY_MONTHNAME: Final = re.compile(r"(\d{1,2})[- ]?([A-Za-z]{3,9})[- ,]*(\d{4})")
_MONTHNAME_DAY: Final = re.compile(r"([A-Za-z]{3,9})\.? (\d{1,2}),? (\d{4})")


@dataclass(frozen=True, slots=True)
class RawDate:
    """A date cell read as numbers. `ambiguous` means (first, second, year) of nn/nn/yyyy."""

    first: int
    second: int
    third: int
    ambiguous: bool


class DateOrderError(ValueError):
    """The column has both dd/mm-only and mm/dd-only values."""


@lru_cache(maxsize=4096)  # statements repeat the same few dozen dates thousands of times
def read_date(cell: str) -> RawDate | None:
    """The numbers in a date cell, unresolved; None when the cell is not a date at all."""
    text = unicodedata.normalize("NFKC", cell).strip()
    text = _TIME_SUFFIX.sub("", text)
    for pattern in (_YMD, _YMD_ZH, _COMPACT):
        m = pattern.fullmatch(text)
        if m:
            return RawDate(int(m[1]), int(m[2]), int(m[3]), ambiguous=False)
    m = _NUMERIC_NN_Y.fullmatch(text)
    if m:
        return RawDate(int(m[1]), int(m[2]), int(m[3]), ambiguous=True)
    m = _DAY_MONTHNAME.fullmatch(text)
    if m and m[2].lower() in _MONTHS:
        return RawDate(int(m[3]), _MONTHS[m[2].lower()], int(m[1]), ambiguous=False)
    m = _MONTHNAME_DAY.fullmatch(text)
    if m and m[1].lower() in _MONTHS:
        return RawDate(int(m[3]), _MONTHS[m[1].lower()], int(m[2]), ambiguous=False)
    return None


def to_date(raw: RawDate, day_first: bool) -> date | None:
    """The calendar date, or None for impossible values such as 2026-02-30."""
    if raw.ambiguous:
        day, month = (raw.first, raw.second) if day_first else (raw.second, raw.first)
        year = raw.third
    else:
        year, month, day = raw.first, raw.second, raw.third
    try:
        return date(year, month, day)
    except ValueError:
        return None


def decide_day_first(raws: Sequence[RawDate]) -> bool:
    """Whether the nn/nn/yyyy values of one column are day-first (see the module docstring)."""
    ambiguous = [r for r in raws if r.ambiguous]
    if not ambiguous:
        return True
    day_first_seen = any(r.first > 12 for r in ambiguous)
    month_first_seen = any(r.second > 12 for r in ambiguous)
    if day_first_seen and month_first_seen:
        raise DateOrderError("both dd/mm and mm/dd values")
    if day_first_seen or month_first_seen:
        return day_first_seen
    as_day_first = _monotonic([to_date(r, True) for r in raws])
    as_month_first = _monotonic([to_date(r, False) for r in raws])
    return not (as_month_first and not as_day_first)


def _monotonic(dates: list[date | None]) -> bool:
    known = [d for d in dates if d is not None]
    if len(known) != len(dates):
        return False
    pairs = list(itertools.pairwise(known))
    return all(a <= b for a, b in pairs) or all(a >= b for a, b in pairs)


def find_dates(text: str) -> list[RawDate]:
    """Every date written in free text, e.g. a statement's "Period: 2026-01-01 to 2026-03-31"."""
    normalized = unicodedata.normalize("NFKC", text)
    # The lookarounds keep an 8-digit run inside an account number from reading as a date.
    matches = re.finditer(rf"(?<!\d){DATE_PATTERN}(?!\d)", normalized)
    found = (read_date(m.group(0)) for m in matches)
    return [raw for raw in found if raw is not None]
