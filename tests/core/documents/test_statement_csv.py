from datetime import date

import pytest

from core.documents.statements import (
    StatementFormat,
    StatementParseError,
    parse_csv_statement,
    statement_red_flags,
)
from tests.core.documents import factories

ROWS = factories.make_rows(date(2026, 1, 1), date(2026, 3, 31))
ROWS_ZH = factories.make_rows(date(2026, 1, 1), date(2026, 3, 31), chinese=True)


def amounts(data: bytes) -> list[int]:
    return [t.amount_minor for t in parse_csv_statement(data).transactions]


def test_english_export_round_trips() -> None:
    parsed = parse_csv_statement(factories.csv_statement_en(ROWS))
    assert parsed.source_format is StatementFormat.CSV
    assert [(t.date, t.description, t.counterparty, t.amount_minor, t.balance_minor)
            for t in parsed.transactions] == [
        (r.date, r.description, r.counterparty, r.amount_minor, r.balance_minor) for r in ROWS
    ]  # fmt: skip
    assert parsed.period_start == ROWS[0].date and parsed.period_end == ROWS[-1].date
    assert parsed.opening_balance_minor == ROWS[0].balance_minor - ROWS[0].amount_minor
    assert parsed.closing_balance_minor == ROWS[-1].balance_minor
    assert parsed.balance_mismatches == ()
    assert statement_red_flags(parsed) == []


@pytest.mark.parametrize("encoding", ["gb18030", "utf-8", "utf-8-sig"])
def test_chinese_export_with_preamble_totals_and_encodings(encoding: str) -> None:
    data = factories.csv_statement_zh(ROWS_ZH, encoding=encoding)
    parsed = parse_csv_statement(data)
    assert [t.amount_minor for t in parsed.transactions] == [r.amount_minor for r in ROWS_ZH]
    assert parsed.transactions[0].description in {
        "工资",
        "超市购物",
        "餐饮消费",
        "水电费",
        "交通出行",
    }
    assert {t.counterparty for t in parsed.transactions} >= {"ACME Ltd"}
    assert parsed.balance_mismatches == ()
    assert parsed.stated_period_start == ROWS_ZH[0].date
    assert parsed.stated_period_end == ROWS_ZH[-1].date  # "打印日期" is not mistaken for it


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters(delimiter: str) -> None:
    data = factories.csv_statement_en(ROWS[:5], delimiter=delimiter, split_columns=True)
    assert amounts(data) == [r.amount_minor for r in ROWS[:5]]


def test_split_money_in_and_out_columns() -> None:
    data = factories.csv_statement_en(ROWS[:8], split_columns=True)
    assert amounts(data) == [r.amount_minor for r in ROWS[:8]]


def test_newest_first_exports_are_put_oldest_first() -> None:
    parsed = parse_csv_statement(factories.csv_statement_en(ROWS, newest_first=True))
    assert [t.balance_minor for t in parsed.transactions] == [r.balance_minor for r in ROWS]
    assert parsed.balance_mismatches == ()
    assert parsed.transactions[0].source_row == len(ROWS) + 1  # rows still point at the file


def test_preamble_lines_before_the_header_are_skipped() -> None:
    preamble = [
        "Account name,J Smith",
        "Sort code,12-34-56",
        "Statement period: 01/01/2026 to 31/03/2026",
        "",
    ]
    data = factories.csv_statement_en(ROWS, preamble=preamble, date_format="%d/%m/%Y")
    parsed = parse_csv_statement(data)
    assert len(parsed.transactions) == len(ROWS)
    assert (parsed.stated_period_start, parsed.stated_period_end) == (
        date(2026, 1, 1),
        date(2026, 3, 31),
    )


def one_row_csv(headers: list[str], cells: list[str]) -> bytes:
    return (",".join(headers) + "\n" + ",".join(cells) + "\n").encode()


@pytest.mark.parametrize(
    "date_header", ["Date", "Transaction Date", "Posting Date", "交易日期", "记账日期", "日期",
                    "DATE", " transaction_date ", "交易日期(yyyymmdd)"],
)  # fmt: skip
def test_date_header_variants(date_header: str) -> None:
    parsed = parse_csv_statement(one_row_csv([date_header, "Amount"], ["2026-03-01", "5.00"]))
    assert parsed.transactions[0].date == date(2026, 3, 1)


@pytest.mark.parametrize(
    "header", ["Description", "Details", "Narrative", "Memo", "摘要", "交易摘要", "备注", "用途"]
)
def test_description_header_variants(header: str) -> None:
    parsed = parse_csv_statement(one_row_csv(["Date", header, "Amount"], ["2026-03-01", "Rent", "-5"]))
    assert parsed.transactions[0].description == "Rent"


@pytest.mark.parametrize("header", ["Counterparty", "Payee", "对方户名", "对方账户名称", "交易对方"])
def test_counterparty_header_variants(header: str) -> None:
    parsed = parse_csv_statement(one_row_csv(["Date", header, "Amount"], ["2026-03-01", "Li Si", "-5"]))
    assert parsed.transactions[0].counterparty == "Li Si"


@pytest.mark.parametrize("header", ["Amount", "交易金额", "金额", "Amount (CNY)", "交易金额（元）"])
def test_signed_amount_header_variants(header: str) -> None:
    assert amounts(one_row_csv(["Date", header], ["2026-03-01", "-5.00"])) == [-500]


@pytest.mark.parametrize(
    ("credit", "debit"),
    [("Credit", "Debit"), ("Deposit", "Withdrawal"), ("Money In", "Money Out"),
     ("Paid in", "Paid out"), ("收入", "支出"), ("存入", "支取"), ("贷方发生额", "借方发生额"),
     ("收入金额", "支出金额")],
)  # fmt: skip
def test_split_amount_header_variants(credit: str, debit: str) -> None:
    data = (f"Date,{credit},{debit}\n2026-03-01,100.00,\n2026-03-02,,30.00\n").encode()
    assert amounts(data) == [10000, -3000]


@pytest.mark.parametrize("header", ["Balance", "Running Balance", "余额", "账户余额"])
def test_balance_header_variants(header: str) -> None:
    data = one_row_csv(["Date", "Amount", header], ["2026-03-01", "-5.00", "95.00"])
    assert parse_csv_statement(data).transactions[0].balance_minor == 9500


@pytest.mark.parametrize(
    ("direction", "sign"), [("借", -1), ("贷", 1), ("支出", -1), ("收入", 1), ("DR", -1), ("CR", 1)]
)
def test_direction_column_signs_unsigned_amounts(direction: str, sign: int) -> None:
    data = one_row_csv(["交易日期", "交易金额", "借贷标志"], ["20260301", "12.00", direction])
    assert amounts(data) == [sign * 1200]


@pytest.mark.parametrize(
    ("cells", "day"),
    [
        (["01/03/2026", "15/03/2026"], [date(2026, 3, 1), date(2026, 3, 15)]),
        (["03/01/2026", "03/15/2026"], [date(2026, 3, 1), date(2026, 3, 15)]),
        (["2026/3/1", "2026/3/15"], [date(2026, 3, 1), date(2026, 3, 15)]),
        (["20260301", "20260315"], [date(2026, 3, 1), date(2026, 3, 15)]),
        (["2026年3月1日", "2026年3月15日"], [date(2026, 3, 1), date(2026, 3, 15)]),
    ],
)
def test_date_formats_resolved_per_column(cells: list[str], day: list[date]) -> None:
    data = ("Date,Amount\n" + "".join(f"{c},1.00\n" for c in cells)).encode()
    assert [t.date for t in parse_csv_statement(data).transactions] == day


def test_spreadsheet_text_guards_are_removed() -> None:
    data = one_row_csv(["Date", "Amount"], ['="2026-03-01"', "'12.00"])
    parsed = parse_csv_statement(data)
    assert parsed.transactions[0].date == date(2026, 3, 1)
    assert parsed.transactions[0].amount_minor == 1200


def test_opening_and_closing_rows_are_balances_not_transactions() -> None:
    data = (
        b"Date,Description,Amount,Balance\n"
        b",Opening balance,,100.00\n"
        b"2026-03-01,Coffee,-5.00,95.00\n"
        b"2026-03-02,Refund,10.00,105.00\n"
        b",Closing balance,,105.00\n"
    )
    parsed = parse_csv_statement(data)
    assert len(parsed.transactions) == 2
    assert (parsed.opening_balance_minor, parsed.closing_balance_minor) == (10000, 10500)
    assert parsed.balance_mismatches == ()


def test_closing_row_that_does_not_add_up_is_a_mismatch() -> None:
    data = (
        b"Date,Description,Amount,Balance\n"
        b",Opening balance,,100.00\n"
        b"2026-03-01,Coffee,-5.00,\n"
        b",Closing balance,,195.00\n"
    )
    (mismatch,) = parse_csv_statement(data).balance_mismatches
    assert (mismatch.row, mismatch.expected_minor, mismatch.found_minor) == (4, 9500, 19500)


def test_rows_with_a_date_but_no_amount_are_skipped_and_reported() -> None:
    data = b"Date,Description,Amount\n2026-03-01,Card blocked,\n2026-03-02,Coffee,-5.00\n"
    parsed = parse_csv_statement(data)
    assert len(parsed.transactions) == 1
    assert parsed.skipped_rows == (2,)


@pytest.mark.parametrize(
    ("data", "code", "row", "fragment"),
    [
        (b"", "STATEMENT_EMPTY", None, "empty"),
        (b"Name,Value\nfoo,bar\n", "STATEMENT_NO_DATE_COLUMN", None, "date column"),
        (b"Date,Description\n2026-03-01,x\n", "STATEMENT_NO_AMOUNT_COLUMN", None, "amount column"),
        (b"Date,Amount\n2026-03-01,1.00\nyesterday,2.00\n", "STATEMENT_BAD_DATE", 3, "yesterday"),
        (b"Date,Amount\n2026-02-30,1.00\n", "STATEMENT_BAD_DATE", 2, "2026-02-30"),
        (b"Date,Amount\n2026-03-01,ten yuan\n", "STATEMENT_BAD_AMOUNT", 2, "ten yuan"),
        (b"Date,Amount\n13/01/2026,1.00\n01/13/2026,1.00\n", "STATEMENT_MIXED_DATE_ORDER", None,
         "day/month"),
        (b"Date,Amount\n", "STATEMENT_NO_TRANSACTIONS", None, "any transactions"),
        (b"Date,Amount\n\xff\xfe\xfd\x80,1\n", "STATEMENT_ENCODING", None, "characters"),
    ],
)  # fmt: skip
def test_parse_errors_tell_the_customer_what_to_do(
    data: bytes, code: str, row: int | None, fragment: str
) -> None:
    with pytest.raises(StatementParseError) as caught:
        parse_csv_statement(data)
    error = caught.value
    assert (error.code, error.row) == (code, row)
    assert fragment in error.message_en
    assert error.message_zh and error.message_zh != error.message_en
    assert error.rejection.code == code


def test_row_limit() -> None:
    data = factories.csv_statement_en(ROWS)
    with pytest.raises(StatementParseError) as caught:
        parse_csv_statement(data, max_rows=10)
    assert caught.value.code == "STATEMENT_TOO_MANY_ROWS"


def test_ten_thousand_rows_parse() -> None:
    # How fast is measured side by side in bench/documents_bench.py, not asserted here.
    data = factories.csv_statement_en(factories.many_rows(10_000))
    parsed = parse_csv_statement(data)
    assert len(parsed.transactions) == 10_000 and parsed.balance_mismatches == ()
