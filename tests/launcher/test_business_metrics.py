"""The business metrics (core/business_metrics.py through launcher/worker_metrics.py's
collector) on factory data, on SQLite and PostgreSQL: exact values in the exposition."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine

from core.appeals.audit import append_event
from core.db import session_scope
from core.db.case_tables import (
    Appeal,
    Document,
    DocumentState,
    Notification,
    ReviewTask,
    TaskStatus,
)
from core.db.lender_tables import AccountNotice
from core.lender.review import INVITATION_ACCEPTED
from core.status import AppealStatus as S
from launcher.worker_metrics import BusinessCollector
from tests.factories import make_customer
from tests.metrics_text import Samples, parse_samples, value

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
_keys = itertools.count(1)


def _appeal(
    engine: Engine,
    status: S,
    trail: list[tuple[float, S | None, S]],
    *,
    tasks: Sequence[tuple[int, TaskStatus, str]] = (),
) -> str:
    """An appeal of a new customer, submitted at T0, in `status`, with status changes
    (seconds after T0, from, to) and review tasks (stage, status, queue)."""
    who = make_customer(engine)
    appeal_id = str(uuid.uuid4())
    with session_scope(engine) as session:
        session.add(
            Appeal(
                id=appeal_id,
                customer_id=who.customer_id,
                account_id=who.account_id,
                requested_limit_minor=500_000,
                status=status,
                is_open=status not in (S.CLOSED, S.INELIGIBLE, S.EXPIRED, S.WITHDRAWN),
                workflow_id=f"appeal-{appeal_id}",
                created_at=T0,
                updated_at=T0,
            )
        )
        session.flush()
        append_event(session, appeal_id=appeal_id, at=T0, actor="c", kind="submitted", to_status=S.SUBMITTED)
        for seconds, from_status, to_status in trail:
            append_event(
                session,
                appeal_id=appeal_id,
                at=T0 + timedelta(seconds=seconds),
                actor="workflow",
                kind="status_changed",
                from_status=from_status,
                to_status=to_status,
            )
        for stage, task_status, queue in tasks:
            session.add(
                ReviewTask(
                    id=str(uuid.uuid4()),
                    appeal_id=appeal_id,
                    customer_id=who.customer_id,
                    stage=stage,
                    status=task_status,
                    queue=queue,
                    due_at=T0 + timedelta(days=1),
                )
            )
    return appeal_id


def _event(engine: Engine, appeal_id: str, kind: str) -> None:
    with session_scope(engine) as session:
        append_event(session, appeal_id=appeal_id, at=T0 + timedelta(hours=30), actor="workflow", kind=kind)


def _notice(appeal_id: str, customer_id: str, audience: str, channel: str, status: str) -> Notification:
    return Notification(
        appeal_id=appeal_id,
        customer_id=customer_id,
        audience=audience,
        channel=channel,
        event="appeal_received",
        locale="en",
        idempotency_key=f"k-{next(_keys)}-{uuid.uuid4()}",
        subject="s",
        body="b",
        status=status,
    )


def _document(appeal_id: str, state: DocumentState, code: str | None) -> Document:
    return Document(
        id=str(uuid.uuid4()),
        appeal_id=appeal_id,
        customer_id="c",
        doc_type="BANK_STATEMENT",
        s3_key="k",
        filename="f.csv",
        declared_content_type="text/csv",
        state=state,
        rejection_code=code,
    )


def scrape(collector: BusinessCollector) -> Samples:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return parse_samples(generate_latest(registry).decode())


def _seed(engine: Engine) -> None:
    R, E = "review", "escalation"
    _appeal(
        engine,
        S.CLOSED,
        [
            (120, S.CHECKING, S.AUTO_APPROVED),
            (130, S.AUTO_APPROVED, S.LIMIT_APPLIED),
            (131, S.LIMIT_APPLIED, S.CLOSED),
        ],
    )
    manual = _appeal(
        engine,
        S.CLOSED,
        [
            (7200, S.IN_REVIEW, S.PARTIALLY_APPROVED),
            (7300, S.PARTIALLY_APPROVED, S.LIMIT_APPLIED),
            (7301, S.LIMIT_APPLIED, S.CLOSED),
        ],
        tasks=[(1, TaskStatus.COMPLETED, R)],
    )
    _appeal(
        engine,
        S.CLOSED,
        [(3 * 86400, S.IN_SECOND_REVIEW, S.DECLINED), (3 * 86400 + 1, S.DECLINED, S.CLOSED)],
        tasks=[(1, TaskStatus.COMPLETED, R), (2, TaskStatus.COMPLETED, "second-review")],
    )
    # Declined automatically, then approved by a reviewer; the credit-line API refused the limit.
    _appeal(
        engine,
        S.LIMIT_APPLY_FAILED,
        [
            (60, S.CHECKING, S.AUTO_DECLINED),
            (86400, S.IN_REVIEW, S.APPROVED),
            (86500, S.APPROVED, S.LIMIT_APPLY_FAILED),
        ],
        tasks=[(1, TaskStatus.COMPLETED, R)],
    )
    # Declined automatically, approved on the customer's request for a human review: closed as
    # the reviewer's approval (its last decision).
    _appeal(
        engine,
        S.CLOSED,
        [
            (60, S.CHECKING, S.AUTO_DECLINED),
            (86400, S.IN_REVIEW, S.APPROVED),
            (86401, S.APPROVED, S.LIMIT_APPLIED),
            (86402, S.LIMIT_APPLIED, S.CLOSED),
        ],
        tasks=[(1, TaskStatus.COMPLETED, R)],
    )
    _appeal(engine, S.INELIGIBLE, [(5, S.SUBMITTED, S.INELIGIBLE)])
    invited = _appeal(
        engine, S.PENDING_REVIEW, [(100, S.CHECKING, S.PENDING_REVIEW)], tasks=[(1, TaskStatus.OPEN, R)]
    )
    _event(engine, invited, INVITATION_ACCEPTED)
    late = _appeal(
        engine, S.IN_REVIEW, [(100, S.PENDING_REVIEW, S.IN_REVIEW)], tasks=[(1, TaskStatus.CLAIMED, E)]
    )
    _event(engine, late, "sla_warning")
    _event(engine, late, "task_escalated")
    with session_scope(engine) as session:
        session.add_all(
            [
                _notice(manual, "c", "customer", "EMAIL", "SENT"),
                _notice(manual, "c", "customer", "EMAIL", "SENT"),
                _notice(manual, "c", "customer", "IN_APP", "SENT"),
                _notice(manual, "r-1", "staff", "EMAIL", "FAILED"),
                _document(manual, DocumentState.REJECTED, "STATEMENT_PERIOD_SHORT"),
                _document(manual, DocumentState.REJECTED, "STATEMENT_PERIOD_SHORT"),
                _document(manual, DocumentState.REJECTED, None),
                _document(manual, DocumentState.REJECTED, "a reason in free text!"),
                _document(manual, DocumentState.ACCEPTED, None),
            ]
        )
        appeal = session.get(Appeal, manual)
        assert appeal is not None
        session.add(
            AccountNotice(
                account_id=appeal.account_id,
                customer_id=appeal.customer_id,
                channel="SMS",
                event="limit_restored",
                locale="en",
                idempotency_key=f"acct-{uuid.uuid4()}",
                subject="s",
                body="b",
                status="PENDING",
            )
        )


def test_every_business_metric_counts_the_rows(engine: Engine) -> None:
    _seed(engine)
    s = scrape(BusinessCollector(engine, cache_seconds=0))

    assert value(s, "appeals_business_metrics_up") == 1
    assert value(s, "appeals_started_total", source="customer") == 7
    assert value(s, "appeals_started_total", source="invitation") == 1
    opened = {dict(labels)["status"]: v for (name, labels), v in s.items() if name == "appeals_open"}
    assert {status: n for status, n in opened.items() if n} == {
        "LIMIT_APPLY_FAILED": 1,
        "PENDING_REVIEW": 1,
        "IN_REVIEW": 1,
    }
    assert opened["SUBMITTED"] == 0 and "CLOSED" not in opened  # every open status, 0 included
    closed = {
        tuple(sorted(dict(labels).items())): v
        for (name, labels), v in s.items()
        if name == "appeals_closed_total"
    }
    assert closed == {
        (("outcome", "approved"), ("path", "automatic")): 1,
        (("outcome", "partially_approved"), ("path", "manual")): 1,
        (("outcome", "declined"), ("path", "four_eyes")): 1,
        (("outcome", "ineligible"), ("path", "automatic")): 1,
        (("outcome", "approved"), ("path", "manual")): 1,
    }

    hist = "appeals_time_to_decision_seconds"
    expected = {  # (path, outcome): seconds from submission to the decision
        ("automatic", "approved"): 120,
        ("manual", "partially_approved"): 7200,
        ("four_eyes", "declined"): 3 * 86400,
        ("automatic", "declined"): 60,
        ("manual", "approved"): 86400,
    }
    decided = {
        (dict(labels)["path"], dict(labels)["outcome"]) for (name, labels) in s if name == f"{hist}_count"
    }
    assert decided == set(expected)
    # Two appeals were declined automatically and then approved by a reviewer, a day in.
    twice = {("automatic", "declined"), ("manual", "approved")}
    for (path, outcome), seconds in expected.items():
        n = 2 if (path, outcome) in twice else 1
        assert value(s, f"{hist}_count", path=path, outcome=outcome) == n
        assert value(s, f"{hist}_sum", path=path, outcome=outcome) == pytest.approx(n * seconds, abs=0.01)
        # Cumulative buckets: 0 below the time, 1 from the first bound at or above it.
        for bound in ("60.0", "300.0", "3600.0", "14400.0", "86400.0", "259200.0", "+Inf"):
            inside = bound == "+Inf" or float(bound) >= seconds
            assert value(s, f"{hist}_bucket", path=path, outcome=outcome, le=bound) == (n if inside else 0), (
                path,
                bound,
            )

    assert value(s, "appeals_review_tasks_open", queue="review", status="OPEN") == 1
    assert value(s, "appeals_review_tasks_open", queue="escalation", status="CLAIMED") == 1
    assert value(s, "appeals_review_tasks_open", queue="review", status="CLAIMED") == 0
    assert ("appeals_review_tasks_open", frozenset({("queue", "second-review"), ("status", "OPEN")})) in s
    assert value(s, "appeals_sla_warnings_total") == 1
    assert value(s, "appeals_sla_breaches_total") == 1
    assert value(s, "appeals_limit_applies_total") == 3
    assert value(s, "appeals_limit_refusals_total") == 1

    notices = {
        tuple(sorted(dict(labels).items())): v for (name, labels), v in s.items() if name == "appeals_notices"
    }
    assert notices == {
        (("about", "appeal"), ("audience", "customer"), ("channel", "EMAIL"), ("state", "SENT")): 2,
        (("about", "appeal"), ("audience", "customer"), ("channel", "IN_APP"), ("state", "SENT")): 1,
        (("about", "appeal"), ("audience", "staff"), ("channel", "EMAIL"), ("state", "FAILED")): 1,
        (("about", "account"), ("audience", "customer"), ("channel", "SMS"), ("state", "PENDING")): 1,
    }
    rejections = {
        dict(labels)["reason"]: v
        for (name, labels), v in s.items()
        if name == "appeals_document_rejections_total"
    }
    # Free text never becomes a label value.
    assert rejections == {"STATEMENT_PERIOD_SHORT": 2, "unspecified": 1, "other": 1}


def test_counts_are_cached_for_the_configured_time(engine: Engine) -> None:
    collector = BusinessCollector(engine, cache_seconds=3600)
    assert value(scrape(collector), "appeals_started_total", source="customer") == 0
    _appeal(engine, S.INELIGIBLE, [(5, S.SUBMITTED, S.INELIGIBLE)])
    assert value(scrape(collector), "appeals_started_total", source="customer") == 0
    assert (
        value(scrape(BusinessCollector(engine, cache_seconds=0)), "appeals_started_total", source="customer")
        == 1
    )


def test_a_database_that_fails_is_reported_not_raised(tmp_path: object) -> None:
    broken = create_engine("sqlite:////nonexistent-dir/appeals.db")
    s = scrape(BusinessCollector(broken, cache_seconds=0))
    assert value(s, "appeals_business_metrics_up") == 0
    assert not any(name.startswith("appeals_started") for name, _ in s)
