"""The automated check of the walking skeleton: the repayment record over 12 months.

Issue 4 replaces this with the versioned scorecard policy; the outcome shape stays.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from core.db.case_tables import Recommendation
from core.ledger.repayment import RepaymentRecord

RULE_ID = "repayment-record-v0"


@dataclass(frozen=True)
class RuleParameters:
    min_on_time_ratio: float
    max_worst_dpd: int


@dataclass(frozen=True)
class CheckOutcome:
    recommendation: Recommendation
    suggested_limit_minor: int
    reasons: list[dict[str, str]] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    rule_id: str = RULE_ID
    rule_hash: str = ""


def rule_hash(params: RuleParameters) -> str:
    return hashlib.sha256(
        json.dumps({"rule": RULE_ID, **asdict(params)}, sort_keys=True).encode()
    ).hexdigest()


def assess_repayment(
    record: RepaymentRecord,
    params: RuleParameters,
    *,
    original_limit_minor: int,
    requested_limit_minor: int,
) -> CheckOutcome:
    reasons: list[dict[str, str]] = []
    ratio = record.on_time_ratio
    if ratio is None:
        reasons.append(
            {
                "code": "no_repayment_history",
                "en": "No bills fell due in the last 12 months.",
                "zh-CN": "过去12个月没有到期账单。",
            }
        )
    elif ratio < params.min_on_time_ratio:
        reasons.append(
            {
                "code": "low_on_time_ratio",
                "en": f"{record.bills_on_time} of {record.bills_due} bills were paid on time.",
                "zh-CN": f"{record.bills_due}期账单中有{record.bills_on_time}期按时还款。",
            }
        )
    if record.worst_days_past_due > params.max_worst_dpd:
        reasons.append(
            {
                "code": "severe_delinquency",
                "en": f"A bill was {record.worst_days_past_due} days past due.",
                "zh-CN": f"曾有账单逾期{record.worst_days_past_due}天。",
            }
        )
    recommendation = Recommendation.MANUAL_REVIEW if reasons else Recommendation.AUTO_APPROVE
    return CheckOutcome(
        recommendation=recommendation,
        suggested_limit_minor=min(original_limit_minor, requested_limit_minor),
        reasons=reasons,
        inputs={
            "window_start": record.window_start.isoformat(),
            "window_end": record.window_end.isoformat(),
            "bills_due": record.bills_due,
            "bills_on_time": record.bills_on_time,
            "worst_days_past_due": record.worst_days_past_due,
            "original_limit_minor": original_limit_minor,
            "requested_limit_minor": requested_limit_minor,
            "parameters": asdict(params),
        },
        rule_hash=rule_hash(params),
    )
