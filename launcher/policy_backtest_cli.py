"""`appeals policy backtest`: score a labelled CSV file with a policy and report how it ranks."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

BAD_INPUT = 2


def _fail(message: str) -> typer.Exit:
    typer.secho(message, fg=typer.colors.RED, err=True)
    return typer.Exit(BAD_INPUT)


def backtest(
    policy: Annotated[Path, typer.Argument(help="A policy TOML file (a scorecard alone is enough).")],
    data: Annotated[
        Path, typer.Option("--data", help="CSV file: one row per case, columns named by source field.")
    ],
    target: Annotated[str, typer.Option("--target", help="Column holding 1 (bad) or 0 (good).")],
    baseline: Annotated[
        Path | None, typer.Option("--baseline", help="CSV file to measure PSI and CSI against.")
    ] = None,
    bands: Annotated[
        str | None, typer.Option("--bands", help="Score band edges, e.g. 300,400,500 (default: deciles).")
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Also write the report as HTML here.")] = None,
) -> None:
    """Score every row; print AUC, Gini, KS, bad rates per score band and routing outcome, the
    confusion at the cut-offs, stability against a baseline, and the rows that could not be scored.
    The target's 1 (or bad, true) is a bad. Bad input exits with status 2."""
    from core.policy.backtest import BacktestInputError, parse_band_edges, render_text, run_backtest
    from core.policy.loader import load_scorecard
    from core.policy.model import PolicyError

    if not policy.is_file():
        raise _fail(f"{policy}: no such policy file")
    try:
        loaded = load_scorecard(policy)
    except PolicyError as exc:
        first = exc.issues[0] if exc.issues else None
        more = f" (and {len(exc.issues) - 1} more; see `appeals policy check`)" if len(exc.issues) > 1 else ""
        raise _fail(f"{policy}: invalid policy: {first}{more}") from exc
    try:
        edges = parse_band_edges(bands) if bands is not None else None
        result = run_backtest(loaded, data, target, baseline=baseline, band_edges=edges)
    except BacktestInputError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(render_text(result), nl=False)
    if out is not None:
        from core.policy.backtest_report import render_html

        try:
            out.write_text(render_html(result), encoding="utf-8")
        except OSError as exc:
            raise _fail(f"{out}: cannot write the report: {exc.strerror or exc}") from exc
        typer.echo(f"\nReport written to {out}")


def register_backtest_command(app: typer.Typer) -> None:
    app.command("backtest")(backtest)
