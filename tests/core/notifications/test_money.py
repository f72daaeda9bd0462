"""Amounts as people read them: yuan with thousands separators, the sign before the symbol."""

from __future__ import annotations

import pytest

from core.notifications.rendering import format_money, format_money_code


@pytest.mark.parametrize(
    ("minor", "shown", "coded"),
    [
        (0, "¥0.00", "CNY 0.00"),
        (5, "¥0.05", "CNY 0.05"),
        (12_345_678, "¥123,456.78", "CNY 123,456.78"),
        (-35_953, "-¥359.53", "-CNY 359.53"),
        (-1, "-¥0.01", "-CNY 0.01"),
    ],
)
def test_money(minor: int, shown: str, coded: str) -> None:
    assert format_money(minor) == shown
    assert format_money_code(minor) == coded
