from datetime import UTC, datetime, timedelta

import pytest

from core.documents.pdf_dates import parse_pdf_date
from core.documents.pdf_flags import red_flags
from core.documents.types import Severity
from tests.core.documents.factories import pdf_report

CREATED = datetime(2026, 4, 1, 2, 0, tzinfo=UTC)


def codes(**changes: object) -> list[str]:
    return [flag.code for flag in red_flags(pdf_report(**changes))]


def test_a_clean_report_has_no_flags() -> None:
    assert codes(producer="BankCore Statement Service", creation_date=CREATED,
                 mod_date=CREATED + timedelta(hours=2)) == []  # fmt: skip


@pytest.mark.parametrize(
    ("field", "value", "flagged"),
    [
        ("producer", "Adobe Photoshop 25.0 (Windows)", True),
        ("creator", "GIMP 2.10.36", True),
        ("producer", "Adobe Illustrator 28.0", True),
        ("producer", "Adobe Acrobat Pro DC 23.1.20093", True),
        ("producer", "Adobe Acrobat Standard 2020", True),
        ("producer", "Wondershare PDFelement", True),
        ("producer", "Foxit PhantomPDF 10.1", True),
        ("creator", "Foxit PDF Editor 12.0", True),
        ("producer", "福昕高级PDF编辑器", True),
        ("producer", "Smallpdf.com", True),
        ("producer", "iLovePDF", True),
        ("producer", "Sejda Desktop 7.5", True),
        ("creator", "PDF-XChange Editor 10.0", True),
        ("xmp_creator_tool", "Adobe Photoshop CC 2019", True),
        ("xmp_producer", "Canva", True),
        # Generators and converters that issue genuine documents: not editing tools.
        ("producer", "Acrobat Distiller 23.0 (Windows)", False),
        ("producer", "Adobe PDF Library 17.11", False),
        ("producer", "Microsoft® Word for Microsoft 365", False),
        ("producer", "iText® 7.2.5 ©2000-2023 iText Group NV", False),
        ("producer", "Foxit Reader PDF Printer Version 9.0", False),
        ("producer", "Foxit PhantomPDF Printer Version 10.1", False),
        ("producer", "PDF-XChange Viewer", False),
        ("creator", "JasperReports Library version 6.20.0", False),
        ("producer", "LibreOffice 7.6", False),
    ],
)
def test_editing_tools_in_metadata(field: str, value: str, flagged: bool) -> None:
    assert ("PDF_EDITING_TOOL" in codes(**{field: value})) is flagged


def test_libreoffice_draw_is_an_editor_but_writer_is_not() -> None:
    assert "PDF_EDITING_TOOL" in codes(producer="LibreOffice 7.6", creator="Draw")
    assert "PDF_EDITING_TOOL" not in codes(producer="LibreOffice 7.6", creator="Writer")
    assert "PDF_EDITING_TOOL" not in codes(producer="BankCore", creator="Draw")


def test_editing_tool_explanation_names_the_tool_in_both_languages() -> None:
    (flag,) = red_flags(pdf_report(producer="Adobe Photoshop 25.0"))
    assert "Adobe Photoshop" in flag.explanation_en
    assert "Adobe Photoshop" in flag.explanation_zh
    assert "图像编辑软件" in flag.explanation_zh
    assert flag.explanation("zh-CN") == flag.explanation_zh


@pytest.mark.parametrize(
    ("modified_after", "expected"),
    [
        (timedelta(hours=23), []),
        (timedelta(days=2), ["PDF_MODIFIED_AFTER_CREATION"]),
        (timedelta(days=70), ["PDF_MODIFIED_AFTER_CREATION"]),
        (-timedelta(hours=8), []),  # a producer that wrote local time without an offset
        (-timedelta(hours=15), ["PDF_MODIFIED_BEFORE_CREATION"]),
    ],
)
def test_modification_date_rules(modified_after: timedelta, expected: list[str]) -> None:
    assert codes(creation_date=CREATED, mod_date=CREATED + modified_after) == expected


def test_missing_dates_raise_no_date_flag() -> None:
    assert codes(creation_date=CREATED) == []
    assert codes(mod_date=CREATED) == []


def test_incremental_update_severity_depends_on_signature() -> None:
    (unsigned,) = red_flags(pdf_report(incremental_update_count=1))
    (signed,) = red_flags(pdf_report(incremental_update_count=1, has_signature=True))
    (signed_twice,) = red_flags(pdf_report(incremental_update_count=2, has_signature=True))
    assert unsigned.code == signed.code == "PDF_INCREMENTAL_UPDATE"
    assert (unsigned.severity, signed.severity, signed_twice.severity) == (
        Severity.MEDIUM,
        Severity.LOW,
        Severity.MEDIUM,
    )
    assert "2 time(s)" in signed_twice.explanation_en


def test_active_content_flags_are_high_severity() -> None:
    flags = red_flags(pdf_report(has_javascript=True, has_launch_action=True))
    assert [(f.code, f.severity) for f in flags] == [
        ("PDF_JAVASCRIPT", Severity.HIGH),
        ("PDF_LAUNCH_ACTION", Severity.HIGH),
    ]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("D:20260301093000+08'00'", datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        ("D:20260301093000+08'00", datetime(2026, 3, 1, 1, 30, tzinfo=UTC)),
        ("D:20260301093000-05'30'", datetime(2026, 3, 1, 15, 0, tzinfo=UTC)),
        ("D:20260301093000Z", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("D:20260301093000Z00'00'", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("D:20260301", datetime(2026, 3, 1, tzinfo=UTC)),
        ("20260301093000", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("D:2026", datetime(2026, 1, 1, tzinfo=UTC)),
        ("D:20261341", None),
        ("yesterday", None),
        ("", None),
        (None, None),
    ],
)
def test_pdf_dates_become_aware_utc(raw: str | None, expected: datetime | None) -> None:
    parsed = parse_pdf_date(raw)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is UTC
