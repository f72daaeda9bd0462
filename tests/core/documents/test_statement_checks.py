from datetime import date

import pytest

from core.documents.statements import (
    DateRange,
    coverage_gaps,
    covers_last_full_months,
    parse_csv_statement,
    required_window,
    statement_red_flags,
)
from core.documents.types import Severity
from tests.core.documents import factories

TODAY = date(2026, 4, 15)
ROWS = factories.make_rows(date(2026, 1, 1), date(2026, 3, 31))


def test_tampered_amount_is_caught_by_the_running_balance() -> None:
    tampered = factories.with_wrong_balance(ROWS, 10, 500_000)  # +5,000.00 on one row
    parsed = parse_csv_statement(factories.csv_statement_en(tampered))
    (mismatch,) = parsed.balance_mismatches
    assert mismatch.row == 12  # header is row 1, so the 11th transaction is row 12
    assert mismatch.found_minor - mismatch.expected_minor == -500_000
    (flag,) = statement_red_flags(parsed)
    assert flag.code == "STATEMENT_BALANCE_MISMATCH" and flag.severity is Severity.HIGH
    assert "row 12" in flag.explanation_en and "第 12 行" in flag.explanation_zh


def test_a_changed_balance_mismatches_on_its_row_and_the_next() -> None:
    rows = list(ROWS)
    r = rows[4]
    rows[4] = factories.Row(r.date, r.description, r.counterparty, r.amount_minor,
                            r.balance_minor + 1)  # fmt: skip
    parsed = parse_csv_statement(factories.csv_statement_en(rows))
    assert [m.row for m in parsed.balance_mismatches] == [6, 7]


def test_transactions_outside_the_printed_period_are_flagged() -> None:
    preamble = ["Statement period: 2026-02-01 to 2026-03-31"]
    parsed = parse_csv_statement(factories.csv_statement_en(ROWS, preamble=preamble))
    assert [f.code for f in statement_red_flags(parsed)] == ["STATEMENT_OUTSIDE_STATED_PERIOD"]


@pytest.mark.parametrize(
    ("today", "months", "window"),
    [
        (date(2026, 4, 15), 3, DateRange(date(2026, 1, 1), date(2026, 3, 31))),
        (date(2026, 4, 1), 3, DateRange(date(2026, 1, 1), date(2026, 3, 31))),
        (date(2026, 2, 28), 3, DateRange(date(2025, 11, 1), date(2026, 1, 31))),
        (date(2026, 3, 31), 1, DateRange(date(2026, 2, 1), date(2026, 2, 28))),
        (date(2026, 1, 5), 12, DateRange(date(2025, 1, 1), date(2025, 12, 31))),
    ],
)
def test_required_window_is_the_last_full_calendar_months(
    today: date, months: int, window: DateRange
) -> None:
    assert required_window(today, months) == window


def test_three_full_months_are_covered() -> None:
    parsed = parse_csv_statement(factories.csv_statement_en(ROWS))
    assert covers_last_full_months(parsed, 3, today=TODAY)
    assert coverage_gaps(parsed, 3, TODAY) == []


def test_two_months_do_not_cover_a_three_month_requirement() -> None:
    rows = factories.make_rows(date(2026, 2, 1), date(2026, 3, 31))
    parsed = parse_csv_statement(factories.csv_statement_en(rows))
    assert not covers_last_full_months(parsed, 3, today=TODAY)
    (gap,) = coverage_gaps(parsed, 3, TODAY)
    assert gap.start == date(2026, 1, 1)
    assert date(2026, 1, 20) <= gap.end < date(2026, 2, 1)  # January, less the slack
    assert covers_last_full_months(parsed, 2, today=TODAY)


def test_quiet_days_at_the_edges_are_tolerated_only_up_to_the_slack() -> None:
    rows = factories.make_rows(date(2026, 1, 6), date(2026, 3, 25))
    parsed = parse_csv_statement(factories.csv_statement_en(rows))
    assert parsed.period_start >= date(2026, 1, 6)
    assert covers_last_full_months(parsed, 3, today=TODAY)
    assert not covers_last_full_months(parsed, 3, today=TODAY, slack_days=0)


def test_printed_period_takes_precedence_over_transaction_dates() -> None:
    rows = factories.make_rows(date(2026, 1, 6), date(2026, 3, 25))
    short = ["Statement period: 2026-01-06 to 2026-03-25"]
    full = ["Statement period: 2026-01-01 to 2026-03-31"]
    short_parsed = parse_csv_statement(factories.csv_statement_en(rows, preamble=short))
    full_parsed = parse_csv_statement(factories.csv_statement_en(rows, preamble=full))
    assert coverage_gaps(short_parsed, 3, TODAY) == [
        DateRange(date(2026, 1, 1), date(2026, 1, 5)),
        DateRange(date(2026, 3, 26), date(2026, 3, 31)),
    ]
    assert covers_last_full_months(full_parsed, 3, today=TODAY)


def test_an_old_statement_covers_nothing_of_the_window() -> None:
    rows = factories.make_rows(date(2025, 1, 1), date(2025, 6, 30))
    parsed = parse_csv_statement(factories.csv_statement_en(rows))
    assert coverage_gaps(parsed, 3, TODAY) == [DateRange(date(2026, 1, 1), date(2026, 3, 31))]
