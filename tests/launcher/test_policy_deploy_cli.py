"""`appeals policy deploy` and `appeals policy compare`."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from typer.testing import CliRunner

from core.appeals.assessment import run_assessment
from core.appeals.service import NewAppeal, create_appeal
from core.db import read_scope, session_scope
from core.db.case_tables import Appeal, Assessment, ShadowAssessment
from core.db.ledger_tables import CustomerAttribute
from core.policy.deployment import clear_cache, load_deployment
from core.policy.loader import LoadedPolicy, default_policy_path, load_default_policy, load_policy_bytes
from core.settings import get_settings
from core.status import AppealStatus
from launcher.cli import app
from launcher.policy_deploy_cli import read_rows
from tests.factories import make_customer
from tests.policy_files import INPUT_FIELD, SCORECARD_ONLY, with_bureau_grade, write_policy

runner = CliRunner()
TODAY = date(2028, 2, 29)


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    def clear() -> None:
        clear_cache()
        load_default_policy.cache_clear()
        get_settings.cache_clear()

    clear()
    yield
    clear()


@pytest.fixture
def database(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("APPEALS_DATABASE_URL", str(sqlite_engine.url))
    get_settings.cache_clear()
    yield sqlite_engine


def test_deploy_records_champion_and_challenger_with_their_hashes(tmp_path: Path) -> None:
    challenger = write_policy(tmp_path, "challenger.toml", with_bureau_grade())
    target = tmp_path / "deployment.toml"
    result = runner.invoke(
        app,
        [
            "policy",
            "deploy",
            str(default_policy_path()),
            "--challenger",
            str(challenger),
            "--deployment",
            str(target),
        ],
    )
    assert result.exit_code == 0, result.output
    deployed = load_deployment(target)
    assert deployed.challenger is not None
    assert (
        f"champion   limit-restore-v1 ({default_policy_path()}) sha256 {deployed.champion.content_hash}"
        in (result.output)
    )
    assert (
        f"challenger limit-restore-v1 ({challenger}) sha256 {deployed.challenger.content_hash}"
        in result.output
    )
    again = runner.invoke(app, ["policy", "deploy", str(default_policy_path()), "--deployment", str(target)])
    assert again.exit_code == 0 and "challenger none" in again.output
    assert load_deployment(target).challenger is None


def test_deploy_writes_the_configured_file_by_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "deployed.toml"
    monkeypatch.setenv("APPEALS_POLICY_DEPLOYMENT", str(target))
    result = runner.invoke(app, ["policy", "deploy", str(default_policy_path())])
    assert result.exit_code == 0, result.output
    assert f"Recorded in {target}" in result.output and target.is_file()


def test_deploy_refuses_a_champion_that_cannot_decide_appeals(tmp_path: Path) -> None:
    card = write_policy(tmp_path, "card.toml", SCORECARD_ONLY)
    target = tmp_path / "deployment.toml"
    result = runner.invoke(app, ["policy", "deploy", str(card), "--deployment", str(target)])
    assert result.exit_code == 1
    assert "not deployed" in result.output and "cannot decide appeals" in result.output
    for section in ("cutoffs", "risk_tiers", "limit_sizing", "four_eyes", "sla", "documents", "appeals"):
        assert f"{section}: required where the policy is deployed for appeals" in result.output
    assert not target.exists()
    refused = runner.invoke(
        app,
        [
            "policy",
            "deploy",
            str(default_policy_path()),
            "--challenger",
            str(card),
            "--deployment",
            str(target),
        ],
    )
    assert refused.exit_code == 1 and "cannot produce a recommendation" in refused.output


def _assessed(engine: Engine, grade: str, champion: LoadedPolicy, challenger: LoadedPolicy) -> str:
    c = make_customer(engine, today=TODAY)
    with session_scope(engine) as session:
        session.add(
            CustomerAttribute(customer_id=c.customer_id, name=INPUT_FIELD, value=grade, source="bureau")
        )
        appeal, _ = create_appeal(session, NewAppeal(c.customer_id, c.account_id, 300_000))
    with session_scope(engine) as session:
        run_assessment(session, appeal.id, 1, champion, TODAY, challenger=challenger)
    return appeal.id


def _pair() -> tuple[LoadedPolicy, LoadedPolicy]:
    champion = load_policy_bytes(with_bureau_grade().encode(), source="champion")
    # The challenger approves from 2 points: every appeal the champion does not approve is a swap-in.
    text = with_bureau_grade().replace("auto_approve_min = 340", "auto_approve_min = 2")
    text = text.replace("auto_decline_below = 240", "auto_decline_below = 1")
    return champion, load_policy_bytes(text.encode(), source="challenger")


def test_read_rows(engine: Engine) -> None:
    champion, challenger = _pair()
    appeal_id = _assessed(engine, "B", champion, challenger)
    with read_scope(engine) as connection:
        champions, shadows, appeals = read_rows(connection, None)
    with session_scope(engine, read_only=True) as session:
        stored = session.exec(select(Assessment)).one()
    assert [(c.appeal_id, c.run, c.recommendation) for c in champions] == [
        (appeal_id, 1, stored.recommendation.value)
    ]
    assert [(s.appeal_id, s.run, s.rule_hash) for s in shadows] == [(appeal_id, 1, challenger.content_hash)]
    assert shadows[0].recommendation in ("AUTO_APPROVE", "MANUAL_REVIEW")  # a knock-out may refer
    assert [a.appeal_id for a in appeals] == [appeal_id]
    assert appeals[0].status is AppealStatus.SUBMITTED
    with read_scope(engine) as connection:
        assert read_rows(connection, datetime(2999, 1, 1, tzinfo=UTC)) == ([], [], [])


def test_compare_reports_from_the_database(database: Engine) -> None:
    champion, challenger = _pair()
    ids = [_assessed(database, grade, champion, challenger) for grade in ("A", "B", "C")]
    with session_scope(database) as session:
        declined = session.get(Appeal, ids[0])
        assert declined is not None
        declined.status = AppealStatus.DECLINED
        session.add(declined)
    with session_scope(database, read_only=True) as session:
        champ = {a.appeal_id: a.recommendation.value for a in session.exec(select(Assessment)).all()}
        chall = {
            s.appeal_id: s.recommendation.value
            for s in session.exec(select(ShadowAssessment)).all()
            if s.recommendation is not None
        }
    agree = sum(champ[i] == chall[i] for i in ids)
    swap_in = sum(chall[i] == "AUTO_APPROVE" != champ[i] for i in ids)
    result = runner.invoke(app, ["policy", "compare"])
    assert result.exit_code == 0, result.output
    assert f"Challenger limit-restore-v1 (sha256 {challenger.content_hash})" in result.output
    assert "appeals scored by both: 3" in result.output
    assert "decided appeals: 1" in result.output and "finally declined: 1" in result.output
    assert f"same recommendation: {agree} of 3 ({agree / 3:.1%})" in result.output
    assert f"champion did not): {swap_in}" in result.output
    later = runner.invoke(app, ["policy", "compare", "--since", "2999-01-01"])
    assert later.exit_code == 0 and "No appeal was scored in shadow since 2999-01-01" in later.output
    bad = runner.invoke(app, ["policy", "compare", "--since", "yesterday"])
    assert bad.exit_code == 2
