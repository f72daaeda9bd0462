"""The worker's reconciler on the real Temporal dev server, S3 server and databases: a file
whose signal was lost is checked all the same (signalled again, with backoff, not every pass),
an appeal whose start was lost is started, and a file left unchecked on an appeal that moved on
is checked and recorded on the appeal's audit trail."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import Client

from core.appeals.audit import appeal_events, verify_chain
from core.appeals.service import NewAppeal, create_appeal
from core.clock import SYSTEM_CLOCK, FixedClock
from core.db import session_scope
from core.db.case_tables import Appeal, Document, DocumentState
from core.settings import Settings
from core.status import AppealStatus
from core.storage import make_s3_client
from gateway.temporal import TemporalGateway
from launcher.mail import start_smtp_sink
from launcher.reconciler import Reconciler, ResendSchedule
from launcher.stack import free_port
from tests.documents import recent_statement_csv
from tests.eventually import eventually
from tests.factories import make_customer
from tests.workflows.conftest import running_worker, start_appeal
from tests.workflows.test_review_update import wait_status

ASYNC = pytest.mark.asyncio(loop_scope="session")


def _store_without_signal(
    settings: Settings, engine: Engine, s3: Any, appeal_id: str, customer_id: str
) -> str:
    """An upload whose signal never left: the S3 object and the UPLOADED row only."""
    document_id = str(uuid.uuid4())
    key = f"appeals/{appeal_id}/{document_id}"
    s3.put_object(Bucket=settings.s3_bucket, Key=key, Body=recent_statement_csv(), ContentType="text/csv")
    with session_scope(engine) as session:
        session.add(
            Document(
                id=document_id,
                appeal_id=appeal_id,
                customer_id=customer_id,
                doc_type="BANK_STATEMENT",
                s3_key=key,
                filename="statement.csv",
                declared_content_type="text/csv",
            )
        )
    return document_id


def _state(engine: Engine, document_id: str) -> DocumentState:
    with session_scope(engine, read_only=True) as session:
        document = session.get(Document, document_id)
        assert document is not None
        return DocumentState(document.state)


def test_resend_schedule_backs_off_and_forgets() -> None:
    start = SYSTEM_CLOCK.now()
    schedule = ResendSchedule(first=timedelta(seconds=10), longest=timedelta(seconds=35))
    assert schedule.due("a", start)
    sent_at = start
    for delay in (10, 20, 35, 35):
        schedule.sent("a", sent_at)
        assert not schedule.due("a", sent_at + timedelta(seconds=delay - 1))
        assert schedule.due("a", sent_at + timedelta(seconds=delay))
        sent_at += timedelta(seconds=delay)
    schedule.keep_only(set())
    assert schedule.due("a", start)


@ASYNC
async def test_a_file_whose_signal_was_lost_is_checked(
    temporal_client: Client, settings: Settings, engine: Engine
) -> None:
    s3 = make_s3_client(settings)
    customer = make_customer(engine)
    async with running_worker(temporal_client, settings, engine, s3):
        handle = await start_appeal(
            temporal_client, settings, engine, customer.customer_id, customer.account_id
        )
        appeal_id = handle.id.removeprefix("appeal-")
        await wait_status(engine, appeal_id, AppealStatus.AWAITING_DOCUMENTS)
        document_id = _store_without_signal(settings, engine, s3, appeal_id, customer.customer_id)

        clock = FixedClock(SYSTEM_CLOCK.now())
        reconciler = Reconciler(
            engine, TemporalGateway(settings, temporal_client), settings, s3_client=s3, clock=clock
        )
        assert (await reconciler.run_once()).signalled == 0  # within the grace: the API's may come
        clock.set(SYSTEM_CLOCK.now() + timedelta(seconds=11))
        assert (await reconciler.run_once()).signalled == 1
        assert (await reconciler.run_once()).signalled == 0  # sent: not again on the next pass
        await eventually(
            lambda: _state(engine, document_id),
            lambda state: state in (DocumentState.ACCEPTED, DocumentState.REJECTED),
            what="the file to be checked",
        )


@ASYNC
async def test_an_appeal_whose_start_was_lost_is_started(
    temporal_client: Client, settings: Settings, engine: Engine
) -> None:
    customer = make_customer(engine)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(customer.customer_id, customer.account_id, 800_000))
    clock = FixedClock(SYSTEM_CLOCK.now() + timedelta(seconds=11))
    reconciler = Reconciler(engine, TemporalGateway(settings, temporal_client), settings, clock=clock)
    async with running_worker(temporal_client, settings, engine):
        assert (await reconciler.run_once()).started == 1
        await wait_status(engine, appeal.id, AppealStatus.AWAITING_DOCUMENTS)
    with session_scope(engine, read_only=True) as session:
        started = session.get(Appeal, appeal.id)
        assert started is not None and started.workflow_started


@ASYNC
async def test_a_file_left_unchecked_on_an_appeal_that_moved_on_is_checked_and_recorded(
    temporal_client: Client, settings: Settings, engine: Engine
) -> None:
    s3 = make_s3_client(settings)
    customer = make_customer(engine)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(customer.customer_id, customer.account_id, 800_000))
        appeal.workflow_started = True  # no workflow: only the reconciler acts here
        appeal.status = AppealStatus.PENDING_REVIEW
        session.add(appeal)
    document_id = _store_without_signal(settings, engine, s3, appeal.id, customer.customer_id)
    clock = FixedClock(SYSTEM_CLOCK.now() + timedelta(seconds=11))
    reconciler = Reconciler(
        engine, TemporalGateway(settings, temporal_client), settings, s3_client=s3, clock=clock
    )
    assert (await reconciler.run_once()).checked_late == 1
    assert _state(engine, document_id) in (DocumentState.ACCEPTED, DocumentState.REJECTED)
    with session_scope(engine, read_only=True) as session:
        events = appeal_events(session, appeal.id)
        late = [event for event in events if event.kind == "document_checked_late"]
        assert [event.details["document_id"] for event in late] == [document_id]
        assert late[0].details["appeal_status"] == "PENDING_REVIEW"
        assert verify_chain(events) is None
        assert session.exec(select(Document).where(Document.appeal_id == appeal.id)).one().id == document_id
    assert (await reconciler.run_once()).checked_late == 0  # checked once


@ASYNC
async def test_a_start_retried_after_the_run_ended_does_not_run_the_appeal_again(
    temporal_client: Client, settings: Settings, engine: Engine
) -> None:
    """The API's start reached Temporal but its answer did not come back in time, so the row
    still says not started; by the time the reconciler retries, that run has ended. The appeal
    runs once (seen in the chaos harness: a CLOSED appeal with a second, running workflow)."""
    from temporalio.client import WorkflowExecutionStatus

    customer = make_customer(engine)
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(customer.customer_id, customer.account_id, 800_000))
    gateway = TemporalGateway(settings, temporal_client)
    async with running_worker(temporal_client, settings, engine):
        await gateway.start_appeal(appeal)  # the start whose answer was lost
        await wait_status(engine, appeal.id, AppealStatus.AWAITING_DOCUMENTS)
    handle = temporal_client.get_workflow_handle(f"appeal-{appeal.id}")
    await handle.terminate("the run ended")
    reconciler = Reconciler(
        engine, gateway, settings, clock=FixedClock(SYSTEM_CLOCK.now() + timedelta(seconds=11))
    )
    assert (await reconciler.run_once()).started == 1
    description = await handle.describe()
    assert description.status == WorkflowExecutionStatus.TERMINATED
    with session_scope(engine, read_only=True) as session:
        row = session.get(Appeal, appeal.id)
        assert row is not None and row.workflow_started


@ASYNC
async def test_a_limit_action_the_api_could_not_start_is_started(
    temporal_client: Client, settings: Settings, engine: Engine
) -> None:
    """The API recorded a risk event while Temporal was unreachable: the reconciler starts its
    limit-action workflow once the grace period has passed, and only once."""
    from activities.limit_action import LimitActionDone
    from core.db.ledger_tables import AccountStatus, Bill, CreditAccount
    from core.db.lender_tables import RiskEvent
    from core.lender.risk_events import parse_batch, record_batch

    customer = make_customer(
        engine, status=AccountStatus.ACTIVE, current_limit_minor=800_000, unpaid_minor=40_000
    )
    with session_scope(engine) as session:
        bill = session.exec(select(Bill).where(Bill.account_id == customer.account_id)).all()[-1]
        event = {
            "id": f"evt-{uuid.uuid4().hex[:8]}",
            "kind": "bill_overdue",
            "account_id": customer.account_id,
            "occurred_at": SYSTEM_CLOCK.now().isoformat(),
            "bill_due_date": bill.due_date.isoformat(),
            "days_past_due": 40,
        }
        result = record_batch(
            session, parse_batch({"events": [event]}), received_from="signature", now=SYSTEM_CLOCK.now()
        )
    workflow_id = result.outcomes[0].workflow_id
    assert workflow_id is not None
    clock = FixedClock(SYSTEM_CLOCK.now() + timedelta(seconds=11))
    reconciler = Reconciler(engine, TemporalGateway(settings, temporal_client), settings, clock=clock)
    async with running_worker(temporal_client, settings, engine):
        assert (await reconciler.run_once()).limit_actions_started == 1
        done = await temporal_client.get_workflow_handle(workflow_id, result_type=LimitActionDone).result()
        assert done.outcome == "frozen"
        assert (await reconciler.run_once()).limit_actions_started == 0
    with session_scope(engine, read_only=True) as session:
        row = session.get(RiskEvent, event["id"])
        account = session.get(CreditAccount, customer.account_id)
        assert row is not None and row.action_started_at is not None
        assert account is not None and account.status is AccountStatus.FROZEN


async def test_an_account_notice_left_unsent_is_relayed(
    temporal_client: Client, settings: Settings, engine: Engine
) -> None:
    """A limit action's notice whose sending step died (PENDING rows) is sent by the relay,
    as an appeal's would be; the in-app row needs no sending."""
    from core.db.ledger_tables import AccountStatus, Customer
    from core.db.lender_tables import AccountNotice
    from core.notifications.account_notices import plan_account_notices

    c = make_customer(engine, status=AccountStatus.ACTIVE, current_limit_minor=800_000)
    now = SYSTEM_CLOCK.now()
    with session_scope(engine) as session:
        customer = session.get(Customer, c.customer_id)
        assert customer is not None
        customer.email = f"{c.customer_id}@example.com"
        session.add(customer)
    with session_scope(engine) as session:
        ids = plan_account_notices(
            session,
            account_id=c.account_id,
            kind="limit_frozen",
            key=f"relay-{c.account_id}",
            context={
                "from_limit_minor": 800_000,
                "to_limit_minor": 0,
                "reason": {"code": "RC_OVERDUE_30_DAYS", "en": "Overdue.", "zh-CN": "逾期。"},
                "decided_on": now.date(),
                "appeal_from": now.date(),
                "amount_owed_minor": 40_000,
            },
            at=now,
        )
    port = free_port()
    mail_dir = settings.data_dir / f"relay-{c.customer_id}"
    sink = start_smtp_sink(host="127.0.0.1", port=port, mail_dir=mail_dir, log_path=mail_dir / "smtp.log")
    try:
        relay_settings = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port})
        reconciler = Reconciler(engine, TemporalGateway(relay_settings, temporal_client), relay_settings)
        assert (await reconciler.run_once()).relayed >= 1
    finally:
        sink.stop()
    with session_scope(engine, read_only=True) as session:
        rows = session.exec(select(AccountNotice).where(col(AccountNotice.id).in_(ids))).all()
        assert {(r.channel, r.status) for r in rows} == {("IN_APP", "SENT"), ("EMAIL", "SENT")}
    assert len(list(mail_dir.rglob("*.eml"))) == 1
