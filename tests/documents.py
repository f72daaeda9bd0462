"""Documents an appeal asks for, built in code: a statement covering the required months and a
plain text PDF for the other checklist items."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from fpdf import FPDF

from core.clock import SYSTEM_CLOCK
from tests.core.documents.factories import csv_statement_en, rows_covering


def recent_statement_csv(today: date | None = None, months: int = 3, *, seed: int = 7) -> bytes:
    """A consistent CSV statement covering the last `months` full months and a little more.

    `today` defaults to the system clock's: the stack's worker checks coverage on that day."""
    today = today or SYSTEM_CLOCK.today()
    return csv_statement_en(rows_covering(today, months, lead_days=3, seed=seed))


def text_pdf(
    title: str = "Credit report",
    lines: tuple[str, ...] = ("No adverse records.",),
    *,
    now: datetime | None = None,
) -> bytes:
    pdf = FPDF()
    pdf.set_producer("Credit Reference Center Report Service")
    pdf.set_creation_date((now or SYSTEM_CLOCK.now()) - timedelta(days=2))
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    for line in (title, *lines):
        pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
