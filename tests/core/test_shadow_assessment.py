"""A deployed challenger scores every assessed snapshot in shadow: stored apart, idempotent under
activity retry, and never able to fail or change the appeal's own assessment."""

from __future__ import annotations

import logging
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select

from core.appeals.assessment import latest_assessment, run_assessment
from core.appeals.service import NewAppeal, create_appeal
from core.db import session_scope
from core.db.case_tables import Assessment, ShadowAssessment
from core.db.ledger_tables import CustomerAttribute
from core.policy.loader import LoadedPolicy, load_policy, load_policy_bytes
from tests.factories import make_customer
from tests.policy_files import INPUT_FIELD, with_bureau_grade

TODAY = date(2028, 2, 29)


class Retry(Exception):
    """The activity attempt dies after its step ran, before the commit."""


@pytest.fixture
def champion() -> LoadedPolicy:
    return load_policy_bytes(with_bureau_grade().encode(), source="champion")


def _challenger(*, else_points: int | None = 0, tighter: bool = True) -> LoadedPolicy:
    text = with_bureau_grade(else_points=else_points)
    if tighter:  # approves nothing below 600 points
        text = text.replace("auto_approve_min = 340", "auto_approve_min = 600")
    return load_policy_bytes(text.encode(), source="challenger")


def _appeal(engine: Engine, grade: str | None) -> str:
    c = make_customer(engine, today=TODAY)
    with session_scope(engine) as session:
        if grade is not None:
            session.add(
                CustomerAttribute(
                    customer_id=c.customer_id, name=INPUT_FIELD, value=grade, source="credit-bureau"
                )
            )
        appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, 300_000))
    return appeal.id


def _rows(engine: Engine, appeal_id: str) -> tuple[list[Assessment], list[ShadowAssessment]]:
    with session_scope(engine, read_only=True) as session:
        assessments = list(session.exec(select(Assessment).where(Assessment.appeal_id == appeal_id)).all())
        shadows = list(
            session.exec(select(ShadowAssessment).where(ShadowAssessment.appeal_id == appeal_id)).all()
        )
    return assessments, shadows


def test_the_challenger_scores_the_same_snapshot_in_shadow(engine: Engine, champion: LoadedPolicy) -> None:
    appeal_id = _appeal(engine, "A")
    challenger = _challenger()
    with session_scope(engine) as session:
        row = run_assessment(session, appeal_id, 1, champion, TODAY, challenger=challenger)
    (assessment,), (shadow,) = _rows(engine, appeal_id)
    assert assessment.id == row.id and assessment.rule_hash == champion.content_hash
    # The customer's ledger attribute reached the snapshot and was scored by both.
    assert assessment.inputs["fields"] == {INPUT_FIELD: "A"}
    graded = next(c for c in assessment.result["contributions"] if c["characteristic"] == INPUT_FIELD)
    assert (graded["category"], graded["bin"]) == ("A", "grade A")
    assert shadow.result["input"] == assessment.inputs  # the same snapshot
    assert (shadow.appeal_id, shadow.run, shadow.role) == (appeal_id, 1, "challenger")
    assert (shadow.rule_id, shadow.rule_hash) == ("limit-restore-v1", challenger.content_hash)
    assert shadow.score == assessment.score  # same card, other cut-offs
    assert assessment.score is not None and assessment.score < 600
    assert shadow.recommendation is not None and shadow.recommendation.value != "AUTO_APPROVE"
    assert shadow.route == shadow.result["route"] and shadow.error is None
    # The shipped card is calibrated: the shadow row keeps the PD its result records.
    assert shadow.pd is not None and shadow.pd == shadow.result["pd"]
    with session_scope(engine, read_only=True) as session:
        latest = latest_assessment(session, appeal_id)  # what every decision reads
    assert latest is not None and latest.rule_hash == champion.content_hash


def test_shadow_scoring_is_idempotent_under_activity_retry(engine: Engine, champion: LoadedPolicy) -> None:
    appeal_id = _appeal(engine, "B")
    challenger = _challenger()
    with pytest.raises(Retry), session_scope(engine) as session:
        run_assessment(session, appeal_id, 1, champion, TODAY, challenger=challenger)
        raise Retry
    assert _rows(engine, appeal_id) == ([], [])  # rolled back together
    for _attempt in range(2):
        with session_scope(engine) as session:
            run_assessment(session, appeal_id, 1, champion, TODAY, challenger=challenger)
    assessments, shadows = _rows(engine, appeal_id)
    assert len(assessments) == 1 and len(shadows) == 1
    # A second run of the appeal (new documents) gets its own pair.
    with session_scope(engine) as session:
        run_assessment(session, appeal_id, 2, champion, TODAY, challenger=challenger)
    assessments, shadows = _rows(engine, appeal_id)
    assert sorted(a.run for a in assessments) == [1, 2] and sorted(s.run for s in shadows) == [1, 2]


def test_a_challenger_deployed_later_scores_the_stored_snapshot(
    engine: Engine, champion: LoadedPolicy
) -> None:
    appeal_id = _appeal(engine, "A")
    with session_scope(engine) as session:
        run_assessment(session, appeal_id, 1, champion, TODAY)
    assert len(_rows(engine, appeal_id)[1]) == 0
    challenger = _challenger()
    with session_scope(engine) as session:  # the activity retried after the redeploy
        run_assessment(session, appeal_id, 1, champion, TODAY, challenger=challenger)
    (assessment,), (shadow,) = _rows(engine, appeal_id)
    assert shadow.result["input"] == assessment.inputs and shadow.score == assessment.score


def test_a_crashing_challenger_leaves_the_appeal_assessment_intact(
    engine: Engine, champion: LoadedPolicy, caplog: pytest.LogCaptureFixture
) -> None:
    appeal_id = _appeal(engine, "Z")  # a grade the challenger has no bin for, and no else bin
    challenger = _challenger(else_points=None)
    with caplog.at_level(logging.WARNING, logger="core.appeals.assessment"), session_scope(engine) as session:
        row = run_assessment(session, appeal_id, 1, champion, TODAY, challenger=challenger)
    assert row.recommendation is not None
    (assessment,), (shadow,) = _rows(engine, appeal_id)
    alone = _appeal(engine, "Z")
    with session_scope(engine) as session:
        without = run_assessment(session, alone, 1, champion, TODAY)
    assert (assessment.score, assessment.recommendation, assessment.route) == (
        without.score,
        without.recommendation,
        without.route,
    )
    assert shadow.recommendation is None and shadow.score is None and shadow.result == {}
    assert shadow.error is not None and INPUT_FIELD in shadow.error
    assert shadow.rule_hash == challenger.content_hash
    assert any("could not score" in r.getMessage() for r in caplog.records)
    with session_scope(engine) as session:  # a retry does not score it again
        run_assessment(session, appeal_id, 1, champion, TODAY, challenger=challenger)
    assert len(_rows(engine, appeal_id)[1]) == 1


def test_no_challenger_no_shadow(engine: Engine) -> None:
    appeal_id = _appeal(engine, None)
    policy = load_policy(Path(__file__).resolve().parents[2] / "policy" / "limit-restore-v1.toml")
    with session_scope(engine) as session:
        run_assessment(session, appeal_id, 1, policy, TODAY)
    (assessment,), shadows = _rows(engine, appeal_id)
    assert shadows == [] and assessment.inputs["fields"] == {}
