"""The status reason in the reader's language: policy codes become their text, codes kept."""

from __future__ import annotations

import pytest

from core.appeals.status_reason import localize_status_reason, reader_locale
from core.policy.loader import load_default_policy

REASONS = load_default_policy().policy.reasons


def test_one_code_in_each_language() -> None:
    zh = localize_status_reason("RC_LATE_PAYMENTS", "zh-CN", REASONS)
    assert zh.text == "您近12个月有账单未按时还款。" and zh.codes == ["RC_LATE_PAYMENTS"]
    en = localize_status_reason("RC_LATE_PAYMENTS", "en", REASONS)
    assert en.text == "Some of your bills in the last 12 months were repaid late."


def test_several_codes_joined_by_the_workflow() -> None:
    raw = "RC_LATE_PAYMENTS; RC_RECENT_LATE_PAYMENT"
    zh = localize_status_reason(raw, "zh-CN", REASONS)
    assert zh.codes == ["RC_LATE_PAYMENTS", "RC_RECENT_LATE_PAYMENT"]
    assert zh.text == "您近12个月有账单未按时还款。您最近一次逾期还款距今时间较短。"
    en = localize_status_reason(raw, "en-GB", REASONS)
    assert en.text == (
        "Some of your bills in the last 12 months were repaid late. "
        "Your most recent late repayment was not long ago."
    )


@pytest.mark.parametrize(
    "raw",
    [
        "An overdue balance of 12.34 is still unpaid; repay it before appealing.",
        "The document deadline passed.",
        "RC_LATE_PAYMENTS; not a code",
        "credit-line API refused (409): limit locked",
    ],
)
def test_anything_else_is_shown_as_written_without_codes(raw: str) -> None:
    reason = localize_status_reason(raw, "zh-CN", REASONS)
    assert reason.text == raw and reason.codes == []


@pytest.mark.parametrize("raw", [None, "", "  "])
def test_no_reason(raw: str | None) -> None:
    reason = localize_status_reason(raw, "en", REASONS)
    assert not reason.text and reason.codes == []


@pytest.mark.parametrize(
    ("customer_locale", "accept_language", "is_customer", "expected"),
    [
        ("zh-CN", None, True, "zh-CN"),
        ("zh-CN", "en-US,en;q=0.9", True, "zh-CN"),  # a customer reads their own locale
        ("en", "zh-CN", True, "en"),
        (None, None, True, "en"),
        (None, None, False, "en"),  # staff: English by default
        (None, "zh-CN,zh;q=0.9,en;q=0.8", False, "zh-CN"),
        (None, "zh-TW", False, "zh-CN"),
        (None, "en;q=0.9, zh;q=0.95", False, "zh-CN"),  # by quality, not by position
        (None, "fr-FR, zh;q=0.5", False, "zh-CN"),  # the first supported one
        (None, "zh;q=0, en", False, "en"),  # q=0: not acceptable
        (None, "de, fr", False, "en"),
        (None, "garbage;;q=x,", False, "en"),
    ],
)
def test_reader_locale(
    customer_locale: str | None, accept_language: str | None, is_customer: bool, expected: str
) -> None:
    assert (
        reader_locale(
            customer_locale=customer_locale, accept_language=accept_language, is_customer=is_customer
        )
        == expected
    )


def test_an_ineligibility_reads_in_the_readers_language_with_the_amount_owed() -> None:
    zh = localize_status_reason("overdue_balance_outstanding", "zh-CN", REASONS, amount_owed_minor=123_450)
    assert zh.codes == ["overdue_balance_outstanding"]
    assert zh.text == "您仍有逾期欠款 ¥1,234.50 未还清，请还清后再申诉。"
    en = localize_status_reason("overdue_balance_outstanding", "en", REASONS, amount_owed_minor=123_450)
    assert en.text == "An overdue balance of ¥1,234.50 is still unpaid; repay it before appealing."
    nothing = localize_status_reason("account_not_restricted", "zh-CN", REASONS)
    assert nothing.text == "该账户额度既未被冻结，也不低于原始额度，无需恢复。"
    assert nothing.codes == ["account_not_restricted"]


def test_a_passed_deadline_reads_in_the_readers_language() -> None:
    assert localize_status_reason("document_deadline_passed", "zh-CN", REASONS).text == "提交材料的期限已过。"
    assert localize_status_reason("document_deadline_passed", "en", REASONS).text == (
        "The document deadline passed."
    )
