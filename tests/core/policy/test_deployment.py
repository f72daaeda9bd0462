"""The deployment file: champion (complete for appeals) and optional challenger (scored in
shadow), read once per process; `load_default_policy` is the deployed champion."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.policy.deployment import (
    DeploymentError,
    clear_cache,
    deploy,
    load_deployment,
    read_deployment_file,
)
from core.policy.loader import default_policy_path, load_default_policy, load_policy
from core.settings import get_settings
from tests.policy_files import POLICY_TEXT, SCORECARD_ONLY, with_bureau_grade, write_policy

REPO_DEPLOYMENT = default_policy_path().parent / "deployment.toml"


@pytest.fixture(autouse=True)
def _fresh_caches() -> Iterator[None]:
    def clear() -> None:
        clear_cache()
        load_default_policy.cache_clear()
        get_settings.cache_clear()

    clear()
    yield
    clear()


def test_the_repository_deploys_its_policy_as_champion_without_challenger() -> None:
    file = read_deployment_file(REPO_DEPLOYMENT)
    assert file.champion == default_policy_path() and file.challenger is None
    deployed = load_deployment(REPO_DEPLOYMENT)
    assert deployed.champion.content_hash == hashlib.sha256(default_policy_path().read_bytes()).hexdigest()
    assert deployed.challenger is None
    assert load_deployment(REPO_DEPLOYMENT) is deployed  # read once per process
    assert load_default_policy().content_hash == deployed.champion.content_hash


def test_deploy_records_both_relative_to_the_file_and_the_setting_points_at_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    champion = write_policy(policies, "champion.toml", POLICY_TEXT)
    challenger = write_policy(policies, "challenger.toml", with_bureau_grade())
    target = tmp_path / "conf" / "deployment.toml"
    deployed = deploy(target, champion, challenger)
    text = target.read_text()
    assert 'champion = "../policies/champion.toml"' in text
    assert 'challenger = "../policies/challenger.toml"' in text
    assert deployed.champion.content_hash in text and deployed.challenger is not None
    assert deployed.challenger.content_hash in text
    assert [p.name for p in target.parent.iterdir()] == ["deployment.toml"]  # no temporary left
    assert target.stat().st_mode & 0o777 == 0o644

    monkeypatch.setenv("APPEALS_POLICY_DEPLOYMENT", str(target))
    get_settings.cache_clear()
    loaded = load_deployment()
    assert loaded.champion.content_hash == hashlib.sha256(champion.read_bytes()).hexdigest()
    assert loaded.challenger is not None
    assert loaded.challenger.content_hash == hashlib.sha256(challenger.read_bytes()).hexdigest()
    assert load_default_policy().content_hash == loaded.champion.content_hash


def test_a_scorecard_alone_cannot_be_champion_and_the_file_is_left_as_it_was(tmp_path: Path) -> None:
    card = write_policy(tmp_path, "card.toml", SCORECARD_ONLY)
    target = tmp_path / "deployment.toml"
    target.write_text('champion = "x.toml"\n')
    with pytest.raises(DeploymentError) as refused:
        deploy(target, card)
    message = str(refused.value)
    assert "champion" in message
    for section in ("cutoffs", "risk_tiers", "limit_sizing", "four_eyes", "documents", "parameters"):
        assert section in message
    assert target.read_text() == 'champion = "x.toml"\n'


def test_a_challenger_without_routing_sections_is_refused(tmp_path: Path) -> None:
    card = write_policy(tmp_path, "card.toml", SCORECARD_ONLY)
    with pytest.raises(DeploymentError, match=r"challenger .* cannot produce a recommendation.*cutoffs"):
        deploy(tmp_path / "deployment.toml", default_policy_path(), card)
    assert not (tmp_path / "deployment.toml").exists()


def test_a_challenger_may_keep_placeholder_reason_texts(tmp_path: Path) -> None:
    text = with_bureau_grade().replace(
        'en = "The number of other credit products', 'en = "TODO The number of other credit products'
    )
    challenger = write_policy(tmp_path, "challenger.toml", text)
    with pytest.raises(DeploymentError, match="placeholder"):
        deploy(tmp_path / "deployment.toml", challenger)  # a champion's customers read them
    deployed = deploy(tmp_path / "deployment.toml", default_policy_path(), challenger)
    assert deployed.challenger is not None
    assert deployed.challenger.policy.scorecard.max_score == 660
    assert deployed.challenger.policy.cutoffs == load_policy(default_policy_path()).policy.cutoffs


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('champion = "a.toml"\nshadow = "b.toml"\n', "unknown key"),
        ('challenger = "b.toml"\n', "champion: required"),
        ("champion = [", "not a valid TOML"),
    ],
)
def test_a_bad_deployment_file_says_what_is_wrong(tmp_path: Path, text: str, expected: str) -> None:
    target = tmp_path / "deployment.toml"
    target.write_text(text)
    with pytest.raises(DeploymentError, match=expected):
        load_deployment(target)


def test_a_deployment_naming_a_missing_policy_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "deployment.toml"
    target.write_text('champion = "nowhere.toml"\n')
    with pytest.raises(DeploymentError, match=r"nowhere\.toml"):
        load_deployment(target)
