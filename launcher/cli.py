"""The `appeals` command."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import signal
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer

from core.auth import Role, mint_token
from core.logs import configure_logging
from core.settings import Settings, get_settings
from launcher.audit_cli import audit_app
from launcher.config_cli import config_app, settings_or_exit
from launcher.db_cli import db_app
from launcher.ledger_cli import ledger_app
from launcher.policy_cli import policy_app
from launcher.schedule_cli import schedule_app

if TYPE_CHECKING:
    from launcher.dev import DevStack, Notice

app = typer.Typer(
    help="Limit-restore appeals: local stack, worker, API and dev tools.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


app.add_typer(policy_app, name="policy")
app.add_typer(audit_app, name="audit")
app.add_typer(ledger_app, name="ledger")
app.add_typer(schedule_app, name="schedule")
app.add_typer(db_app, name="db")
app.add_typer(config_app, name="config")

# Commands that run without the service's settings: a bad APPEALS_* must not stop the tools that
# describe or check them.
WITHOUT_SETTINGS = {"config", "payload-key", "demo-documents"}


@app.callback()
def _settings_first(ctx: typer.Context) -> None:
    """Every other command loads the settings first: one refused is one line and exit 78, never a
    traceback halfway through starting."""
    if ctx.invoked_subcommand not in WITHOUT_SETTINGS:
        settings_or_exit()


def _from_settings(field: str) -> str:
    """How a default taken from the settings reads in --help: its variable, then its value."""
    return f"APPEALS_{field.upper()} or {Settings.model_fields[field].default}"


SETTINGS_NOTE = (
    "Settings come from APPEALS_* environment variables or a .env file "
    "(core/settings.py), e.g. APPEALS_TEMPORAL_ADDRESS, APPEALS_DATABASE_URL, APPEALS_S3_ENDPOINT_URL."
)


def _logging(settings: Settings) -> None:
    """The worker's and the codec server's logging; the API's is the same, applied by uvicorn
    in each of its processes (core/logs.py)."""
    configure_logging(settings.log_format, settings.log_level)


@app.command()
def dev(
    api_port: Annotated[
        int | None, typer.Option(help="API port.", show_default=_from_settings("api_port"))
    ] = None,
    temporal_port: Annotated[int, typer.Option(help="Temporal dev server gRPC port.")] = 7233,
    ui_port: Annotated[
        int | None,
        typer.Option(help="Temporal Web UI port.", show_default=_from_settings("temporal_ui_port")),
    ] = None,
    s3_port: Annotated[
        int | None,
        typer.Option(help="Local S3 server (moto) port.", show_default=_from_settings("s3_port")),
    ] = None,
    smtp_port: Annotated[
        int | None,
        typer.Option(
            help="Local SMTP sink port (mail lands in .data/mail/).",
            show_default=_from_settings("smtp_port"),
        ),
    ] = None,
    codec_port: Annotated[
        int | None,
        typer.Option(
            help="Codec server port (the Web UI decodes payloads there).",
            show_default=_from_settings("codec_server_port"),
        ),
    ] = None,
    seed: Annotated[bool, typer.Option(help="Load the demo ledger.")] = True,
) -> None:
    """Start the whole local stack in the foreground; Ctrl-C stops all of it.

    A port that is taken is reported by name. A part that dies later is reported (exit code and
    log) and started again, after 1 s, 2 s, 4 s ... up to 30 s while it keeps dying."""
    from launcher.dev import DevStack
    from launcher.stack import StackError

    base = get_settings()
    api_port = api_port or base.api_port
    ui_port = ui_port or base.temporal_ui_port
    s3_port = s3_port or base.s3_port
    settings = base.model_copy(
        update={
            "api_port": api_port,
            "temporal_ui_port": ui_port,
            "s3_port": s3_port,
            "smtp_port": smtp_port or base.smtp_port,
            "temporal_address": f"{base.api_host}:{temporal_port}",
            "s3_endpoint_url": f"http://{base.api_host}:{s3_port}",
        }
    )
    stack = DevStack(
        settings,
        temporal_port=temporal_port,
        ui_port=ui_port,
        s3_port=s3_port,
        api_port=api_port,
        codec_port=codec_port or base.codec_server_port,
        seed=seed,
    )

    def _stop(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    typer.echo(f"Starting the local stack (logs in {stack.logs}/) ...")
    try:
        stack.start()
        _print_banner(stack)
        # Runs until Ctrl-C or SIGTERM; a part that dies is started again, never the end of it.
        stack.supervisor(report=_print_notice).run()
    except KeyboardInterrupt:
        typer.echo("\nStopping ...")
    except StackError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc
    finally:
        # A second Ctrl-C or SIGTERM must not cut the shutdown short and orphan processes.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stack.stop()
    typer.echo("Stopped.")


def _print_notice(notice: Notice) -> None:
    """A supervisor's notice, with the local time: failures in red on stderr."""
    line = f"[{notice.at.astimezone():%H:%M:%S}] {notice.text}"
    if notice.loud:
        typer.secho(line, fg=typer.colors.RED, bold=True, err=True)
    else:
        typer.secho(line, fg=typer.colors.GREEN)


def _print_banner(stack: object) -> None:
    from launcher.dev import DevStack

    assert isinstance(stack, DevStack)
    typer.echo(banner(stack))


def banner(stack: DevStack) -> str:
    """What `appeals dev` prints once every part is up: where things are and how to start."""
    from core.seed import DEMO_CUSTOMERS

    settings = stack.settings
    # The address a person types; the API listens on the loopback address behind it.
    home = (
        f"http://localhost:{stack.api_port}/"
        if stack.host in ("127.0.0.1", "localhost")
        else f"{stack.api_url}/"
    )
    tokens = {
        "customer (c-1001)": mint_token(settings, role=Role.CUSTOMER, subject="c-1001"),
        "reviewer (r-1)": mint_token(settings, role=Role.REVIEWER, subject="r-1"),
        "admin (a-1)": mint_token(settings, role=Role.ADMIN, subject="a-1"),
    }
    lines = [
        "",
        "Limit-restore appeals is running:",
        f"  Web pages      {home}  (customer portal {home}app, reviewer console {home}review,",
        f"                 supervisor dashboard {home}dashboard; sign in as a demo customer or staff)",
        f"  API            {stack.api_url}   (OpenAPI: {stack.api_url}/docs)",
        f"  Temporal UI    http://{stack.public_host}:{stack.ui_port}/namespaces/{settings.temporal_namespace}/workflows",
        f"  Codec server   {stack.codec_url}  (payloads are encrypted; the UI decodes them here for",
        "                 staff: sign in to the web pages as staff, then in the UI's codec settings",
        "                 use the browser setting with this endpoint and tick",
        "                 'Include cross-origin credentials')",
        f"  Temporal gRPC  {settings.temporal_address}",
        f"  S3 endpoint    {settings.s3_endpoint_url}  (bucket {settings.s3_bucket})",
        f"  Database       {settings.effective_database_url}",
        f"  Mail (SMTP)    {settings.smtp_host}:{settings.smtp_port} -> {stack.mail_dir}/*.eml",
        *[
            f"  {'Metrics' if i == 0 else '':<14} {url}  ({what}{'; docs/metrics.md' if i == 0 else ''})"
            for i, (what, url) in enumerate(stack.metrics_urls.items())
        ],
        "",
        "Demo customers:",
        *[
            f"  {d.customer_id}  acct-{d.customer_id[2:]}  {d.account_status.value:<8} {d.story}"
            for d in DEMO_CUSTOMERS
        ],
        "",
        "Dev tokens (12 h; mint more with `appeals token --role ROLE --sub ID`):",
        *[f"  {who}: {token}" for who, token in tokens.items()],
        "",
        "Try:",
        f"  curl -s -X POST {stack.api_url}/appeals \\",
        f"       -H 'Authorization: Bearer {tokens['customer (c-1001)']}' \\",
        "       -H 'Content-Type: application/json' \\",
        '       -d \'{"account_id": "acct-1001", "requested_limit_minor": 800000}\'',
        "",
        "A part that dies is reported here and started again; press Ctrl-C to stop everything.",
        "",
        f"Open {home} in a browser.",
    ]
    return "\n".join(lines)


@app.command(
    epilog=SETTINGS_NOTE,
    help="Run one Temporal worker against existing services (Temporal, database, S3, SMTP).\n\n"
    "It takes no options: it reads the same settings as `appeals api`, so both agree on the Temporal "
    "address, namespace and task queue (APPEALS_TEMPORAL_TASK_QUEUE), the database and the S3 bucket. "
    "Run several for more throughput; Ctrl-C stops it.",
)
def worker() -> None:
    """Run one Temporal worker against existing services."""
    from launcher.worker import run_worker, stop_on_signals

    settings = get_settings()
    _require_payload_keys(settings)
    _require_schema(settings)
    _logging(settings)

    async def _run() -> None:
        stop = asyncio.Event()
        stop_on_signals(stop)
        await run_worker(settings, stop=stop)

    # SIGTERM and Ctrl-C stop it gracefully (exit 0); a second Ctrl-C cuts that short.
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_run())


def _require_schema(settings: Settings) -> None:
    from core.db import make_engine
    from launcher.db_cli import require_schema

    engine = make_engine(settings.effective_database_url)
    try:
        require_schema(engine)
    finally:
        engine.dispose()


def _require_payload_keys(settings: Settings) -> None:
    """Stops the command, saying why, when its payload keys are missing (in production) or
    unusable (gateway/codec.py)."""
    from gateway.codec import PayloadKeyError, payload_codec

    try:
        payload_codec(settings)
    except PayloadKeyError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(1) from exc


@app.command(epilog=SETTINGS_NOTE)
def api(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to listen on.", show_default=_from_settings("api_host")),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on.", show_default=_from_settings("api_port"))
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Worker processes (each its own event loop, DB pool and clients); about one per core.",
            show_default=_from_settings("api_workers"),
        ),
    ] = None,
) -> None:
    """Run the HTTP API (uvicorn) against existing services; OpenAPI docs at /docs.

    SIGTERM stops it gracefully: readiness answers 503 for APPEALS_API_SHUTDOWN_DRAIN_SECONDS, then
    requests in flight get APPEALS_API_GRACEFUL_SHUTDOWN_SECONDS to finish (launcher/api_server.py)."""
    from launcher.api_server import serve_api
    from launcher.metrics_dir import prepare_api_metrics_dir

    settings = get_settings()
    _require_payload_keys(settings)
    _require_schema(settings)
    # Before uvicorn starts a process: each one writes its request counts there, and /metrics
    # sums them all, whichever process answers the scrape (api/metrics.py).
    port = port or settings.api_port
    prepare_api_metrics_dir(settings, port)
    serve_api(
        settings,
        host=host or settings.api_host,
        port=port,
        workers=workers or settings.api_workers,
    )


@app.command("codec-server", epilog=SETTINGS_NOTE)
def codec_server(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to listen on.", show_default=_from_settings("api_host")),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="Port to listen on.", show_default=_from_settings("codec_server_port")),
    ] = None,
) -> None:
    """Run the codec server the Temporal Web UI decodes payloads with: POST /decode and /encode,
    for staff tokens only (APPEALS_PAYLOAD_KEYS, APPEALS_CODEC_SERVER_CORS_ORIGINS)."""
    from launcher.codec_server import run_codec_server

    settings = get_settings()
    _require_payload_keys(settings)
    if not settings.payload_keys:
        typer.secho(
            "error: the codec server needs the payload keys the clients encrypt with "
            "(APPEALS_PAYLOAD_KEYS); `appeals dev` makes and passes its own.",
            fg=typer.colors.RED,
            err=True,
        )
        raise typer.Exit(1)
    _logging(settings)
    run_codec_server(settings, host=host or settings.api_host, port=port or settings.codec_server_port)


@app.command("payload-key")
def payload_key(
    key_id: Annotated[str, typer.Option("--id", help="The key's id, stored in every payload it encrypts.")],
) -> None:
    """Print a new payload encryption key (AES-256, base64) as an APPEALS_PAYLOAD_KEYS entry.

    To rotate: add the new entry beside the old ones, set APPEALS_PAYLOAD_KEY_ID to its id on every
    client, worker and codec server, and keep the old ids while histories they wrote may be read."""
    from gateway.codec import PayloadKeyError, new_key, parse_key

    key = new_key()
    try:
        parse_key(key_id, key)
    except PayloadKeyError as exc:
        raise typer.BadParameter(str(exc), param_hint="--id") from exc
    typer.echo(json.dumps({key_id: key}))


@app.command()
def token(
    role: Annotated[
        Role,
        typer.Option(
            help=f"Who the token is for: {Role.CUSTOMER.value}, or staff: "
            + ", ".join(r.value for r in Role if r is not Role.CUSTOMER)
            + "."
        ),
    ],
    sub: Annotated[
        str,
        typer.Option(help="Subject: the customer id for a customer (c-1002), a staff id for staff (r-1)."),
    ],
) -> None:
    """Mint a development bearer token (valid APPEALS_JWT_TTL, 12 hours by default)."""
    typer.echo(mint_token(get_settings(), role=role, subject=sub))


@app.command()
def seed(
    customers: Annotated[int, typer.Option(min=0, help="Generated customers besides the 4 demo ones.")] = 60,
    seed: Annotated[int, typer.Option(help="Generator seed: the same seed gives the same people.")] = 42,
    statements_dir: Annotated[
        Path | None, typer.Option(help="Write each one's bank statement ({id}-statement.csv) here.")
    ] = None,
    today: Annotated[str | None, typer.Option(help="Generate as of this date (YYYY-MM-DD).")] = None,
) -> None:
    """Load the demo ledger and a generated population into the configured database (idempotent)."""
    from launcher.ledger_cli import seed_command

    settings: Settings = get_settings()
    seed_command(settings, customers=customers, seed=seed, statements_dir=statements_dir, today=today)


@app.command("demo-documents")
def demo_documents(
    out: Annotated[Path, typer.Option(help="Folder to write the files into.")] = Path("."),
    name: Annotated[str, typer.Option(help="Name printed on the credit report.")] = "Li Wei",
    customer: Annotated[
        str, typer.Option(help="Customer id: each gets a statement of their own.")
    ] = "c-1002",
    today: Annotated[
        str | None, typer.Option(help="Date the documents are made on (YYYY-MM-DD).", show_default="today")
    ] = None,
) -> None:
    """Write a 3-month bank statement (CSV) and a credit report (text) for the walkthrough."""
    from core.clock import SYSTEM_CLOCK
    from core.demo_documents import credit_report_text, statement_csv
    from launcher.ledger_cli import date_option

    on = date_option(today, SYSTEM_CLOCK)
    out.mkdir(parents=True, exist_ok=True)
    seed = int.from_bytes(hashlib.sha256(customer.encode()).digest()[:4], "big")
    (out / "statement.csv").write_bytes(statement_csv(on, seed=seed))
    (out / "credit-report.txt").write_bytes(credit_report_text(name, on))
    typer.echo(f"wrote {out / 'statement.csv'} and {out / 'credit-report.txt'}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
