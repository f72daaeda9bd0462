"""Running-balance reconciliation, statement red flags and period coverage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from core.documents.amounts import format_minor
from core.documents.statement_model import BalanceMismatch, ParsedStatement, Transaction
from core.documents.types import RedFlag, Severity
from core.months import DateRange, full_calendar_months_range

# When the period is inferred from transaction dates, a quiet first or last week of a month
# leaves no transactions; a printed statement period needs no such allowance.
DEFAULT_SLACK_DAYS: Final = 7
_MISMATCHES_SHOWN: Final = 3


@dataclass(frozen=True, slots=True)
class Reconciliation:
    transactions: tuple[Transaction, ...]  # oldest first
    mismatches: tuple[BalanceMismatch, ...]
    opening_minor: int | None
    closing_minor: int | None


def reconcile(
    rows: list[Transaction],
    stated_opening: int | None = None,
    stated_closing: tuple[int, int] | None = None,
) -> Reconciliation:
    """Put rows oldest first and check each shown balance against the previous one plus amount.

    Source order is decided by the dates (banks export newest-first as often as oldest-first);
    when first and last dates are equal, by whichever order leaves fewer mismatches.
    `stated_closing` is (row, balance) of a "closing balance" line, checked like a transaction.
    """
    if rows and rows[0].date > rows[-1].date:
        ordered = rows[::-1]
    elif rows and rows[0].date == rows[-1].date:
        forward = _check(rows, stated_opening, stated_closing)
        backward = _check(rows[::-1], stated_opening, stated_closing)
        ordered = rows[::-1] if len(backward[0]) < len(forward[0]) else rows
    else:
        ordered = rows
    mismatches, opening, closing = _check(ordered, stated_opening, stated_closing)
    return Reconciliation(tuple(ordered), tuple(sorted(mismatches, key=lambda m: m.row)), opening, closing)


def _check(
    rows: list[Transaction], opening: int | None, stated_closing: tuple[int, int] | None
) -> tuple[list[BalanceMismatch], int | None, int | None]:
    mismatches: list[BalanceMismatch] = []
    running = opening
    total_before_first_balance = 0
    for tx in rows:
        if running is None:
            total_before_first_balance += tx.amount_minor
            if tx.balance_minor is not None:
                running = tx.balance_minor
                opening = tx.balance_minor - total_before_first_balance
            continue
        running += tx.amount_minor
        if tx.balance_minor is not None and tx.balance_minor != running:
            mismatches.append(BalanceMismatch(tx.source_row, running, tx.balance_minor))
            # Continue from the stated figure, so one altered amount is one mismatch, not many.
            running = tx.balance_minor
    if stated_closing is not None:
        row, closing = stated_closing
        if running is not None and running != closing:
            mismatches.append(BalanceMismatch(row, running, closing))
        return mismatches, opening, closing
    return mismatches, opening, running


def statement_red_flags(parsed: ParsedStatement) -> list[RedFlag]:
    flags: list[RedFlag] = []
    if parsed.balance_mismatches:
        flags.append(_balance_flag(parsed.balance_mismatches))
    outside = _outside_stated_period(parsed)
    if outside:
        flags.append(
            RedFlag(
                code="STATEMENT_OUTSIDE_STATED_PERIOD",
                severity=Severity.MEDIUM,
                explanation_en=(
                    f"{len(outside)} transaction(s) are dated outside the period printed on the "
                    f"statement (first: row {outside[0].source_row}, {outside[0].date})."
                ),
                explanation_zh=(
                    f"有 {len(outside)} 笔交易的日期超出对账单上注明的期间"
                    f"（第一笔：第 {outside[0].source_row} 行，{outside[0].date}）。"
                ),
            )
        )
    return flags


def _balance_flag(mismatches: tuple[BalanceMismatch, ...]) -> RedFlag:
    shown = mismatches[:_MISMATCHES_SHOWN]
    en = "; ".join(
        f"row {m.row}: expected {format_minor(m.expected_minor)}, "
        f"statement shows {format_minor(m.found_minor)}"
        for m in shown
    )
    zh = "；".join(
        f"第 {m.row} 行：应为 {format_minor(m.expected_minor)}，对账单显示 {format_minor(m.found_minor)}"
        for m in shown
    )
    more = len(mismatches) - len(shown)
    return RedFlag(
        code="STATEMENT_BALANCE_MISMATCH",
        severity=Severity.HIGH,
        explanation_en=(
            f"In {len(mismatches)} row(s) the balance is not the previous balance plus the "
            f"transaction amount ({en}{f'; and {more} more' if more else ''}). A bank's own "
            "statement always adds up, so amounts or balances may have been changed."
        ),
        explanation_zh=(
            f"有 {len(mismatches)} 行的余额不等于上一行余额加本笔金额（{zh}"
            f"{f'；另有 {more} 行' if more else ''}）。银行出具的对账单余额必然连续，"
            "金额或余额可能被改动过。"
        ),
    )


def _outside_stated_period(parsed: ParsedStatement) -> list[Transaction]:
    start, end = parsed.stated_period_start, parsed.stated_period_end
    if start is None or end is None:
        return []
    return [tx for tx in parsed.transactions if not start <= tx.date <= end]


def required_window(today: date, months: int) -> DateRange:
    """The last `months` full calendar months before `today`'s month."""
    return full_calendar_months_range(today, months)


def covered_range(parsed: ParsedStatement, slack_days: int = DEFAULT_SLACK_DAYS) -> DateRange:
    """The printed period when there is one, else first to last transaction widened by slack."""
    if parsed.stated_period_start is not None and parsed.stated_period_end is not None:
        return DateRange(parsed.stated_period_start, parsed.stated_period_end)
    slack = timedelta(days=slack_days)
    return DateRange(parsed.period_start - slack, parsed.period_end + slack)


def coverage_gaps(
    parsed: ParsedStatement,
    required_months: int,
    today: date,
    *,
    slack_days: int = DEFAULT_SLACK_DAYS,
) -> list[DateRange]:
    """Parts of the last `required_months` full months that the statement does not cover."""
    window = required_window(today, required_months)
    covered = covered_range(parsed, slack_days)
    if covered.end < window.start or covered.start > window.end:
        return [window]
    gaps: list[DateRange] = []
    if covered.start > window.start:
        gaps.append(DateRange(window.start, covered.start - timedelta(days=1)))
    if covered.end < window.end:
        gaps.append(DateRange(covered.end + timedelta(days=1), window.end))
    return gaps


def covers_last_full_months(
    parsed: ParsedStatement,
    months: int = 3,
    *,
    today: date,
    slack_days: int = DEFAULT_SLACK_DAYS,
) -> bool:
    return not coverage_gaps(parsed, months, today, slack_days=slack_days)
