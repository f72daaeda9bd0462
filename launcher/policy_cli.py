"""`appeals policy`: validate a policy file; explain how a stored assessment was built."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.settings import get_settings
from launcher.policy_backtest_cli import register_backtest_command
from launcher.policy_calibrate_cli import register_calibrate_command
from launcher.policy_deploy_cli import register_deploy_commands
from launcher.policy_import_cli import register_import_command
from launcher.policy_sample_cli import register_sample_command

policy_app = typer.Typer(help="The versioned scorecard policy.", no_args_is_help=True)
register_backtest_command(policy_app)
register_calibrate_command(policy_app)
register_deploy_commands(policy_app)
register_import_command(policy_app)
register_sample_command(policy_app)


@policy_app.command("check")
def check(path: Annotated[Path, typer.Argument(help="A policy TOML file.")]) -> None:
    """Validate a policy file for scoring and for appeals; errors name the key.

    Exit 0: deployable for appeals. Exit 3: a valid scorecard (scoring and backtests) that an
    appeal cannot use yet; the issues say which sections or texts are missing. Exit 1: invalid.
    """
    from core.policy.loader import load_scorecard
    from core.policy.model import PolicyError, appeal_issues

    try:
        loaded = load_scorecard(path)
    except PolicyError as exc:
        typer.secho(f"{path}: invalid policy", fg=typer.colors.RED, err=True)
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    card = loaded.policy.scorecard
    calibrated = "calibrated" if card.calibration is not None else "not calibrated"
    typer.echo(
        f"{path}: valid scorecard ({loaded.policy_id}, sha256 {loaded.content_hash}): "
        f"{len(card.characteristics)} characteristics, scores {card.min_score} to {card.max_score}, "
        f"{calibrated}"
    )
    issues = appeal_issues(loaded.policy)
    if issues:
        typer.secho("not deployable for appeals yet:", fg=typer.colors.YELLOW, err=True)
        for issue in issues:
            typer.echo(f"  {issue}", err=True)
        raise typer.Exit(3)
    typer.echo(f"{path}: ok for appeals ({loaded.policy_id}, sha256 {loaded.content_hash})")


@policy_app.command("features")
def features() -> None:
    """The feature library a policy's characteristics and knock-outs can use (source = "feature:NAME")."""
    from core.policy.features import FEATURES

    for feature in FEATURES.values():
        missing = " (can be missing: needs missing_points)" if feature.nullable else ""
        typer.echo(f"{feature.name.value:26} {feature.group:18} {feature.meaning}{missing}")


@policy_app.command("explain")
def explain_assessment(
    appeal_id: Annotated[str, typer.Argument(help="The appeal whose latest assessment to explain.")],
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="Policy file (default: the repo's).")
    ] = None,
) -> None:
    """Replay an appeal's stored assessment from its snapshot and print it point by point."""
    from core.appeals.assessment import latest_assessment, stored_assessment
    from core.db import make_engine, session_scope
    from core.policy.explain import ReproductionError, explain, reproduce
    from core.policy.loader import load_default_policy, load_policy

    engine = make_engine(get_settings().effective_database_url)
    with session_scope(engine, read_only=True) as session:
        row = latest_assessment(session, appeal_id)
    engine.dispose()
    if row is None:
        typer.secho(f"appeal {appeal_id} has no assessment", fg=typer.colors.RED, err=True)
        raise typer.Exit(1)
    stored = stored_assessment(row)
    policy = load_policy(policy_file) if policy_file else load_default_policy()
    try:
        replayed = reproduce(policy, stored)
    except ReproductionError as exc:
        typer.secho(f"not reproducible: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    typer.echo(explain(replayed))
    typer.echo(f"\nReproduced exactly from the stored snapshot (assessment run {row.run}).")
