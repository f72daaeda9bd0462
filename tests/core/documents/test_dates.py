from datetime import date

import pytest

from core.documents.dates import (
    DateOrderError,
    RawDate,
    decide_day_first,
    find_dates,
    read_date,
    to_date,
)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2026-03-01", date(2026, 3, 1)),
        ("2026/3/1", date(2026, 3, 1)),
        ("2026.03.01", date(2026, 3, 1)),
        ("20260301", date(2026, 3, 1)),
        ("2026年3月1日", date(2026, 3, 1)),
        ("2026年03月01", date(2026, 3, 1)),
        ("２０２６－０３－０１", date(2026, 3, 1)),
        ("2026-03-01 10:22:33", date(2026, 3, 1)),
        ("2026-03-01T10:22:33+08:00", date(2026, 3, 1)),
        ("01 Mar 2026", date(2026, 3, 1)),
        ("1-Mar-2026", date(2026, 3, 1)),
        ("01Mar2026", date(2026, 3, 1)),
        ("March 1, 2026", date(2026, 3, 1)),
        ("Sept 30 2026", date(2026, 9, 30)),
        ("13/03/2026", date(2026, 3, 13)),  # nn/nn/yyyy read day-first by default
    ],
)
def test_single_date_forms(cell: str, expected: date) -> None:
    raw = read_date(cell)
    assert raw is not None
    assert to_date(raw, day_first=True) == expected


@pytest.mark.parametrize("cell", ["", "Salary", "2026-13", "12345678901", "1 Foo 2026", "3/1"])
def test_non_dates(cell: str) -> None:
    assert read_date(cell) is None


def test_impossible_calendar_dates_do_not_convert() -> None:
    raw = read_date("2026-02-30")
    assert raw is not None and to_date(raw, True) is None


def column(*cells: str) -> list[RawDate]:
    raws = [r for r in map(read_date, cells) if r is not None]
    assert len(raws) == len(cells)
    return raws


@pytest.mark.parametrize(
    ("cells", "day_first"),
    [
        (("01/03/2026", "15/03/2026"), True),  # 15 cannot be a month
        (("03/01/2026", "03/15/2026"), False),  # 15 cannot be a month, second position
        # Undecidable by value: day-first keeps 1 Feb .. 1 Mar .. 1 Apr in order, month-first
        # would read Jan 2, Jan 3, Jan 4 which is in order too -> default day-first.
        (("01/02/2026", "01/03/2026", "01/04/2026"), True),
        # Only month-first is in date order (Jan 5, Feb 3, Feb 10; day-first would be
        # 1 May, 2 Mar, 2 Oct): it wins.
        (("01/05/2026", "02/03/2026", "02/10/2026"), False),
        (("2026-03-01", "2026-03-02"), True),  # no ambiguous value at all
    ],
)
def test_column_decides_day_or_month_first(cells: tuple[str, ...], day_first: bool) -> None:
    assert decide_day_first(column(*cells)) is day_first


def test_column_with_both_orders_is_an_error() -> None:
    with pytest.raises(DateOrderError):
        decide_day_first(column("13/01/2026", "01/13/2026"))


def test_find_dates_skips_digits_inside_account_numbers() -> None:
    text = "账号 6222021234567890123 起止日期 20260101 至 20260331"
    assert [to_date(r, True) for r in find_dates(text)] == [date(2026, 1, 1), date(2026, 3, 31)]
