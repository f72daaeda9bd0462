"""`appeals policy calibrate`: fit a scorecard's points-to-odds calibration on labelled data."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Annotated

import typer


def calibrate(
    policy_file: Annotated[Path, typer.Argument(help="The policy whose scorecard to calibrate.")],
    data: Annotated[Path, typer.Option("--data", help="CSV: a column per characteristic source field.")],
    target: Annotated[str, typer.Option("--target", help="The outcome column (1 = bad, 0 = good).")],
    points0: Annotated[
        int | None, typer.Option("--points0", help="Score to anchor the odds at (default: the median).")
    ] = None,
) -> None:
    """Fit points0/odds0/pdo (log bad:good odds linear in the score) and print the
    [scorecard.calibration] table to paste into the policy."""
    from core.policy.backtest import BacktestInputError, policy_scorer, score_sample
    from core.policy.calibration import CalibrationError, fit_calibration
    from core.policy.loader import load_scorecard
    from core.policy.model import PolicyError

    try:
        loaded = load_scorecard(policy_file)
        sample = score_sample(data, policy_scorer(loaded.policy, route=False), target)
        fitted = fit_calibration(
            [s.exact for s in sample.scores],
            sample.bads,
            None if points0 is None else Decimal(points0),
        )
    except (PolicyError, BacktestInputError, CalibrationError) as exc:
        typer.secho(f"cannot calibrate: {str(exc).splitlines()[0]}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    skipped = sum(sample.unscorable.values())
    typer.echo(
        f"# fitted on {fitted.rows} rows of {data} ({fitted.bads} bad; {skipped} not scored), "
        f"mean log-loss {fitted.log_loss:.4f}"
    )
    typer.echo(fitted.toml(), nl=False)


def register_calibrate_command(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)
