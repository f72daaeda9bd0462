"""Policy and scoring for limit-restore appeals: pure, deterministic, explainable.

Load a policy with `load_default_policy()` (or `load_policy(path)`), score an
`AssessmentInput` with `assess(loaded, inp)`, show it with `explain(result)`, and check a stored
result with `reproduce(loaded, result)`, which raises `ReproductionError` if it drifted.
"""

from core.policy.characteristics import Characteristics, compute_characteristics
from core.policy.explain import ReproductionError, explain, format_minor, reproduce
from core.policy.inputs import (
    Account,
    AccountStatus,
    AssessmentInput,
    Bill,
    Customer,
    DocumentType,
    LoanApplication,
    RedFlag,
    StatementTransaction,
)
from core.policy.loader import (
    LoadedPolicy,
    default_policy_path,
    load_default_policy,
    load_policy,
    load_policy_bytes,
)
from core.policy.model import (
    KnockoutAction,
    Policy,
    PolicyError,
    PolicyIssue,
    Recommendation,
    RiskTier,
)
from core.policy.requirements import DocumentRequirement, document_requirements
from core.policy.scorecard import (
    Assessment,
    Contribution,
    KnockoutHit,
    LimitSizing,
    Reason,
    Route,
    assess,
    requires_four_eyes,
)

__all__ = [
    "Account",
    "AccountStatus",
    "Assessment",
    "AssessmentInput",
    "Bill",
    "Characteristics",
    "Contribution",
    "Customer",
    "DocumentRequirement",
    "DocumentType",
    "KnockoutAction",
    "KnockoutHit",
    "LimitSizing",
    "LoadedPolicy",
    "LoanApplication",
    "Policy",
    "PolicyError",
    "PolicyIssue",
    "Reason",
    "Recommendation",
    "RedFlag",
    "ReproductionError",
    "RiskTier",
    "Route",
    "StatementTransaction",
    "assess",
    "compute_characteristics",
    "default_policy_path",
    "document_requirements",
    "explain",
    "format_minor",
    "load_default_policy",
    "load_policy",
    "load_policy_bytes",
    "reproduce",
    "requires_four_eyes",
]
