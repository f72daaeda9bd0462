"""Amounts typed in yuan on the portal's forms become fen through Decimal, never a float."""

from __future__ import annotations

import pytest

from api.pages.portal import parse_yuan


def test_yuan_are_parsed_without_floats() -> None:
    assert parse_yuan("6000") == 600_000
    assert parse_yuan(" ¥6,000.5 ") == 600_050
    assert parse_yuan("0.01") == 1
    assert parse_yuan("19999999.99") == 1_999_999_999
    for text, code in (("", "limit_missing"), ("1e5", "limit_invalid"), ("6000.123", "limit_invalid")):
        with pytest.raises(ValueError, match=code):
            parse_yuan(text)
    with pytest.raises(ValueError, match="limit_zero"):
        parse_yuan("0.00")
