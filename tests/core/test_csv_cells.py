"""core/csv_cells.py: spreadsheet-safe text cells and their exact way back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from core.csv_cells import neutralise, restore


def test_formula_starts_are_quoted() -> None:
    for text in ("=1+1", "+86 138", "-5", "@SUM(A1)", "\t=1", "\r=1"):
        assert neutralise(text) == "'" + text
    for text in ("Li Wei", "王芳", "", "5-3", "a=b", "'quoted"):
        assert neutralise(text) == text
    assert neutralise("'=1") == "''=1" and neutralise("''@x") == "'''@x"


@given(st.text())
def test_restore_gives_back_what_was_neutralised(text: str) -> None:
    cell = neutralise(text)
    assert restore(cell) == text
    assert not cell or cell[0] not in "=+-@\t\r"
