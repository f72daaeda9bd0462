from __future__ import annotations

from pathlib import Path

import pytest

from core.policy import (
    Assessment,
    LoadedPolicy,
    ReproductionError,
    assess,
    explain,
    format_minor,
    load_policy_bytes,
    reproduce,
)
from tests.core.policy.factories import RED_FLAG, Population, ago, base_input, bill, make_profile


def test_explain_lists_every_point(policy: LoadedPolicy) -> None:
    inp = base_input(bills=(bill(ago(2), 12), bill(ago(1))), red_flags=(RED_FLAG,))
    a = assess(policy, inp)
    text = explain(a)
    assert "worst_dpd_12m = 12 → bin [8, 31) → 30 points, 30 below best" in text
    assert "months_since_last_late = 2 → bin [0, 3) → 0 points, 40 below best" in text
    assert "other_credit_products = missing → missing → 5 points, 10 below best" in text
    assert "employment_verified = false → bin not verified → 0 points, 25 below best" in text
    assert f"total = {a.score} points" in text
    assert "KO_DOCUMENT_RED_FLAGS: red_flag_count = 1 (>= 1) → force_review" in text
    assert f"under policy limit-restore-v1 (sha256 {policy.content_hash[:12]})" in text
    assert "PDF_EDITED: statement PDF was modified after issue" in text
    assert "bank_statement: MISSING" not in text
    for reason in a.reasons:
        assert reason.en in text and reason.zh_cn in text
    # one line per scorecard characteristic
    assert sum(" points" in line and " → " in line for line in text.splitlines()) == len(a.contributions)


def test_explain_limit_sizing(policy: LoadedPolicy) -> None:
    text = explain(assess(policy, make_profile(Population.HIGH_SPENDER, 0)))
    assert "Suggested limit: 12,800.00 CNY" in text
    assert "tier MEDIUM share 0.8 → 12,800.00" in text
    declined = explain(assess(policy, make_profile(Population.CHRONIC_LATE, 0)))
    assert "set to 0: score 95 below 240" in declined


@pytest.mark.parametrize(
    ("minor", "text"), [(0, "0.00"), (5, "0.05"), (123_456_78, "123,456.78"), (-150, "-1.50")]
)
def test_format_minor(minor: int, text: str) -> None:
    assert format_minor(minor) == text


@pytest.mark.parametrize("population", list(Population))
def test_reproduce_from_stored_json(policy: LoadedPolicy, population: Population) -> None:
    original = assess(policy, make_profile(population, 5))
    stored = Assessment.model_validate_json(original.model_dump_json())
    assert reproduce(policy, stored) == original


def test_reproduce_refuses_another_policy(policy: LoadedPolicy) -> None:
    a = assess(policy, make_profile(Population.STEADY, 0))
    edited = load_policy_bytes(Path(policy.source).read_bytes() + b"\n")
    with pytest.raises(ReproductionError, match="policy differs") as info:
        reproduce(edited, a)
    assert policy.content_hash in str(info.value)
    assert edited.content_hash in str(info.value)


def test_reproduce_names_the_first_difference(policy: LoadedPolicy) -> None:
    a = assess(policy, make_profile(Population.STEADY, 0))
    tampered = a.model_copy(update={"score": a.score + 1})
    with pytest.raises(ReproductionError, match=rf"at score: stored {a.score + 1}, replay {a.score}"):
        reproduce(policy, tampered)

    first = a.contributions[0]
    changed = (first.model_copy(update={"points": first.points - 5}), *a.contributions[1:])
    with pytest.raises(ReproductionError, match=r"at contributions\[0\]\.points"):
        reproduce(policy, a.model_copy(update={"contributions": changed}))
