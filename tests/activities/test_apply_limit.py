"""Applying the decided limit through an external credit-line API: a real local HTTP server
stands in for it. The activity is called directly, then a whole appeal runs on the dev server."""

from __future__ import annotations

import asyncio
import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import select
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from activities.appeal import AppealActivities
from activities.types import ApplyLimitInput
from core.appeals.service import NewAppeal, create_appeal
from core.db import session_scope
from core.db.case_tables import Appeal
from core.db.ledger_tables import AccountStatus, CreditAccount, LimitEvent, LimitEventKind
from core.settings import Settings
from core.status import AppealStatus
from core.storage import ensure_bucket, make_s3_client
from tests.conftest import make_settings
from tests.documents import recent_statement_csv
from tests.eventually import patience
from tests.factories import LedgerCustomer, make_customer
from tests.workflows.conftest import running_worker, start_appeal
from tests.workflows.test_review_update import upload_documents, wait_status
from workflows.search_attributes import APPEAL_STATUS


@dataclass
class FakeCreditLineApi:
    """Answers with the scripted statuses in turn (then 200) and, like a real API, applies a
    change once per Idempotency-Key."""

    url: str = ""
    script: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    requests: list[dict[str, Any]] = field(default_factory=list)
    applied: dict[str, dict[str, Any]] = field(default_factory=dict)


@pytest.fixture
def credit_line_api() -> Iterator[FakeCreditLineApi]:
    api = FakeCreditLineApi()
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            key = self.headers.get("Idempotency-Key")
            with lock:
                api.requests.append(
                    {"path": self.path, "key": key, "auth": self.headers.get("Authorization"), "body": body}
                )
                status, answer = api.script.pop(0) if api.script else (200, {"status": "applied"})
                if status == 200 and key is not None:
                    api.applied.setdefault(key, body)
            raw = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    api.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()


AT = datetime(2026, 11, 30, 12, tzinfo=UTC)  # the workflow's time of the step


def _appeal(engine: Engine, customer: LedgerCustomer) -> str:
    with session_scope(engine) as session:
        appeal, _ = create_appeal(session, NewAppeal(customer.customer_id, customer.account_id, 700_000))
        return appeal.id


def _events(engine: Engine, appeal_id: str) -> list[LimitEvent]:
    with session_scope(engine, read_only=True) as session:
        return list(session.exec(select(LimitEvent).where(LimitEvent.appeal_id == appeal_id)).all())


def _account(engine: Engine, account_id: str) -> CreditAccount:
    with session_scope(engine, read_only=True) as session:
        account = session.get(CreditAccount, account_id)
        assert account is not None
        return account


def test_retried_apply_sends_one_decision_with_its_key_and_mirrors_it_once(
    engine: Engine, tmp_path: Path, credit_line_api: FakeCreditLineApi
) -> None:
    customer = make_customer(engine)
    appeal_id = _appeal(engine, customer)
    settings = make_settings(
        tmp_path, credit_line_api_url=credit_line_api.url, credit_line_api_token="api-token"
    )
    activities = AppealActivities(engine=engine, s3_client=None, settings=settings)
    credit_line_api.script = [(500, {"error": "try again"})]
    inp = ApplyLimitInput(appeal_id=appeal_id, at=AT, notice_seq=1, new_limit_minor=600_000)

    with pytest.raises(ApplicationError) as info:
        activities.apply_limit(inp)  # the 500: retryable, nothing recorded
    assert info.value.type == "CreditLineUnavailable" and not info.value.non_retryable
    assert _events(engine, appeal_id) == []

    activities.apply_limit(inp)  # Temporal's retry
    activities.apply_limit(inp)  # a retry after success (say, the completion was lost)

    key = f"limit-restore:{appeal_id}"
    # The failed attempt and the accepted one; the retry after success sent nothing.
    assert [r["key"] for r in credit_line_api.requests] == [key, key]
    request = credit_line_api.requests[-1]
    assert request["path"] == f"/credit-lines/{customer.account_id}/limit"
    assert request["auth"] == "Bearer api-token"
    assert request["body"] == {
        "account_id": customer.account_id,
        "new_limit_minor": 600_000,
        "currency": "CNY",
        "reason": "appeal_approved",
        "appeal_id": appeal_id,
    }
    assert list(credit_line_api.applied) == [key]
    [event] = _events(engine, appeal_id)
    assert event.kind == LimitEventKind.RESTORE and event.source == "credit-line-api"
    assert event.to_limit_minor == 600_000
    account = _account(engine, customer.account_id)
    # Below the original 800,000 the account stays REDUCED (it may be appealed again).
    assert account.current_limit_minor == 600_000 and account.status == AccountStatus.REDUCED


@pytest.mark.parametrize("status", [409, 422])
def test_a_refusal_is_permanent_and_changes_nothing(
    sqlite_engine: Engine, tmp_path: Path, credit_line_api: FakeCreditLineApi, status: int
) -> None:
    customer = make_customer(sqlite_engine)
    appeal_id = _appeal(sqlite_engine, customer)
    settings = make_settings(tmp_path, credit_line_api_url=credit_line_api.url)
    activities = AppealActivities(engine=sqlite_engine, s3_client=None, settings=settings)
    credit_line_api.script = [(status, {"error": "credit line closed"})]
    with pytest.raises(ApplicationError) as info:
        activities.apply_limit(
            ApplyLimitInput(appeal_id=appeal_id, at=AT, notice_seq=1, new_limit_minor=600_000)
        )
    assert info.value.type == "LimitRefused" and info.value.non_retryable
    assert info.value.details[0]["status_code"] == status
    assert "credit line closed" in info.value.details[0]["body"]
    assert credit_line_api.requests[0]["auth"] is None  # no token configured
    assert _events(sqlite_engine, appeal_id) == []
    assert _account(sqlite_engine, customer.account_id).current_limit_minor == 0


def test_an_unreachable_api_is_retryable(sqlite_engine: Engine, tmp_path: Path) -> None:
    customer = make_customer(sqlite_engine)
    appeal_id = _appeal(sqlite_engine, customer)
    settings = make_settings(
        tmp_path, credit_line_api_url="http://127.0.0.1:9", credit_line_api_timeout_seconds=2
    )
    activities = AppealActivities(engine=sqlite_engine, s3_client=None, settings=settings)
    with pytest.raises(ApplicationError) as info:
        activities.apply_limit(
            ApplyLimitInput(appeal_id=appeal_id, at=AT, notice_seq=1, new_limit_minor=600_000)
        )
    assert info.value.type == "CreditLineUnavailable" and not info.value.non_retryable
    assert _events(sqlite_engine, appeal_id) == []


# -- a whole appeal on the dev server ------------------------------------------------------------


def _api_settings(tmp_path: Path, s3_endpoint: str, api: FakeCreditLineApi) -> Settings:
    settings = make_settings(tmp_path, s3_endpoint_url=s3_endpoint, credit_line_api_url=api.url)
    ensure_bucket(make_s3_client(settings), settings.s3_bucket)
    return settings


async def _auto_approved_appeal(
    client: Client, settings: Settings, engine: Engine, customer: LedgerCustomer
) -> Any:
    s3 = make_s3_client(settings)
    handle = await start_appeal(client, settings, engine, customer.customer_id, customer.account_id)
    appeal_id = handle.id.removeprefix("appeal-")
    await wait_status(engine, appeal_id, AppealStatus.AWAITING_DOCUMENTS)
    statement = recent_statement_csv(seed=random.randrange(10_000, 10**9))
    await upload_documents(
        handle,
        settings,
        engine,
        s3,
        customer.customer_id,
        appeal_id,
        documents=(("BANK_STATEMENT", statement, "text/csv"),),
    )
    return handle


@pytest.mark.asyncio(loop_scope="session")
async def test_a_transient_failure_is_retried_and_the_limit_applied_once(
    temporal_client: Client,
    sqlite_engine: Engine,
    tmp_path: Path,
    s3_endpoint: str,
    credit_line_api: FakeCreditLineApi,
) -> None:
    settings = _api_settings(tmp_path, s3_endpoint, credit_line_api)
    credit_line_api.script = [(503, {"error": "maintenance"})]
    customer = make_customer(sqlite_engine)
    async with running_worker(temporal_client, settings, sqlite_engine, make_s3_client(settings)):
        handle = await _auto_approved_appeal(temporal_client, settings, sqlite_engine, customer)
        result = await asyncio.wait_for(handle.result(), patience(90))
    appeal_id = handle.id.removeprefix("appeal-")
    assert result.status == AppealStatus.CLOSED and result.decided_limit_minor
    key = f"limit-restore:{appeal_id}"
    assert [r["key"] for r in credit_line_api.requests] == [key, key]
    assert list(credit_line_api.applied) == [key]
    [event] = _events(sqlite_engine, appeal_id)
    assert event.source == "credit-line-api" and event.to_limit_minor == result.decided_limit_minor


@pytest.mark.asyncio(loop_scope="session")
async def test_a_refused_limit_leaves_the_appeal_in_limit_apply_failed(
    temporal_client: Client,
    sqlite_engine: Engine,
    tmp_path: Path,
    s3_endpoint: str,
    credit_line_api: FakeCreditLineApi,
) -> None:
    settings = _api_settings(tmp_path, s3_endpoint, credit_line_api)
    credit_line_api.script = [(409, {"error": "credit line is closed"})]
    customer = make_customer(sqlite_engine)
    async with running_worker(temporal_client, settings, sqlite_engine, make_s3_client(settings)):
        handle = await _auto_approved_appeal(temporal_client, settings, sqlite_engine, customer)
        result = await asyncio.wait_for(handle.result(), patience(90))
        description = await handle.describe()
    appeal_id = handle.id.removeprefix("appeal-")
    assert result.status == AppealStatus.LIMIT_APPLY_FAILED and result.decided_limit_minor is None
    assert description.typed_search_attributes.get(APPEAL_STATUS) == "LIMIT_APPLY_FAILED"
    assert len(credit_line_api.requests) == 1  # a refusal is not retried
    with session_scope(sqlite_engine, read_only=True) as session:
        appeal = session.get(Appeal, appeal_id)
        assert appeal is not None
        assert appeal.status == AppealStatus.LIMIT_APPLY_FAILED and appeal.is_open
        assert appeal.status_reason and "409" in appeal.status_reason
    assert _events(sqlite_engine, appeal_id) == []
    assert _account(sqlite_engine, customer.account_id).current_limit_minor == 0
