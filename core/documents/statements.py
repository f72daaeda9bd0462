"""Bank statements: the public entry points. Parsing lives in statement_csv / statement_text,
the checks in statement_checks; this module is what callers import."""

from core.documents.amounts import AmountError, format_minor, parse_amount_minor
from core.documents.statement_checks import (
    DEFAULT_SLACK_DAYS,
    DateRange,
    coverage_gaps,
    covered_range,
    covers_last_full_months,
    required_window,
    statement_red_flags,
)
from core.documents.statement_csv import DEFAULT_MAX_ROWS, parse_csv_statement
from core.documents.statement_model import (
    BalanceMismatch,
    ParsedStatement,
    StatementFormat,
    StatementParseError,
    Transaction,
)
from core.documents.statement_text import parse_text_statement

__all__ = [
    "DEFAULT_MAX_ROWS",
    "DEFAULT_SLACK_DAYS",
    "AmountError",
    "BalanceMismatch",
    "DateRange",
    "ParsedStatement",
    "StatementFormat",
    "StatementParseError",
    "Transaction",
    "coverage_gaps",
    "covered_range",
    "covers_last_full_months",
    "format_minor",
    "parse_amount_minor",
    "parse_csv_statement",
    "parse_text_statement",
    "required_window",
    "statement_red_flags",
]
