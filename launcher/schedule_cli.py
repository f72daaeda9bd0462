"""`appeals schedule`: the service's Temporal Schedules, the nightly portfolio review
(launcher/review_schedule.py) and the document sweep (launcher/sweep_schedule.py), for this
task queue: list, pause, unpause, trigger, backfill, deploy.

    appeals schedule list
    appeals schedule pause [review|sweep] --note "..."
    appeals schedule trigger [review|sweep]
    appeals schedule backfill --from 2026-11-01 --to 2026-11-07   (the review, one run per date)
    appeals schedule deploy
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated, Any

import typer
from temporalio.client import (
    Client,
    ScheduleActionExecutionStartWorkflow,
    ScheduleBackfill,
    ScheduleDescription,
    ScheduleHandle,
    ScheduleOverlapPolicy,
)
from temporalio.service import RPCError, RPCStatusCode

from core.settings import Settings, get_settings

schedule_app = typer.Typer(
    help="The Temporal Schedules of this task queue: the nightly portfolio review and the document sweep.",
    no_args_is_help=True,
)


class Which(StrEnum):
    REVIEW = "review"
    SWEEP = "sweep"


def schedule_id(which: Which, settings: Settings) -> str:
    from launcher.review_schedule import review_schedule_id
    from launcher.sweep_schedule import sweep_schedule_id

    return review_schedule_id(settings) if which is Which.REVIEW else sweep_schedule_id(settings)


async def deploy_schedules(client: Client, settings: Settings) -> list[str]:
    """Creates both schedules, or updates them to the current code and settings (pauses kept)."""
    from launcher.review_schedule import ensure_review_schedule
    from launcher.sweep_schedule import ensure_sweep_schedule

    review = await ensure_review_schedule(client, settings)
    sweep = await ensure_sweep_schedule(client, settings)
    return [review.id, sweep.id]


def backfill_window(start: date, end: date) -> ScheduleBackfill:
    """Every scheduled time on the days from `start` to `end` (UTC, inclusive), run one after
    another (buffered), whatever the schedule's own overlap policy."""
    return ScheduleBackfill(
        start_at=datetime.combine(start, time.min, UTC),
        end_at=datetime.combine(end + timedelta(days=1), time.min, UTC) - timedelta(seconds=1),
        overlap=ScheduleOverlapPolicy.BUFFER_ALL,
    )


def describe_lines(description: ScheduleDescription) -> list[str]:
    state = description.schedule.state
    info = description.info
    lines = [
        f"{description.id}: {'PAUSED' if state.paused else 'active'}"
        + (f" ({state.note})" if state.paused and state.note else ""),
        f"  next runs: {', '.join(t.isoformat() for t in info.next_action_times[:3]) or 'none'}",
        f"  runs so far: {info.num_actions} (missed {info.num_actions_missed_catchup_window}, "
        f"skipped as overlapping {info.num_actions_skipped_overlap})",
    ]
    for recent in info.recent_actions[-3:]:
        action = recent.action
        workflow_id = action.workflow_id if isinstance(action, ScheduleActionExecutionStartWorkflow) else "?"
        lines.append(f"  ran {recent.scheduled_at.isoformat()}: {workflow_id}")
    return lines


def _date(value: str, name: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date (YYYY-MM-DD)", param_hint=name) from None


def _run(work: Callable[[Client, Settings], Awaitable[Any]]) -> Any:
    from gateway.temporal import connect_temporal

    settings = get_settings()

    async def main() -> Any:
        client = await connect_temporal(settings)
        return await work(client, settings)

    try:
        return asyncio.run(main())
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            typer.secho(
                f"{exc.message}: run `appeals schedule deploy` (or start a worker) first.",
                fg=typer.colors.RED,
                err=True,
            )
            raise typer.Exit(1) from exc
        raise


def _handle(client: Client, which: Which, settings: Settings) -> ScheduleHandle:
    return client.get_schedule_handle(schedule_id(which, settings))


WhichArg = Annotated[Which, typer.Argument(help="Which schedule.")]


@schedule_app.command("list")
def list_schedules() -> None:
    """Both schedules: state, next runs, the last runs."""

    async def work(client: Client, settings: Settings) -> None:
        for which in Which:
            try:
                description = await _handle(client, which, settings).describe()
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                typer.echo(f"{schedule_id(which, settings)}: not deployed (appeals schedule deploy)")
                continue
            for line in describe_lines(description):
                typer.echo(line)

    _run(work)


@schedule_app.command()
def pause(
    which: WhichArg = Which.REVIEW,
    note: Annotated[
        str, typer.Option(help="Why (shown in the Web UI).")
    ] = "paused with appeals schedule pause",
) -> None:
    """Pause a schedule: no run starts until it is unpaused (a worker start keeps the pause)."""
    _run(lambda client, settings: _handle(client, which, settings).pause(note=note))
    typer.echo(f"paused {which.value}")


@schedule_app.command()
def unpause(
    which: WhichArg = Which.REVIEW,
    note: Annotated[str, typer.Option(help="Why.")] = "unpaused with appeals schedule unpause",
) -> None:
    """Unpause a schedule."""
    _run(lambda client, settings: _handle(client, which, settings).unpause(note=note))
    typer.echo(f"unpaused {which.value}")


@schedule_app.command()
def trigger(which: WhichArg = Which.REVIEW) -> None:
    """Start a run now (the review reviews today's date, UTC)."""
    _run(lambda client, settings: _handle(client, which, settings).trigger())
    typer.echo(f"triggered {which.value}: see `appeals schedule list` or the Web UI")


@schedule_app.command()
def backfill(
    start: Annotated[str, typer.Option("--from", help="First date (YYYY-MM-DD, UTC).")],
    end: Annotated[str, typer.Option("--to", help="Last date (YYYY-MM-DD, UTC), inclusive.")],
) -> None:
    """Run the portfolio review for each date in a range, one after another. A date already
    reviewed finds every account decided and does nothing twice."""
    first, last = _date(start, "--from"), _date(end, "--to")
    if last < first:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    _run(
        lambda client, settings: _handle(client, Which.REVIEW, settings).backfill(
            backfill_window(first, last)
        )
    )
    typer.echo(f"backfill of the portfolio review from {first} to {last} requested")


@schedule_app.command()
def deploy() -> None:
    """Create both schedules, or bring them up to date (an operator's pause is kept)."""
    ids = _run(deploy_schedules)
    for deployed in ids:
        typer.echo(f"deployed {deployed}")
