import pytest

from core.documents.amounts import AmountError, format_minor, parse_amount_minor


@pytest.mark.parametrize(
    ("raw", "minor"),
    [
        ("1234.56", 123456),
        ("-1234.56", -123456),
        ("8000", 800000),
        ("0.5", 50),
        ("1,234.56", 123456),
        ("1,234,567.00", 123456700),
        ("¥1,234.50", 123450),
        ("￥1,234.50", 123450),
        ("CNY 88.00", 8800),
        ("RMB88.00", 8800),
        ("88.00元", 8800),
        ("人民币 88.00", 8800),
        ("(12.00)", -1200),
        ("（12.00）", -1200),
        ("12.00-", -1200),
        ("-¥12.00", -1200),
        ("¥-12.00", -1200),
        ("+12.00", 1200),
        ("12.00 DR", -1200),
        ("12.00CR", 1200),
        ("−12.00", -1200),  # U+2212 minus sign
        ("１，２３４．５６", 123456),  # full-width
        ("1 234.56", 123456),
        ("1'234.56", 123456),
        ("1.234,56", 123456),  # continental
        ("12,5", 1250),
        ("12.500", 1250),  # a trailing zero beyond the fen is still exact
        (" 7.10 ", 710),
    ],
)
def test_amounts_become_signed_fen(raw: str, minor: int) -> None:
    assert parse_amount_minor(raw) == minor


@pytest.mark.parametrize("raw", ["", "   ", "-", "--", "—", "N/A"])
def test_blank_amounts_are_none(raw: str) -> None:
    assert parse_amount_minor(raw) is None


@pytest.mark.parametrize(
    "raw", ["12.345", "1,23,456.00", "abc", "12.00.00", "(-12.00)", "--12", "1e5", "¥", "12,345,6"]
)
def test_unreadable_amounts_raise(raw: str) -> None:
    with pytest.raises(AmountError):
        parse_amount_minor(raw)


@pytest.mark.parametrize(("minor", "text"), [(0, "0.00"), (5, "0.05"), (123456, "1,234.56"), (-100, "-1.00")])
def test_format_minor(minor: int, text: str) -> None:
    assert format_minor(minor) == text
