"""Documents an appeal asks for, built in code: a statement covering the required months and a
plain text PDF for the other checklist items."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from fpdf import FPDF

from core.documents.statement_checks import required_window
from tests.core.documents.factories import csv_statement_en, make_rows


def recent_statement_csv(today: date | None = None, months: int = 3, *, seed: int = 7) -> bytes:
    """A consistent CSV statement covering the last `months` full months and a little more."""
    today = today or datetime.now(UTC).date()
    window = required_window(today, months)
    rows = make_rows(window.start - timedelta(days=3), today - timedelta(days=1), seed=seed)
    return csv_statement_en(rows)


def text_pdf(title: str = "Credit report", lines: tuple[str, ...] = ("No adverse records.",)) -> bytes:
    pdf = FPDF()
    pdf.set_producer("Credit Reference Center Report Service")
    pdf.set_creation_date(datetime.now(UTC) - timedelta(days=2))
    pdf.add_page()
    pdf.set_font("helvetica", size=11)
    for line in (title, *lines):
        pdf.cell(text=line, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
