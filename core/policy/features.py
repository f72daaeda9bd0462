"""The feature library: characteristics this service computes from the ledger and an appeal's
documents, which a policy's scorecard and knock-outs pick from by name (`source =
"feature:NAME"`). How each is computed: `core/policy/characteristics.py`.

A policy may also score fields supplied with the snapshot (`source = "input:FIELD"`), which need
no entry here; see docs/scorecards.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CharacteristicName(StrEnum):
    """Every feature `characteristics.compute_characteristics` produces."""

    # credit record
    WORST_DPD_12M = "worst_dpd_12m"
    LATE_BILLS_12M = "late_bills_12m"
    MONTHS_SINCE_LAST_LATE = "months_since_last_late"
    ON_TIME_RATIO_12M = "on_time_ratio_12m"
    ACCOUNT_AGE_MONTHS = "account_age_months"
    ACTIVE_MONTHS_6M = "active_months_6m"
    OTHER_CREDIT_PRODUCTS = "other_credit_products"
    # consumption behaviour
    SMALL_LOAN_APPS_90D = "small_loan_apps_90d"
    OVERDUE_RECORDS_24M = "overdue_records_24m"
    SPENDING_TO_INCOME = "spending_to_income"
    # repayment ability
    NET_MONTHLY_INCOME_MINOR = "net_monthly_income_minor"
    INCOME_STABILITY_CV = "income_stability_cv"
    DEBT_TO_INCOME = "debt_to_income"
    EMPLOYMENT_VERIFIED = "employment_verified"
    # gates (knock-outs)
    OVERDUE_BILLS_NOW = "overdue_bills_now"
    ACCOUNT_CLOSED = "account_closed"
    RED_FLAG_COUNT = "red_flag_count"
    MISSING_DOCUMENT_COUNT = "missing_document_count"
    STATEMENT_MONTHS_COVERED = "statement_months_covered"
    # risk monitoring (limit actions)
    MAX_DPD_NOW = "max_dpd_now"
    SMALL_LOAN_APPS_30D = "small_loan_apps_30d"


@dataclass(frozen=True, slots=True)
class Feature:
    name: CharacteristicName
    group: str
    meaning: str
    nullable: bool = False  # can be missing: a scorecard entry needs missing_points
    # Computed from documents an appeal collects: unknown where only the ledger is read (the
    # portfolio review, limit actions).
    needs_documents: bool = False


_N = CharacteristicName
FEATURES: dict[str, Feature] = {
    f.name.value: f
    for f in (
        Feature(
            _N.WORST_DPD_12M, "credit record", "longest days past due of a bill due in the last 12 months"
        ),
        Feature(_N.LATE_BILLS_12M, "credit record", "bills due in the last 12 months that were late"),
        Feature(
            _N.MONTHS_SINCE_LAST_LATE,
            "credit record",
            "whole months since the due date of the latest late bill (missing: never late)",
            nullable=True,
        ),
        Feature(
            _N.ON_TIME_RATIO_12M,
            "credit record",
            "share of the last 12 months' bills repaid on time (missing: no bills)",
            nullable=True,
        ),
        Feature(_N.ACCOUNT_AGE_MONTHS, "credit record", "whole months since the account was opened"),
        Feature(
            _N.ACTIVE_MONTHS_6M, "credit record", "of the last 6 months, those with a bill or a transaction"
        ),
        Feature(
            _N.OTHER_CREDIT_PRODUCTS,
            "credit record",
            "credit products at other lenders, from a credit report (missing: no report)",
            nullable=True,
        ),
        Feature(_N.SMALL_LOAN_APPS_90D, "consumption", "small-loan applications at other lenders in 90 days"),
        Feature(_N.OVERDUE_RECORDS_24M, "consumption", "late bills in the last 24 months"),
        Feature(
            _N.SPENDING_TO_INCOME,
            "consumption",
            "monthly spending / verified monthly income (missing: no verified income)",
            nullable=True,
            needs_documents=True,
        ),
        Feature(
            _N.NET_MONTHLY_INCOME_MINOR,
            "repayment ability",
            "verified monthly income in minor units: statement payroll, or declared with proof",
            nullable=True,
            needs_documents=True,
        ),
        Feature(
            _N.INCOME_STABILITY_CV,
            "repayment ability",
            "coefficient of variation of monthly payroll (missing: no payroll found)",
            nullable=True,
            needs_documents=True,
        ),
        Feature(
            _N.DEBT_TO_INCOME,
            "repayment ability",
            "(debt service + the restored limit's minimum payment) / income (missing: no income)",
            nullable=True,
            needs_documents=True,
        ),
        Feature(
            _N.EMPLOYMENT_VERIFIED,
            "repayment ability",
            "1 when the employer is confirmed, else 0",
            needs_documents=True,
        ),
        Feature(_N.OVERDUE_BILLS_NOW, "gate", "bills past due and not fully paid today"),
        Feature(_N.ACCOUNT_CLOSED, "gate", "1 when the account is closed"),
        Feature(_N.RED_FLAG_COUNT, "gate", "red flags raised by document verification", needs_documents=True),
        Feature(_N.MISSING_DOCUMENT_COUNT, "gate", "required documents not accepted", needs_documents=True),
        Feature(
            _N.STATEMENT_MONTHS_COVERED,
            "gate",
            "full calendar months the bank statement covers",
            needs_documents=True,
        ),
        Feature(_N.MAX_DPD_NOW, "risk monitoring", "largest days past due among bills overdue today"),
        Feature(
            _N.SMALL_LOAN_APPS_30D, "risk monitoring", "small-loan applications at other lenders in 30 days"
        ),
    )
}
