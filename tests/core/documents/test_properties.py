"""Property tests: what must hold for any amount and any consistent statement."""

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from core.documents.amounts import format_minor, parse_amount_minor
from core.documents.statements import parse_csv_statement, parse_text_statement
from tests.core.documents import factories

minor_amounts = st.integers(min_value=-(10**13), max_value=10**13)


@given(minor_amounts)
def test_formatted_amounts_parse_back(minor: int) -> None:
    assert parse_amount_minor(format_minor(minor)) == minor


@given(minor_amounts, st.sampled_from(["¥{}", "{} CNY", "RMB{}"]))
def test_currency_markers_do_not_change_the_value(minor: int, template: str) -> None:
    assert parse_amount_minor(template.format(format_minor(minor))) == minor


statements = st.lists(
    st.tuples(st.integers(0, 3), st.integers(-5_000_000, 5_000_000).filter(lambda a: a != 0)),
    min_size=1,
    max_size=40,
)


def build_rows(steps: list[tuple[int, int]]) -> list[factories.Row]:
    rows, day, balance = [], date(2026, 1, 1), 1_000_000
    for gap, amount in steps:
        day += timedelta(days=gap)
        balance += amount
        rows.append(factories.Row(day, "Shop", "Someone", amount, balance))
    return rows


@settings(max_examples=60, deadline=None)
@given(statements, st.booleans(), st.booleans())
def test_consistent_statements_reconcile_in_any_layout(
    steps: list[tuple[int, int]], split: bool, newest_first: bool
) -> None:
    rows = build_rows(steps)
    data = factories.csv_statement_en(rows, split_columns=split, newest_first=newest_first)
    parsed = parse_csv_statement(data)
    assert parsed.balance_mismatches == ()
    assert sorted(t.amount_minor for t in parsed.transactions) == sorted(r.amount_minor for r in rows)
    assert parsed.closing_balance_minor == rows[-1].balance_minor


@settings(max_examples=60, deadline=None)
@given(statements, st.integers(0, 39), st.integers(1, 10**6))
def test_any_single_changed_amount_is_detected(steps: list[tuple[int, int]], index: int, delta: int) -> None:
    rows = build_rows(steps)
    index %= len(rows)
    if index == 0:
        return  # the first row's amount only shifts the derived opening balance
    text = "\n".join(factories.statement_lines(factories.with_wrong_balance(rows, index, delta)))
    parsed = parse_text_statement(text)
    assert [m.row for m in parsed.balance_mismatches] == [index + 1]
