"""Realistic context for every customer notice, as the workflow passes it (workflows/appeal.py
`_notify`) plus what the notification service adds. Several variants per event where a
template branches. A template for an event missing here fails the rendering tests."""

from __future__ import annotations

from typing import Any

BASE: dict[str, Any] = {
    "customer_name": "Li Wei",
    "appeal_id": "3f2b8c1e-6a4d-4e5f-9b0a-7c1d2e3f4a5b",
    "account_id": "ACC-000123",
    "requested_limit_minor": 2_000_000,
}
ZH_NAME = {"customer_name": "李伟"}

_REASONS = [
    {
        "code": "RC_REPAYMENT_DELAY",
        "en": "Your longest repayment delay in the last 12 months weighs against restoring the limit.",
        "zh-CN": "您近12个月内最长的一次还款逾期不利于恢复额度。",
    },
    {
        "code": "RC_LATE_PAYMENTS",
        "en": "Some of your bills in the last 12 months were repaid late.",
        "zh-CN": "您近12个月有账单未按时还款。",
    },
    {
        "code": "RC_RECENT_LATE_PAYMENT",
        "en": "Your most recent late repayment was not long ago.",
        "zh-CN": "您最近一次逾期还款距今时间较短。",
    },
    {
        "code": "RC_ON_TIME_RATIO",
        "en": "Too few of your bills in the last 12 months were repaid on time.",
        "zh-CN": "您近12个月按时还款的账单比例偏低。",
    },
    {
        "code": "RC_SHORT_HISTORY",
        "en": "Your account with us has a short history.",
        "zh-CN": "您的账户开立时间较短，信用记录不足。",
    },
]

SAMPLES: dict[str, dict[str, dict[str, Any]]] = {
    "appeal_received": {
        "one_document": {"deadline_days": 7, "required": ["BANK_STATEMENT"]},
        "several": {"deadline_days": 1, "required": ["BANK_STATEMENT", "INCOME_PROOF", "CREDIT_REPORT"]},
    },
    "declined": {
        "automated_with_range": {
            "reasons": _REASONS,  # five: the notice shows the first four
            "automated": True,
            "score": 262,
            "score_min": 120,
            "score_max": 420,
            "human_review_days": 14,
            "decided_on": "2025-03-12",
            "cooldown_days": 30,
        },
        "automated_as_today": {
            "reasons": _REASONS[:2],
            "automated": True,
            "score": 262,
            "human_review_days": 14,
        },
        "reviewer": {
            "reasons": _REASONS[1:2],
            "automated": False,
            "score": None,
            "human_review_days": 0,
            "reapply_on": "2025-05-01",
            "data_sources": ["ACCOUNT_HISTORY", "UPLOADED_DOCUMENTS", "REVIEWER_ASSESSMENT"],
        },
    },
    "document_rejected": {
        "encrypted_pdf": {
            "doc_type": "BANK_STATEMENT",
            "reason_en": "This PDF is protected by a password. Please open it, save or print a copy "
            "without the password, and upload that copy.",
            "reason_zh": "该 PDF 设有打开密码。请打开文件后另存或打印一份不带密码的副本再上传。",
            "document_id": "d2c4e6f8-0a1b-4c3d-8e5f-6a7b8c9d0e1f",
        },
    },
    "documents_reminder": {
        "days_left": {"missing": ["BANK_STATEMENT", "INCOME_PROOF"], "days_left": 4},
        "one_day": {"missing": ["BANK_STATEMENT"], "days_left": 1},
        "today": {"missing": ["CREDIT_REPORT"], "days_left": 0},
    },
    "expired": {"plain": {}},
    "human_review_requested": {"plain": {}},
    "ineligible": {
        "overdue": {
            "reason": "An overdue balance of 1234.50 is still unpaid; repay it before appealing.",
            "reason_code": "overdue_balance_outstanding",
            "amount_owed_minor": 123_450,
        },
        "not_restricted": {
            "reason": "The limit of this account is neither frozen nor below its original limit, so there "
            "is nothing to restore.",
            "reason_code": "account_not_restricted",
            "amount_owed_minor": 0,
        },
    },
    "information_requested": {
        "with_note": {
            "missing": ["INCOME_PROOF", "EMPLOYMENT_PROOF"],
            "message": "Please include the payslips for January & February <2025>.",
        },
        "no_note": {"missing": ["CREDIT_REPORT"], "message": ""},
    },
    "limit_restored": {
        "full": {"new_limit_minor": 2_000_000, "partial": False, "original_limit_minor": 2_000_000},
        # Restored in full, to less than the original limit: may appeal again.
        "full_below_original": {
            "new_limit_minor": 2_000_000,
            "partial": False,
            "original_limit_minor": 2_500_000,
        },
        "partial": {"new_limit_minor": 1_200_000, "partial": True, "original_limit_minor": 2_500_000},
        "partial_with_reasons": {
            "new_limit_minor": 800_000,
            "partial": True,
            "partial_reasons": _REASONS[3:4],
            "original_limit_minor": 2_500_000,
        },
        "partial_original_unknown": {"new_limit_minor": 1_200_000, "partial": True},
    },
    "withdrawn": {"plain": {}},
}


def sample_contexts(event: str, locale: str) -> list[tuple[str, dict[str, Any]]]:
    """(variant, full context) for every variant of `event`; KeyError for an unknown event."""
    variants = SAMPLES[event]
    extra = ZH_NAME if locale == "zh-CN" else {}
    return [(name, {**BASE, **extra, **ctx}) for name, ctx in variants.items()]
