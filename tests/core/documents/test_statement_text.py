from datetime import date

import pytest

from core.documents.statements import (
    StatementFormat,
    StatementParseError,
    parse_text_statement,
)
from tests.core.documents import factories

CHINESE_PAGE = """\
中国示例银行 个人账户交易明细
账号：6222021234567890123   户名：张三
查询起止日期：2026年01月01日 至 2026年03月31日
打印日期：2026-04-02
交易日期 交易时间 摘要 交易金额 账户余额
期初余额 5,000.00
2026-01-10 09:12:01 工资 ACME +12,000.00 17,000.00
2026-01-11 12:30:00 美团外卖 -35.50 16,964.50
2026-02-10 09:12:01 工资 ACME +12,000.00 28,964.50
2026-03-05 18:00:00 房租 （3,000.00） 25,964.50
2026-03-10 09:12:01 工资 ACME ￥12,000.00 37,964.50
期末余额 37,964.50
第 1 页 共 1 页
"""


def test_chinese_statement_text() -> None:
    parsed = parse_text_statement(CHINESE_PAGE)
    assert parsed.source_format is StatementFormat.PDF_TEXT
    assert [t.amount_minor for t in parsed.transactions] == [
        1_200_000, -3_550, 1_200_000, -300_000, 1_200_000,
    ]  # fmt: skip
    assert [t.description for t in parsed.transactions][:2] == ["工资 ACME", "美团外卖"]
    assert parsed.transactions[1].source_row == 8
    assert (parsed.opening_balance_minor, parsed.closing_balance_minor) == (500_000, 3_796_450)
    assert parsed.balance_mismatches == ()
    assert (parsed.stated_period_start, parsed.stated_period_end) == (
        date(2026, 1, 1),
        date(2026, 3, 31),
    )
    assert all(t.counterparty is None for t in parsed.transactions)


def test_english_statement_text_with_day_first_dates_and_dr_marks() -> None:
    text = """\
Statement period 01/01/2026 to 31/03/2026
Date Description Amount Balance
Opening balance 100.00
02/01/2026 Card 4921 TESCO STORES 12.50 DR 87.50
15/01/2026 Transfer from 12345678 50.00 CR 137.50
03/02/2026 Direct debit (15.00) 122.50
"""
    parsed = parse_text_statement(text)
    assert [(t.date, t.amount_minor) for t in parsed.transactions] == [
        (date(2026, 1, 2), -1250),
        (date(2026, 1, 15), 5000),
        (date(2026, 2, 3), -1500),
    ]
    assert parsed.transactions[0].description == "Card 4921 TESCO STORES"
    assert parsed.balance_mismatches == ()


def test_lines_without_balance_are_transactions_too() -> None:
    parsed = parse_text_statement("2026-03-01 Coffee -5.00\n2026-03-02 Refund 5.00\n")
    assert [(t.amount_minor, t.balance_minor) for t in parsed.transactions] == [
        (-500, None),
        (500, None),
    ]


def test_text_balance_that_does_not_add_up_is_reported_by_line() -> None:
    rows = factories.make_rows(date(2026, 1, 1), date(2026, 3, 31))
    text = "\n".join(factories.statement_lines(factories.with_wrong_balance(rows, 5, 100_000)))
    parsed = parse_text_statement(text)
    (mismatch,) = parsed.balance_mismatches
    assert mismatch.row == 6
    assert mismatch.expected_minor - mismatch.found_minor == 100_000


def test_text_without_transactions_is_an_error() -> None:
    with pytest.raises(StatementParseError) as caught:
        parse_text_statement("Scanned image\nno text layer\n")
    assert caught.value.code == "STATEMENT_NO_TRANSACTIONS"
    assert "scanned" in caught.value.message_en
