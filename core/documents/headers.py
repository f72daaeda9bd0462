"""Statement column headers in English and Chinese, and finding the header row under a preamble."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from enum import StrEnum
from typing import Final


class Role(StrEnum):
    DATE = "DATE"
    DESCRIPTION = "DESCRIPTION"
    COUNTERPARTY = "COUNTERPARTY"
    AMOUNT = "AMOUNT"  # one signed column
    CREDIT = "CREDIT"  # money in
    DEBIT = "DEBIT"  # money out
    BALANCE = "BALANCE"
    # A debit/credit marker beside an unsigned amount: 借/贷, 收/支, DR/CR.
    DIRECTION = "DIRECTION"


# Normalised spellings (see normalize_header), best first: when two columns claim one role, the
# earlier alias wins (so "Transaction Date" beats "Value Date").
HEADER_ALIASES: Final[dict[Role, tuple[str, ...]]] = {
    Role.DATE: (
        "date", "transactiondate", "transdate", "txndate", "tradedate", "postingdate",
        "postdate", "bookingdate", "valuedate",
        "交易日期", "记账日期", "日期", "交易时间", "入账日期", "记账时间", "交易日",
    ),
    Role.DESCRIPTION: (
        "description", "details", "narrative", "memo", "transactiondescription",
        "transactiondetails", "particulars", "reference",
        "摘要", "交易摘要", "备注", "用途", "附言", "交易说明", "交易类型",
    ),
    Role.COUNTERPARTY: (
        "counterparty", "payee", "payer", "payeepayer", "payerpayee", "beneficiary",
        "counterpartyname",
        "对方户名", "对方账户名称", "交易对方", "对方名称", "对方账户名", "对手户名", "对方",
    ),
    Role.AMOUNT: ("amount", "transactionamount", "交易金额", "金额", "发生额", "交易额"),
    Role.CREDIT: (
        "credit", "credits", "creditamount", "deposit", "deposits", "moneyin", "paidin",
        "收入", "存入", "贷方发生额", "收入金额", "贷方金额", "存入金额", "贷方",
    ),
    Role.DEBIT: (
        "debit", "debits", "debitamount", "withdrawal", "withdrawals", "moneyout", "paidout",
        "支出", "支取", "借方发生额", "支出金额", "借方金额", "支取金额", "借方",
    ),
    Role.BALANCE: (
        "balance", "runningbalance", "balanceafter", "ledgerbalance", "availablebalance",
        "余额", "账户余额", "交易后余额", "本次余额", "联机余额", "当前余额", "可用余额",
    ),
    Role.DIRECTION: (
        "drcr", "crdr", "debitcredit", "creditdebit", "借贷标志", "借贷方向", "借贷",
        "收支标志", "收支", "收支类型", "资金流向",
    ),
}  # fmt: skip

_ALIAS_INDEX: Final[dict[str, tuple[Role, int]]] = {
    alias: (role, rank) for role, aliases in HEADER_ALIASES.items() for rank, alias in enumerate(aliases)
}
# Units and notes in headers: "交易金额(元)", "Amount (CNY)", "余额【人民币】".
_BRACKETED: Final = re.compile(r"\(.*?\)|\[.*?\]|【.*?】|<.*?>")
_NOISE: Final = re.compile(r"[\s_\-./:*#]")
_UNITS: Final = re.compile(r"(cny|rmb|¥|元)$")

HEADER_SEARCH_ROWS: Final = 60


def normalize_header(cell: str) -> str:
    text = unicodedata.normalize("NFKC", cell).strip().lower()
    text = _NOISE.sub("", _BRACKETED.sub("", text)).lstrip("\ufeff")
    return _UNITS.sub("", text) or text


def role_of(cell: str) -> Role | None:
    hit = _ALIAS_INDEX.get(normalize_header(cell))
    return hit[0] if hit else None


def map_columns(row: Sequence[str]) -> dict[Role, int]:
    """Column index per role for one candidate header row (best alias wins, then leftmost)."""
    best: dict[Role, tuple[int, int]] = {}
    for index, cell in enumerate(row):
        hit = _ALIAS_INDEX.get(normalize_header(cell))
        if hit is None:
            continue
        role, rank = hit
        if role not in best or rank < best[role][0]:
            best[role] = (rank, index)
    return {role: index for role, (_, index) in best.items()}


def has_amount(columns: dict[Role, int]) -> bool:
    return Role.AMOUNT in columns or (Role.CREDIT in columns and Role.DEBIT in columns)
