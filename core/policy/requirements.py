"""Which documents an appeal needs, from ledger facts known before any document arrives."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from core.policy.inputs import DocumentType
from core.policy.model import Policy


class RequirementReason(StrEnum):
    ALWAYS = "always"
    REQUESTED_LIMIT_ABOVE_THRESHOLD = "requested_limit_above_threshold"
    NO_DECLARED_INCOME = "no_declared_income"
    WORST_DPD_ABOVE_THRESHOLD = "worst_dpd_12m_above_threshold"


class DocumentRequirement(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    document_type: DocumentType
    reasons: tuple[RequirementReason, ...]
    min_full_months: int | None = None  # bank statements: full calendar months to cover


def document_requirements(
    policy: Policy,
    *,
    requested_limit_minor: int,
    declared_monthly_income_minor: int | None,
    worst_dpd_12m: int,
) -> tuple[DocumentRequirement, ...]:
    """The documents to collect, each with why. Order is stable: statement, income, report."""
    docs = policy.documents
    out = [
        DocumentRequirement(
            document_type=DocumentType.BANK_STATEMENT,
            reasons=(RequirementReason.ALWAYS,),
            min_full_months=docs.bank_statement.min_full_months,
        )
    ]
    income_reasons: list[RequirementReason] = []
    if requested_limit_minor > docs.income_proof.required_above_requested_minor:
        income_reasons.append(RequirementReason.REQUESTED_LIMIT_ABOVE_THRESHOLD)
    if docs.income_proof.required_without_declared_income and declared_monthly_income_minor is None:
        income_reasons.append(RequirementReason.NO_DECLARED_INCOME)
    if income_reasons:
        out.append(
            DocumentRequirement(document_type=DocumentType.INCOME_PROOF, reasons=tuple(income_reasons))
        )
    if worst_dpd_12m > docs.credit_report.required_above_worst_dpd_12m:
        out.append(
            DocumentRequirement(
                document_type=DocumentType.CREDIT_REPORT,
                reasons=(RequirementReason.WORST_DPD_ABOVE_THRESHOLD,),
            )
        )
    return tuple(out)
