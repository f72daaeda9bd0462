"""Properties the policy must keep whatever the customer looks like."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from core.policy import (
    Assessment,
    AssessmentInput,
    LoadedPolicy,
    Recommendation,
    RedFlag,
    assess,
    reproduce,
)
from tests.core.policy.factories import EMPLOYERS, Population, make_profile

# No example database: keep the run self-contained and the work tree clean.
PROPERTY_SETTINGS = settings(max_examples=100, deadline=None, database=None)
EMPLOYER_PAYERS = {payer for payer, _ in EMPLOYERS}

profiles = st.builds(make_profile, st.sampled_from(list(Population)), st.integers(0, 1_000_000))


@PROPERTY_SETTINGS
@given(inp=profiles, data=st.data())
def test_more_late_bills_never_raise_the_score(
    policy: LoadedPolicy, inp: AssessmentInput, data: st.DataObject
) -> None:
    # Bills that could have been paid later than they were (their due date is far enough back).
    candidates = [i for i, b in enumerate(inp.bills) if (inp.as_of - b.due_date).days > b.days_past_due]
    if not candidates:
        return
    chosen = data.draw(st.lists(st.sampled_from(candidates), min_size=1, unique=True))
    extra = data.draw(st.integers(1, 120))
    bills = list(inp.bills)
    for i in chosen:
        b = bills[i]
        dpd = min(b.days_past_due + extra, (inp.as_of - b.due_date).days)
        bills[i] = b.model_copy(update={"days_past_due": dpd})
    worse = inp.model_copy(update={"bills": tuple(bills)})
    assert assess(policy, worse).score <= assess(policy, inp).score


@PROPERTY_SETTINGS
@given(inp=profiles, factor=st.integers(2, 5))
def test_more_income_never_lowers_the_score(policy: LoadedPolicy, inp: AssessmentInput, factor: int) -> None:
    richer_txns = tuple(
        t.model_copy(update={"amount_minor": t.amount_minor * factor})
        if t.amount_minor > 0 and t.counterparty in EMPLOYER_PAYERS
        else t
        for t in inp.transactions
    )
    declared = inp.customer.declared_monthly_income_minor
    customer = inp.customer.model_copy(
        update={"declared_monthly_income_minor": None if declared is None else declared * factor}
    )
    richer = inp.model_copy(update={"transactions": richer_txns, "customer": customer})
    before, after = assess(policy, inp), assess(policy, richer)
    assert after.characteristics.net_monthly_income_minor is not None
    assert after.score >= before.score


@PROPERTY_SETTINGS
@given(
    inp=profiles,
    requested=st.integers(1, 5_000_000),
    original=st.integers(0, 5_000_000),
)
def test_suggested_limit_never_exceeds_original_or_requested(
    policy: LoadedPolicy, inp: AssessmentInput, requested: int, original: int
) -> None:
    account = inp.account.model_copy(update={"original_limit_minor": original})
    a = assess(policy, inp.model_copy(update={"requested_limit_minor": requested, "account": account}))
    assert 0 <= a.suggested_limit_minor <= min(original, requested)
    assert a.suggested_limit_minor <= a.limit_sizing.ability_to_pay_cap_minor
    assert a.suggested_limit_minor % policy.policy.limit_sizing.rounding_unit_minor == 0
    if a.recommendation is Recommendation.AUTO_DECLINE:
        assert a.suggested_limit_minor == 0
    if a.recommendation is Recommendation.AUTO_APPROVE:
        assert a.suggested_limit_minor > 0


@PROPERTY_SETTINGS
@given(inp=profiles)
def test_assessment_replays_identically_from_its_snapshot(policy: LoadedPolicy, inp: AssessmentInput) -> None:
    a = assess(policy, inp)
    stored = Assessment.model_validate_json(a.model_dump_json())
    assert stored == a
    assert reproduce(policy, stored) == a


@PROPERTY_SETTINGS
@given(
    inp=profiles,
    flags=st.lists(
        st.builds(
            RedFlag,
            code=st.sampled_from(["PDF_EDITED", "NAME_MISMATCH", "DUPLICATE_UPLOAD"]),
            explanation=st.sampled_from(["", "producer changed after signing", "姓名不一致"]),
        ),
        min_size=1,
        max_size=3,
    ),
)
def test_red_flags_always_force_manual_review(
    policy: LoadedPolicy, inp: AssessmentInput, flags: list[RedFlag]
) -> None:
    a = assess(policy, inp.model_copy(update={"red_flags": tuple(flags)}))
    assert a.recommendation is Recommendation.MANUAL_REVIEW
    assert a.red_flags == tuple(flags)
