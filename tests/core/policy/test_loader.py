from __future__ import annotations

import hashlib
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from core.policy import (
    LoadedPolicy,
    PolicyError,
    RiskTier,
    default_policy_path,
    load_policy,
    load_policy_bytes,
)

POLICY_TEXT = default_policy_path().read_text(encoding="utf-8")


def test_default_policy_loads_with_id_and_hash(policy: LoadedPolicy) -> None:
    assert default_policy_path().name == "limit-restore-v1.toml"
    assert default_policy_path().parent.name == "policy"
    assert policy.policy_id == "limit-restore-v1"
    assert policy.content_hash == hashlib.sha256(default_policy_path().read_bytes()).hexdigest()
    assert policy.source == str(default_policy_path())


def test_main_parameters(policy: LoadedPolicy) -> None:
    p = policy.policy
    assert p.cutoffs.auto_approve_min == 340
    assert p.cutoffs.auto_decline_below == 240
    assert (p.scorecard.min_score, p.scorecard.max_score) == (0, 460)
    assert [(b.tier, b.min_score) for b in p.risk_tiers] == [
        (RiskTier.LOW, 340),
        (RiskTier.MEDIUM, 280),
        (RiskTier.HIGH, 0),
    ]
    assert p.parameters.minimum_payment_ratio == Decimal("0.10")
    assert p.limit_sizing.rounding_unit_minor == 10_000
    assert p.four_eyes.min_amount_minor == 2_000_000
    assert p.review_due == timedelta(hours=24)
    assert p.sla.escalation_queue == "senior-review"
    assert p.collection_deadline == timedelta(days=7)
    assert p.reminder_offsets == (timedelta(days=3), timedelta(days=6))
    assert p.decline_cooldown == timedelta(days=30)
    assert p.human_review_window == timedelta(days=14)
    # Floats are read as exact decimals, not binary floats.
    on_time = p.characteristic("on_time_ratio_12m")
    assert on_time.bins[3].lower == Decimal("0.95")


def test_every_reason_has_both_languages(policy: LoadedPolicy) -> None:
    for code, text in policy.policy.reasons.items():
        assert text.en and text.zh_cn, code


def test_hash_is_of_exact_bytes() -> None:
    data = POLICY_TEXT.encode()
    a = load_policy_bytes(data)
    b = load_policy_bytes(data + b"\n# a comment is a change too\n")
    assert a.policy == b.policy
    assert a.content_hash != b.content_hash


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    assert POLICY_TEXT.count(old) == 1, f"fixture text not unique: {old!r}"
    path = tmp_path / "broken.toml"
    path.write_text(POLICY_TEXT.replace(old, new), encoding="utf-8")
    return path


# (old text, new text, expected first issue "path: message" (prefix))
BROKEN_VARIANTS = [
    pytest.param(
        "{ lower = 3, upper = 6, points = 10 },",
        "{ lower = 3, upper = 3, points = 10 },",
        "scorecard.characteristics[2].bins[1].upper: must be greater than lower",
        id="bin-upper-not-above-lower",
    ),
    pytest.param(
        "{ lower = 8, upper = 31, points = 30 },",
        "{ lower = 9, upper = 31, points = 30 },",
        "scorecard.characteristics[0].bins[2].lower: leaves a gap after the previous bin",
        id="bins-gap",
    ),
    pytest.param(
        "{ lower = 8, upper = 31, points = 30 },",
        "{ lower = 5, upper = 31, points = 30 },",
        "scorecard.characteristics[0].bins[2].lower: overlaps the previous bin",
        id="bins-overlap",
    ),
    pytest.param(
        "{ lower = 61, points = 0 },",
        "{ lower = 61, upper = 365, points = 0 },",
        "scorecard.characteristics[0].bins[4].upper: the last bin must be open-ended",
        id="last-bin-closed",
    ),
    pytest.param(
        "{ lower = 1, upper = 8, points = 45 },",
        "{ upper = 8, points = 45 },",
        "scorecard.characteristics[0].bins[1].lower: only the first bin may omit lower",
        id="inner-bin-open-below",
    ),
    pytest.param(
        "{ lower = 1, upper = 2, points = 30 },\n  { lower = 2, upper = 4, points = 15 },",
        "{ lower = 1, upper = 2, points = 30 },\n  { lower = 2, upper = 4, points = 35 },",
        "scorecard.characteristics[1].bins[2].points: must not exceed bins[1].points (30)",
        id="points-against-direction",
    ),
    pytest.param(
        "{ lower = 0, upper = 1, points = 40 },\n  { lower = 1, upper = 2, points = 30 },",
        '{ lower = 0, upper = 1, points = "forty" },\n  { lower = 1, upper = 2, points = 30 },',
        "scorecard.characteristics[1].bins[0].points: Input should be a valid decimal",
        id="points-not-a-number",
    ),
    pytest.param(
        'source = "feature:other_credit_products"',
        'source = "feature:credit_products"',
        "scorecard.characteristics[6].source: unknown feature 'credit_products'; known features: "
        "account_age_months,",
        id="unknown-characteristic",
    ),
    pytest.param(
        'name = "late_bills_12m"',
        'name = "worst_dpd_12m"',
        "scorecard.characteristics[1].name: duplicate characteristic 'worst_dpd_12m'",
        id="duplicate-characteristic",
    ),
    pytest.param(
        'reason = "RC_LOW_ACTIVITY"',
        'reason = "RC_NO_SUCH_REASON"',
        "scorecard.characteristics[5].reason: unknown reason code 'RC_NO_SUCH_REASON'",
        id="unknown-reason-in-scorecard",
    ),
    pytest.param(
        'reason = "RC_ACCOUNT_CLOSED"',
        'reason = "RC_CLOSED"',
        "knockouts[1].reason: unknown reason code 'RC_CLOSED'",
        id="unknown-reason-in-knockout",
    ),
    pytest.param(
        "at_least = 90\n",
        "at_least = 90\nbelow = 100\n",
        "knockouts[2]: set exactly one of at_least and below",
        id="knockout-two-thresholds",
    ),
    pytest.param(
        'characteristic = "small_loan_apps_90d"',
        'characteristic = "loan_apps"',
        "knockouts[3].characteristic: unknown feature 'loan_apps'; known features: account_age_months,",
        id="knockout-unknown-characteristic",
    ),
    pytest.param(
        "missing_points = 10  # no bills in the last 12 months\n",
        "",
        "scorecard.characteristics[3].missing_points: required",
        id="missing-points-required",
    ),
    pytest.param(
        "auto_decline_below = 240",
        "auto_decline_below = 350",
        "cutoffs.auto_decline_below: must not exceed cutoffs.auto_approve_min (340)",
        id="cutoffs-unordered",
    ),
    pytest.param(
        "auto_approve_min = 340    #",
        "auto_approve_min = 500    #",
        "cutoffs.auto_approve_min: 500 is above the highest possible score (460)",
        id="cutoff-unreachable",
    ),
    pytest.param(
        "auto_approve_min = 340    #",
        "auto_aprove_min = 340    #",
        "cutoffs.auto_aprove_min: unknown key",
        id="cutoff-typo-missing",
    ),
    pytest.param(
        'tier = "MEDIUM"\nmin_score = 280',
        'tier = "MEDIUM"\nmin_score = 350',
        "risk_tiers[1].min_score: must be lower than risk_tiers[0].min_score (340)",
        id="tiers-unordered",
    ),
    pytest.param(
        'tier = "HIGH"\nmin_score = 0',
        'tier = "HIGH"\nmin_score = 10',
        "risk_tiers[2].min_score: the last tier must start at or below the lowest possible score",
        id="tiers-do-not-cover",
    ),
    pytest.param(
        "HIGH = 0.5\n",
        "",
        "limit_sizing.tier_share: missing a share for tier HIGH",
        id="tier-share-missing",
    ),
    pytest.param(
        "MEDIUM = 0.8\n",
        "MEDIUM = 1.8\n",
        "limit_sizing.tier_share.MEDIUM: must be greater than 0 and at most 1",
        id="tier-share-above-one",
    ),
    pytest.param(
        "reminder_days = [3, 6]",
        "reminder_days = [3, 7]",
        "documents.reminder_days[1]: must be between 1 and the collection deadline (7)",
        id="reminder-after-deadline",
    ),
    pytest.param(
        "review_warning_hours = 20",
        "review_warning_hours = 30",
        "sla.review_warning_hours: must be less than sla.review_due_hours (24)",
        id="sla-warning-after-due",
    ),
    pytest.param(
        "review_due_hours = 24\n",
        "",
        "sla.review_due_hours: required key is missing",
        id="sla-missing-key",
    ),
    pytest.param(
        "escalation_queue = ",
        'escalation_queue_name = "x"\nescalation_queue = ',
        "sla.escalation_queue_name: unknown key",
        id="unknown-key",
    ),
    pytest.param(
        'zh-CN = "您的信用账户已关闭，无法恢复额度。"\n',
        "",
        "reasons.RC_ACCOUNT_CLOSED.zh-CN: required key is missing",
        id="reason-missing-language",
    ),
    pytest.param(
        'risk_tiers = ["HIGH"]',
        'risk_tiers = ["SEVERE"]',
        "four_eyes.risk_tiers[0]: Input should be 'LOW', 'MEDIUM' or 'HIGH'",
        id="unknown-tier",
    ),
    pytest.param(
        'id = "limit-restore-v1"',
        'id = "Limit Restore"',
        "id: String should match pattern",
        id="bad-id",
    ),
]


@pytest.mark.parametrize(("old", "new", "expected"), BROKEN_VARIANTS)
def test_broken_policy_names_the_key(tmp_path: Path, old: str, new: str, expected: str) -> None:
    path = _broken(tmp_path, old, new)
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    err = info.value
    assert str(err.issues[0]).startswith(expected), str(err)
    assert err.path == expected.split(":")[0]
    assert str(path) in str(err)


def test_all_issues_are_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(
        POLICY_TEXT.replace("auto_decline_below = 240", "auto_decline_below = 350").replace(
            'reason = "RC_LOW_ACTIVITY"', 'reason = "RC_NOPE"'
        ),
        encoding="utf-8",
    )
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    paths = [i.path for i in info.value.issues]
    assert "scorecard.characteristics[5].reason" in paths
    assert "cutoffs.auto_decline_below" in paths


def test_invalid_toml(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text(POLICY_TEXT + "\n[cutoffs\n", encoding="utf-8")
    with pytest.raises(PolicyError, match="invalid TOML"):
        load_policy(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        load_policy(tmp_path / "nope.toml")
