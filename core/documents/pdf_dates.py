"""PDF date strings (ISO 32000-1 §7.9.4), e.g. `D:20260301093000+08'00'`, to aware UTC."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

# Everything after the year is optional; producers disagree about the apostrophes.
_PDF_DATE = re.compile(
    r"""^\s*(?:D:)?
    (?P<y>\d{4})(?P<mo>\d{2})?(?P<d>\d{2})?(?P<h>\d{2})?(?P<mi>\d{2})?(?P<s>\d{2})?
    (?:\s*(?P<tz>[Zz+\-])\s*(?:(?P<th>\d{2})'?(?P<tm>\d{2})?'?)?)?
    """,
    re.VERBOSE,
)


def parse_pdf_date(raw: str | None) -> datetime | None:
    """Aware UTC datetime, or None when absent or unreadable.

    A date without an offset is read as UTC: the true zone is unknowable, and the red-flag
    tolerances are wider than any time-zone error this introduces.
    """
    if not raw:
        return None
    match = _PDF_DATE.match(raw)
    if match is None:
        return None
    g = match.groupdict()
    try:
        local = datetime(
            int(g["y"]),
            int(g["mo"] or 1),
            int(g["d"] or 1),
            int(g["h"] or 0),
            int(g["mi"] or 0),
            int(g["s"] or 0),
        )
        offset = timedelta(hours=int(g["th"] or 0), minutes=int(g["tm"] or 0))
        if g["tz"] == "-":
            offset = -offset
        return local.replace(tzinfo=timezone(offset)).astimezone(UTC)
    except (ValueError, OverflowError):
        return None
