"""The lender's workflows along the paths whose histories are saved for the replay test
(tests/histories/lender/, scripts/export_histories.py): a risk event that freezes a limit, one
that does nothing, and a small portfolio review that continues as new once.

Each is driven through its real door (risk events: the API's use case, `receive_risk_events`,
which records them and starts `LimitActionWorkflow` through the gateway; the review: a start of
`PortfolioReviewWorkflow` for a date, as `appeals schedule trigger` or a backfill starts it)
on a worker built as the real one is (launcher/worker.py `build_worker`), checked against what
it must have done, and returned with every history of its run chain, oldest first.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from enum import StrEnum
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from activities.appeal import AppealActivities
from activities.portfolio_review import PortfolioReviewActivities, RunSummary
from api.risk_events import receive_risk_events
from core.clock import SYSTEM_CLOCK
from core.db import session_scope
from core.db.ledger_tables import AccountStatus, Bill, CreditAccount
from core.ledger.generator import seed_population
from core.lender.review import restricted_account_ids
from core.lender.risk_events import parse_batch
from core.settings import Settings
from gateway.temporal import TemporalGateway
from launcher.worker import build_worker
from tests.factories import make_customer
from workflows.limit_action import LimitActionWorkflow
from workflows.portfolio_review import PortfolioReviewInput, PortfolioReviewWorkflow

REVIEW_DATE = date(2026, 6, 15)
REVIEW_BATCH, REVIEW_BATCHES_PER_RUN = 4, 2  # a run of two batches, then continue-as-new


class LenderPath(StrEnum):
    LIMIT_ACTION_FREEZE = "limit-action-freeze"
    LIMIT_ACTION_NO_ACTION = "limit-action-no-action"
    PORTFOLIO_REVIEW = "portfolio-review"


# The workflow class each path's histories replay with.
WORKFLOW_OF: dict[LenderPath, type] = {
    LenderPath.LIMIT_ACTION_FREEZE: LimitActionWorkflow,
    LenderPath.LIMIT_ACTION_NO_ACTION: LimitActionWorkflow,
    LenderPath.PORTFOLIO_REVIEW: PortfolioReviewWorkflow,
}


@dataclass
class LenderRun:
    path: LenderPath
    workflow_id: str
    histories: list[WorkflowHistory]  # one per run of the chain (continue-as-new), oldest first
    result: Any


async def chain_histories(
    client: Client, workflow_id: str, first_run_id: str | None
) -> list[WorkflowHistory]:
    """Every run's history of a workflow that may have continued as new, oldest first."""
    histories: list[WorkflowHistory] = []
    run_id = first_run_id
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        histories.append(history)
        last = history.events[-1]
        if last.event_type != EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            return histories
        run_id = last.workflow_execution_continued_as_new_event_attributes.new_execution_run_id


def _overdue_event(engine: Engine, event_id: str, days_past_due: int) -> dict[str, Any]:
    customer = make_customer(
        engine, status=AccountStatus.ACTIVE, current_limit_minor=800_000, unpaid_minor=40_000
    )
    with session_scope(engine, read_only=True) as session:
        bill = session.exec(
            select(Bill).where(Bill.account_id == customer.account_id).order_by(col(Bill.due_date).desc())
        ).first()
        assert bill is not None
    return {
        "id": event_id,
        "kind": "bill_overdue",
        "account_id": customer.account_id,
        "occurred_at": SYSTEM_CLOCK.now().isoformat(),
        "bill_due_date": bill.due_date.isoformat(),
        "days_past_due": days_past_due,
    }


async def _limit_action(
    client: Client, settings: Settings, engine: Engine, path: LenderPath, days_past_due: int, outcome: str
) -> LenderRun:
    event = _overdue_event(engine, f"evt-{path.value}", days_past_due)
    result, started = await receive_risk_events(
        engine,
        TemporalGateway(settings, client),
        parse_batch({"events": [event]}),
        received_from="export",
        now=SYSTEM_CLOCK.now(),
    )
    [applied] = result.to_start
    assert applied.workflow_id is not None and started == {event["id"]}
    handle = client.get_workflow_handle_for(LimitActionWorkflow.run, applied.workflow_id)
    done = await handle.result()
    assert done.outcome == outcome, done
    with session_scope(engine, read_only=True) as session:
        account = session.get(CreditAccount, event["account_id"])
        assert account is not None
        frozen = account.status == AccountStatus.FROZEN
    assert frozen == (outcome == "frozen") and (done.notices_sent is True) == (outcome == "frozen")
    return LenderRun(
        path, applied.workflow_id, await chain_histories(client, applied.workflow_id, None), done
    )


async def _portfolio_review(client: Client, settings: Settings, engine: Engine) -> LenderRun:
    with session_scope(engine) as session:
        seed_population(session, 12, 5, today=REVIEW_DATE)
    with session_scope(engine, read_only=True) as session:
        restricted = len(restricted_account_ids(session, after=None, limit=1_000))
    per_run = REVIEW_BATCH * REVIEW_BATCHES_PER_RUN
    assert per_run < restricted <= 2 * per_run, f"{restricted} restricted accounts: not two runs"
    workflow_id = f"portfolio-review-export-{REVIEW_DATE.isoformat()}"
    handle = await client.start_workflow(
        PortfolioReviewWorkflow.run,
        PortfolioReviewInput(
            run_date=REVIEW_DATE, batch_size=REVIEW_BATCH, batches_per_run=REVIEW_BATCHES_PER_RUN
        ),
        id=workflow_id,
        task_queue=settings.temporal_task_queue,
    )
    summary: RunSummary = await client.get_workflow_handle(workflow_id, result_type=RunSummary).result()
    assert summary.counts.examined == restricted and summary.counts.already_decided == 0
    histories = await chain_histories(client, workflow_id, handle.first_execution_run_id)
    assert len(histories) == 2, f"{len(histories)} runs"
    return LenderRun(LenderPath.PORTFOLIO_REVIEW, workflow_id, histories, summary)


async def run_lender_paths(
    client: Client,
    settings: Settings,
    engine: Engine,
    paths: tuple[LenderPath, ...] = tuple(LenderPath),
) -> list[LenderRun]:
    runs: list[LenderRun] = []
    with ThreadPoolExecutor(max_workers=4) as executor:
        appeal = AppealActivities(engine=engine, s3_client=None, settings=settings)
        review = PortfolioReviewActivities(engine=engine, settings=settings)
        async with build_worker(client, settings, appeal, executor, review=review):
            for path in paths:
                if path is LenderPath.LIMIT_ACTION_FREEZE:
                    run = await _limit_action(client, settings, engine, path, 40, "frozen")
                elif path is LenderPath.LIMIT_ACTION_NO_ACTION:
                    run = await _limit_action(client, settings, engine, path, 5, "nothing")
                else:
                    run = await _portfolio_review(client, settings, engine)
                runs.append(run)
    return runs


# -- the saved files (tests/histories/lender/) -------------------------------------------------

LENDER_DIR = "lender"
_FILE = re.compile(r"(?P<path>[a-z-]+?)(?:-run-(?P<run>\d+))?(?:--(?P<tag>[A-Za-z0-9][A-Za-z0-9._-]*))?")


def history_name(path: LenderPath, tag: str | None, run: int, runs: int) -> str:
    """`<path>.json` for a one-run workflow, `<path>-run-<n>.json` for each run of a chain that
    continued as new; `--<tag>` before `.json` for a later export beside the first."""
    stem = path.value if runs == 1 else f"{path.value}-run-{run}"
    return f"{stem}--{tag}.json" if tag else f"{stem}.json"


@dataclass(frozen=True)
class SavedHistory:
    path: LenderPath
    run: int | None  # its place in a continue-as-new chain, None for a one-run workflow
    tag: str | None


def parse_history_name(name: str) -> SavedHistory | None:
    """What a saved file's name says (None: not a lender history's name)."""
    if not name.endswith(".json"):
        return None
    match = _FILE.fullmatch(name.removesuffix(".json"))
    if match is None or match["path"] not in {p.value for p in LenderPath}:
        return None
    return SavedHistory(LenderPath(match["path"]), int(match["run"]) if match["run"] else None, match["tag"])
