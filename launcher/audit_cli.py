"""`appeals audit`: verify the hash-chained audit trail of every appeal (or one)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

import typer
from sqlmodel import Session, col, select

from core.appeals.audit import ChainBreak, verify_chain
from core.db.case_tables import Appeal, AppealEvent
from core.ledger.account_audit import scan_accounts
from core.settings import get_settings
from core.status import AppealStatus

audit_app = typer.Typer(help="The hash-chained audit trail of appeals.", no_args_is_help=True)

# Rows fetched per round trip; only one appeal's events are held at a time.
STREAM_BATCH = 2_000


@dataclass(frozen=True)
class AppealVerdict:
    appeal_id: str
    events: int
    broken: ChainBreak | None


def _verdict(appeal_id: str, status: AppealStatus, events: list[AppealEvent]) -> AppealVerdict:
    if not events:  # every appeal starts with its "submitted" event
        return AppealVerdict(appeal_id, 0, ChainBreak(1, "removed: the appeal has no events (#1 missing)"))
    broken = verify_chain(events)
    if broken is None:
        # The chain cannot show that its newest events were cut off; the projection can:
        # every status change appends an event, so the last one must match the appeal.
        last = next((e for e in reversed(events) if e.to_status is not None), None)
        if last is not None and last.to_status != status:
            tail = events[-1].seq
            broken = ChainBreak(
                tail + 1,
                f"removed: the trail ends at #{tail} and its last status is {last.to_status} "
                f"(#{last.seq}), but the appeal is {status}: its newest events are missing",
            )
    return AppealVerdict(appeal_id, len(events), broken)


def scan_appeals(
    session: Session, *, appeal_id: str | None = None, batch: int = STREAM_BATCH
) -> Iterator[AppealVerdict]:
    """One verdict per appeal, in appeal-id order, streaming the events by (appeal_id, seq).

    The outer join also reports an appeal whose every event was deleted; the appeal's status
    shows newest events that were cut off.
    """
    query = (
        select(Appeal.id, Appeal.status, AppealEvent)
        .outerjoin(AppealEvent, col(AppealEvent.appeal_id) == col(Appeal.id))
        .order_by(col(Appeal.id), col(AppealEvent.seq))
        .execution_options(yield_per=batch)
    )
    if appeal_id is not None:
        query = query.where(col(Appeal.id) == appeal_id)
    current: tuple[str, AppealStatus] | None = None
    events: list[AppealEvent] = []
    for row_appeal_id, status, event in session.exec(query):
        if current is None or row_appeal_id != current[0]:
            if current is not None:
                yield _verdict(*current, events)
            current, events = (row_appeal_id, AppealStatus(status)), []
        if event is not None:
            events.append(event)
    if current is not None:
        yield _verdict(*current, events)


@audit_app.command("verify")
def verify(
    appeal: Annotated[str | None, typer.Option("--appeal", help="Verify only this appeal.")] = None,
    account: Annotated[
        str | None, typer.Option("--account", help="Verify only this credit account's trail.")
    ] = None,
) -> None:
    """Check every event's hash and link; name each changed, removed or reordered event.

    Removed newest events are found when they carried a status change (the appeal's status no
    longer matches the trail); a removed trailing non-status event cannot be detected.

    Without options, every appeal's trail and every credit account's (limit actions, review
    restores: core/ledger/account_audit.py) are verified; `--account` verifies one account's.

    Exit code 0: all intact; 1: at least one trail is broken; 2: no such appeal or account.
    """
    from core.db import make_engine, session_scope

    if appeal is not None and account is not None:
        typer.secho("give --appeal or --account, not both", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    engine = make_engine(get_settings().effective_database_url)
    appeals = events = broken = 0
    accounts = account_events = accounts_broken = 0
    try:
        with session_scope(engine, read_only=True) as session:
            if account is None:
                for verdict in scan_appeals(session, appeal_id=appeal):
                    appeals += 1
                    events += verdict.events
                    if verdict.broken is not None:
                        broken += 1
                        where = f"appeal {verdict.appeal_id}: event #{verdict.broken.seq}"
                        typer.echo(f"{where}: {verdict.broken.problem}")
            if appeal is None:
                for account_verdict in scan_accounts(session, account_id=account):
                    accounts += 1
                    account_events += account_verdict.events
                    if account_verdict.broken is not None:
                        accounts_broken += 1
                        typer.echo(
                            f"account {account_verdict.account_id}: event #{account_verdict.broken.seq}: "
                            f"{account_verdict.broken.problem}"
                        )
    finally:
        engine.dispose()
    if appeal is not None and appeals == 0:
        typer.secho(f"appeal {appeal} was not found", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if account is not None and accounts == 0:
        typer.secho(f"account {account} was not found", fg=typer.colors.RED, err=True)
        raise typer.Exit(2)
    if broken:
        typer.secho(
            f"broken: {broken} of {appeals} appeals ({events} events checked)", fg=typer.colors.RED, err=True
        )
    if accounts_broken:
        typer.secho(
            f"broken: {accounts_broken} of {accounts} accounts ({account_events} events checked)",
            fg=typer.colors.RED,
            err=True,
        )
    if broken or accounts_broken:
        raise typer.Exit(1)
    if account is None:
        typer.echo(f"ok: {appeals} appeals, {events} events")
    if appeal is None and (account is not None or accounts):
        typer.echo(f"ok: {accounts} accounts, {account_events} account events")
