"""`appeals ledger`: load ledger CSV files into the database, or write the ledger out as CSV."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from core.clock import SYSTEM_CLOCK, Clock
from core.settings import Settings, get_settings
from launcher.db_cli import require_schema

ledger_app = typer.Typer(
    help="Ledger data in and out: customers, credit accounts, bills, limit events, loan applications, "
    "customer attributes.",
    no_args_is_help=True,
)


@ledger_app.command("import")
def import_dir(
    folder: Annotated[
        Path, typer.Argument(help="Folder with any of customers.csv, credit_accounts.csv, bills.csv, ...")
    ],
    today: Annotated[
        str | None,
        typer.Option(help="Date (YYYY-MM-DD) that blank days_past_due of unpaid bills count to."),
    ] = None,
) -> None:
    """Import ledger CSV files: all of them or, on any error, nothing (every error is listed)."""
    from core.db import make_engine
    from core.ledger.importer import LedgerImportFailed, import_ledger_dir

    as_of = date_option(today, SYSTEM_CLOCK)
    engine = make_engine(get_settings().effective_database_url)
    try:
        require_schema(engine)
        summary = import_ledger_dir(engine, folder, today=as_of)
    except LedgerImportFailed as exc:
        typer.secho(
            f"{folder}: {len(exc.errors)} error(s); nothing was imported", fg=typer.colors.RED, err=True
        )
        for error in exc.errors:
            typer.echo(f"  {error}", err=True)
        raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    typer.echo(f"imported {folder}:")
    for line in summary.lines():
        typer.echo(f"  {line}")


@ledger_app.command("export")
def export_dir(
    folder: Annotated[Path, typer.Argument(help="Folder to write the six CSV files into.")],
) -> None:
    """Write the whole ledger as CSV files in the import format."""
    from core.db import make_engine
    from core.ledger.exporter import export_ledger
    from core.ledger.importer import TABLE_WIDTH

    engine = make_engine(get_settings().effective_database_url)
    try:
        require_schema(engine)
        with engine.connect() as connection:
            counts = export_ledger(connection, folder)
    finally:
        engine.dispose()
    typer.echo(f"exported to {folder}:")
    for table, rows in counts.items():
        typer.echo(f"  {table:<{TABLE_WIDTH}} {rows:>8} rows")


def date_option(value: str | None, clock: Clock) -> date:
    """A `--today` option: the date given, else the clock's today."""
    if value is None:
        return clock.today()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (expected YYYY-MM-DD)") from None


def seed_command(
    settings: Settings,
    *,
    customers: int,
    seed: int,
    statements_dir: Path | None,
    today: str | None,
    clock: Clock = SYSTEM_CLOCK,
) -> None:
    """`appeals seed`: the four hand-written demo customers plus a generated population."""
    from collections import defaultdict

    from core.db import make_engine, session_scope
    from core.db.migrate import upgrade
    from core.ledger.generator import GeneratedCustomer, Population, seed_population, write_statements
    from core.seed import seed_demo_ledger

    as_of = date_option(today, clock)
    engine = make_engine(settings.effective_database_url)
    try:
        upgrade(engine)  # a demo database: made or brought up to date here
        with session_scope(engine) as session:
            demo = seed_demo_ledger(session, as_of)
            outcome = seed_population(session, customers, seed, today=as_of)
    finally:
        engine.dispose()
    typer.echo(f"seeded {len(demo)} demo customers")
    typer.echo(
        f"generated {customers} customers (seed {seed}, as of {as_of.isoformat()}): "
        f"{outcome.inserted} inserted, {outcome.skipped} already in the ledger"
    )
    groups: dict[tuple[str, str], list[GeneratedCustomer]] = defaultdict(list)
    for c in outcome.customers:
        groups[(c.population.value, c.expected.value)].append(c)
    rank = {p.value: index for index, p in enumerate(Population)}
    for (population, expected), members in sorted(groups.items(), key=lambda g: (rank[g[0][0]], g[0][1])):
        examples = ", ".join(c.customer_id for c in members[:3])
        typer.echo(f"  {population:<13} {expected:<18} {len(members):>6}  e.g. {examples}")
    if statements_dir is not None:
        write_statements(outcome.customers, statements_dir)
        typer.echo(
            f"wrote {len(outcome.customers)} statements and manifest.csv (who is who) to {statements_dir}"
        )


@ledger_app.command("events")
def events(
    file: Annotated[
        Path, typer.Argument(help='JSON file: {"events": [...]}, the body of POST /admin/ledger/events.')
    ],
) -> None:
    """Record a batch of risk events (docs/lender-loop.md) as `POST /admin/ledger/events` does: all
    or, if any event is bad, none (each bad event listed); then start the limit-action workflow of
    each applied event (what Temporal does not take now, the worker's reconciler starts later).

    Exit code 0: recorded; 1: the batch was refused."""
    import asyncio
    import getpass

    from api.risk_events import receive_risk_events
    from core.db import make_engine
    from core.errors import DomainError
    from core.lender.risk_events import parse_body
    from gateway.temporal import TemporalGateway

    settings = get_settings()
    engine = make_engine(settings.effective_database_url)
    try:
        require_schema(engine)
        try:
            parsed = parse_body(file.read_bytes())
            result, started = asyncio.run(
                receive_risk_events(
                    engine,
                    TemporalGateway(settings),
                    parsed,
                    received_from=f"cli:{getpass.getuser()}",
                    now=SYSTEM_CLOCK.now(),
                )
            )
        except DomainError as exc:
            typer.secho(f"{file}: {exc.detail}", fg=typer.colors.RED, err=True)
            for error in exc.extra.get("errors", []):
                typer.echo(f"  event {error['index']} ({error['id']}): {error['reason']}", err=True)
            raise typer.Exit(1) from exc
    finally:
        engine.dispose()
    for outcome in result.outcomes:
        note = ""
        if outcome.workflow_id:
            state = "started" if outcome.id in started else "to be started by the reconciler"
            note = (
                f" -> {outcome.workflow_id} ({state})"
                if outcome.needs_start
                else f" -> {outcome.workflow_id}"
            )
        typer.echo(f"{outcome.id}: {outcome.outcome}{note}")
