"""Search attributes (docs/architecture.md section 7): IDs only, no personal data."""

from temporalio.common import SearchAttributeKey

APPEAL_STATUS = SearchAttributeKey.for_keyword("AppealStatus")
APPEAL_RISK_TIER = SearchAttributeKey.for_keyword("AppealRiskTier")
APPEAL_REVIEWER = SearchAttributeKey.for_keyword("AppealReviewer")
APPEAL_SLA_DUE_AT = SearchAttributeKey.for_datetime("AppealSlaDueAt")
APPEAL_CUSTOMER_ID = SearchAttributeKey.for_keyword("AppealCustomerId")

ALL_KEYS = (APPEAL_STATUS, APPEAL_RISK_TIER, APPEAL_REVIEWER, APPEAL_SLA_DUE_AT, APPEAL_CUSTOMER_ID)
