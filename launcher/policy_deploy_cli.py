"""`appeals policy deploy` and `appeals policy compare`: the champion and challenger policies."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import and_
from sqlalchemy.engine import Connection

from core.settings import get_settings

_IN_CHUNK = 500  # ids per IN (...) look-up


def register_deploy_commands(app: typer.Typer) -> None:
    """Adds `deploy` and `compare` to the `appeals policy` group."""
    app.command("deploy")(deploy)
    app.command("compare")(compare)


def deploy(
    policy: Annotated[Path, typer.Argument(help="The champion: a policy complete for appeals.")],
    challenger: Annotated[
        Path | None,
        typer.Option("--challenger", help="A policy to score every appeal in shadow (never decides)."),
    ] = None,
    deployment: Annotated[
        Path | None,
        typer.Option("--deployment", help="The deployment file (default: APPEALS_POLICY_DEPLOYMENT)."),
    ] = None,
) -> None:
    """Check the policies and record them in the deployment file the API and workers read."""
    from core.policy.deployment import DeploymentError
    from core.policy.deployment import deploy as record

    target = deployment or Path(get_settings().policy_deployment)
    try:
        deployed = record(target, policy, challenger)
    except DeploymentError as exc:
        typer.secho(f"not deployed: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    except OSError as exc:
        typer.secho(
            f"not deployed: cannot write {target}: {exc.strerror or exc}", fg=typer.colors.RED, err=True
        )
        raise typer.Exit(1) from exc
    typer.echo(f"Recorded in {target}:")
    for role, loaded in (("champion", deployed.champion), ("challenger", deployed.challenger)):
        if loaded is None:
            typer.echo(f"  {role:<10} none")
        else:
            typer.echo(f"  {role:<10} {loaded.policy_id} ({loaded.source}) sha256 {loaded.content_hash}")
    typer.echo("The API and workers read it when they start: restart them to use it.")


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint="--since") from exc
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def compare(
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only appeals assessed on or after this date (YYYY-MM-DD, UTC)."),
    ] = None,
) -> None:
    """How the champion and the challenger scored the same appeals, from the database."""
    from core.db import make_engine, read_scope
    from core.policy.compare import compare as compare_rows
    from core.policy.compare import format_comparison

    start = _since(since)
    engine = make_engine(get_settings().effective_database_url)
    try:
        with read_scope(engine) as connection:
            champions, shadows, appeals = read_rows(connection, start)
    finally:
        engine.dispose()
    period = f" since {start.date().isoformat()}" if start else ""
    comparisons = compare_rows(champions, shadows, appeals)
    if not comparisons:
        typer.echo(f"No appeal was scored in shadow{period}: no challenger deployed, or none assessed.")
        return
    typer.echo(f"Appeals assessed{period} and scored by a challenger in shadow.\n")
    typer.echo("\n\n".join(format_comparison(c) for c in comparisons))


def _chunks(items: Sequence[Any], size: int = _IN_CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def read_rows(connection: Connection, since: datetime | None) -> tuple[list[Any], list[Any], list[Any]]:
    """The champion assessments that have a shadow, the shadows, and their appeals' statuses."""
    from sqlalchemy import select

    from core.db.case_tables import Appeal, AppealEvent, Assessment, ShadowAssessment
    from core.policy.compare import AppealRow, ChampionRow, ShadowRow
    from core.status import AppealStatus

    a = Assessment.__table__.c  # type: ignore[attr-defined]
    s = ShadowAssessment.__table__.c  # type: ignore[attr-defined]
    joined = and_(s.appeal_id == a.appeal_id, s.run == a.run)
    champion_query = (
        select(a.appeal_id, a.run, a.recommendation, a.created_at)
        .where(select(s.id).where(joined).exists())
        .order_by(a.appeal_id, a.run)
    )
    shadow_query = (
        select(s.appeal_id, s.run, s.rule_id, s.rule_hash, s.recommendation, s.created_at)
        .join(Assessment.__table__, joined)  # type: ignore[attr-defined]
        .order_by(s.appeal_id, s.run, s.id)
    )
    if since is not None:
        champion_query = champion_query.where(a.created_at >= since)
        shadow_query = shadow_query.where(a.created_at >= since)
    champions = [
        ChampionRow(r.appeal_id, r.run, _text(r.recommendation), r.created_at)
        for r in connection.execute(champion_query)
    ]
    shadows = [
        ShadowRow(
            r.appeal_id,
            r.run,
            r.rule_id,
            r.rule_hash,
            None if r.recommendation is None else _text(r.recommendation),
            r.created_at,
        )
        for r in connection.execute(shadow_query)
    ]
    ids = sorted({c.appeal_id for c in champions})
    p = Appeal.__table__.c  # type: ignore[attr-defined]
    e = AppealEvent.__table__.c  # type: ignore[attr-defined]
    statuses: dict[str, AppealStatus] = {}
    history: dict[str, list[AppealStatus]] = {}
    for chunk in _chunks(ids):
        for row in connection.execute(select(p.id, p.status).where(p.id.in_(chunk))):
            statuses[row.id] = AppealStatus(_text(row.status))
        events = (
            select(e.appeal_id, e.to_status)
            .where(e.appeal_id.in_(chunk), e.to_status.is_not(None))
            .order_by(e.appeal_id, e.seq)
        )
        for row in connection.execute(events):
            history.setdefault(row.appeal_id, []).append(AppealStatus(_text(row.to_status)))
    appeals = [AppealRow(i, statuses[i], tuple(history.get(i, ()))) for i in ids if i in statuses]
    return champions, shadows, appeals


def _text(value: Any) -> str:
    return str(getattr(value, "value", value))
