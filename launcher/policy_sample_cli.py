"""`appeals policy sample`: write the seeded population as a data file for backtests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from core.clock import SYSTEM_CLOCK


def sample(
    out: Annotated[Path, typer.Option("--out", help="The CSV file to write.")],
    customers: Annotated[
        int, typer.Option("--customers", min=0, help="How many customers to generate.")
    ] = 1000,
    seed: Annotated[int, typer.Option("--seed", help="The generator's seed.")] = 1,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="The as-of date (YYYY-MM-DD); default: today.")
    ] = None,
    policy_file: Annotated[
        Path | None, typer.Option("--policy", help="Policy whose features to compute (default: the repo's).")
    ] = None,
) -> None:
    """Generate the seeded population and write one row per customer with something to appeal:
    customer_id, population, every feature of the library, and the hidden outcome `bad` (1/0)."""
    from collections import Counter

    from core.ledger.generator import Population
    from core.policy.loader import load_default_policy, load_policy
    from core.policy.sample import population_sample, write_sample
    from launcher.ledger_cli import date_option

    day = date_option(as_of, SYSTEM_CLOCK)
    loaded = load_policy(policy_file) if policy_file else load_default_policy()
    rows = population_sample(customers, seed, loaded.policy, as_of=day)
    written = write_sample(rows, out)
    bads = Counter(row.customer.population.value for row in rows if row.bad)
    totals = Counter(row.customer.population.value for row in rows)
    typer.echo(
        f"wrote {written} rows to {out} ({customers} customers, seed {seed}, as of {day.isoformat()}; "
        f"{customers - written} with an ACTIVE account skipped)"
    )
    for population in (p.value for p in Population if totals[p.value]):
        total = totals[population]
        typer.echo(f"  {population:<13} {total:>7} rows  bad rate {bads[population] / total:6.1%}")


def register_sample_command(app: typer.Typer) -> None:
    """Adds `sample` to `appeals policy`."""
    app.command("sample")(sample)
