"""`appeals config`: the configuration reference and a check of the environment's settings; and
the settings every other command loads, refused in one line per bad setting."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError

from core.settings import Settings, get_settings
from launcher.config_docs import EXIT_CONFIG, REFERENCE, reference, refused_settings, unparseable_setting

config_app = typer.Typer(help="The settings: their reference and a check of this environment's.")


def settings_or_exit() -> Settings:
    """The settings of this environment; refused ones are printed, one line each, and the
    command exits with 78 (EX_CONFIG) instead of a traceback."""
    try:
        return get_settings()
    except ValidationError as exc:
        lines = refused_settings(exc)
    except SettingsError as exc:
        lines = [unparseable_setting(str(exc))]
    for line in lines:
        typer.secho(f"error: {line}", fg=typer.colors.RED, err=True)
    typer.secho(
        "error: the settings above are refused (docs/configuration.md lists every one)",
        fg=typer.colors.RED,
        err=True,
    )
    raise typer.Exit(EXIT_CONFIG)


@config_app.command("docs")
def docs(
    out: Annotated[Path, typer.Option(help="Where to write the reference.")] = REFERENCE,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 when the file differs from the settings.")
    ] = False,
) -> None:
    """Write docs/configuration.md from core/settings.py (each setting's type, default, description)."""
    text = reference()
    current = out.read_text() if out.is_file() else None
    if check:
        if current != text:
            typer.secho(f"{out} is out of date: run `appeals config docs`", fg=typer.colors.RED, err=True)
            raise typer.Exit(1)
        typer.echo(f"{out} is up to date")
        return
    if current != text:
        out.write_text(text)
    typer.echo(f"wrote {out}" if current != text else f"{out} is up to date")


@config_app.command("check")
def check() -> None:
    """Load the settings from this environment (APPEALS_*, .env) as every command does: prints
    each refused setting and exits 78, or says they are accepted."""
    settings = settings_or_exit()
    typer.echo(f"settings accepted ({settings.environment.value})")
