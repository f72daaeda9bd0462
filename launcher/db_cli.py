"""`appeals db`: the schema migrations (core/db/migrate.py) on the configured database
(APPEALS_DATABASE_URL, else the SQLite file under the data dir)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from sqlalchemy.engine import Engine

from core.settings import get_settings

db_app = typer.Typer(
    help="Database schema migrations (Alembic): upgrade, downgrade, current, stamp, revision.",
    no_args_is_help=True,
)


class _Echo(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        message = self.format(record)
        if message.startswith("Running "):  # not Alembic's notes on its DDL transaction mode
            typer.echo(message, err=True)


@contextmanager
def _engine() -> Iterator[Engine]:
    """The configured database, with Alembic's account of each revision it runs on stderr
    (`Running upgrade 0001 -> 0002, ...`): what a deployment's migrate job logs."""
    from core.db import make_engine

    engine = make_engine(get_settings().effective_database_url)
    alembic_log, handler = logging.getLogger("alembic"), _Echo()
    level = alembic_log.level
    alembic_log.addHandler(handler)
    alembic_log.setLevel(logging.INFO)
    try:
        yield engine
    finally:
        alembic_log.removeHandler(handler)
        alembic_log.setLevel(level)
        engine.dispose()


def require_schema(engine: Engine) -> None:
    """Stops the command, saying what to run, unless the database is at the code's head
    revision: the API, the worker and the ledger commands never migrate (core/db/migrate.py)."""
    from core.db.migrate import SchemaNotCurrent, require_head

    try:
        require_head(engine)
    except SchemaNotCurrent as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc


@db_app.command()
def upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Migrate up to REVISION (the newest by default). A database made before migrations (tables,
    no alembic_version) is first adopted if its schema is the first revision's, else refused."""
    from core.db.migrate import SchemaNotAdoptable, current_revision
    from core.db.migrate import upgrade as run_upgrade

    with _engine() as engine:
        try:
            adopted = run_upgrade(engine, revision)
        except SchemaNotAdoptable as exc:
            typer.secho(str(exc), fg=typer.colors.RED, err=True)
            raise typer.Exit(1) from exc
        if adopted:
            typer.echo(f"adopted the existing schema as revision {adopted}")
        typer.echo(f"database at revision {current_revision(engine) or 'none'}")


@db_app.command()
def downgrade(revision: Annotated[str, typer.Argument(help="Target revision: an id, -1, or base.")]) -> None:
    """Migrate down to REVISION (`base`: no tables left). Data in what is dropped is lost."""
    from core.db.migrate import current_revision
    from core.db.migrate import downgrade as run_downgrade

    with _engine() as engine:
        run_downgrade(engine, revision)
        typer.echo(f"database at revision {current_revision(engine) or 'none'}")


@db_app.command()
def current() -> None:
    """The database's revision, and whether it is the code's head. Exit code 0: at head; 1: not."""
    from core.db.migrate import current_revision, head_revision

    with _engine() as engine:
        revision, head = current_revision(engine), head_revision()
    if revision == head:
        typer.echo(f"{revision} (head)")
        return
    typer.echo(f"{revision or 'none'} (head is {head}: run `appeals db upgrade`)")
    raise typer.Exit(1)


@db_app.command()
def stamp(revision: Annotated[str, typer.Argument(help="Revision to record (no DDL is run).")]) -> None:
    """Record REVISION as the database's without running any migration: for a schema brought to a
    revision by hand."""
    from core.db.migrate import stamp as run_stamp

    with _engine() as engine:
        run_stamp(engine, revision)
    typer.echo(f"database stamped at {revision}")


@db_app.command()
def revision(
    message: Annotated[str, typer.Option("-m", "--message", help="What the revision does.")],
    autogenerate: Annotated[
        bool, typer.Option(help="Write the operations the models need and the database (at head) lacks.")
    ] = False,
) -> None:
    """Write a new revision file into core/db/migrations/versions/ (for developers: review it,
    then commit it with the model change)."""
    from core.db.migrate import new_revision

    with _engine() as engine:
        path = new_revision(engine, message, autogenerate=autogenerate)
    typer.echo(f"wrote {path}")
