"""The invariants bench/chaos.py checks once a run has settled, from the database, the outbox,
the SMTP sink's .eml files, the recording SMS provider's file, S3 and Temporal.

Each is a count that must be 0 (or, for the audit trail, a verdict): `Findings.failures()`
names the ones that are not. What the clients saw (retries, answers) is reported beside them.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from bench.chaos_driver import AppealRun
from core.appeals.service import workflow_id_for
from core.db import session_scope
from core.db.case_tables import Appeal, AppealEvent, Document, DocumentState, Notification
from core.db.ledger_tables import CreditAccount, LimitEvent, LimitEventKind
from core.settings import Settings
from core.status import CLOSED_STATUSES, AppealStatus
from core.storage import make_s3_client
from launcher.audit_cli import scan_appeals
from workflows.appeal import WATCHED_STATUSES
from workflows.search_attributes import APPEAL_STATUS

# Where every appeal of a run must end: closed, or an automatic decline waiting out the
# human-review window (its workflow still running). Nothing in a run withdraws or lets a
# document deadline pass.
EXPECTED_FINAL = frozenset({AppealStatus.CLOSED, AppealStatus.INELIGIBLE, AppealStatus.AUTO_DECLINED})
UNDELIVERED = ("PENDING", "SENDING", "FAILED")


@dataclass
class Findings:
    appeals: int = 0  # rows in the database
    accepted: int = 0  # 201/200 answers to a submit
    statuses: Counter[str] = field(default_factory=Counter)
    lost: list[str] = field(default_factory=list)  # accepted, but no row or no workflow
    duplicate_appeals: list[str] = field(default_factory=list)  # customers with two appeals
    stuck: list[str] = field(default_factory=list)  # not where an appeal may rest
    double_limits: list[str] = field(default_factory=list)  # more than one RESTORE per appeal
    limit_mismatches: list[str] = field(default_factory=list)
    duplicate_emails: list[str] = field(default_factory=list)  # Message-IDs stored twice
    duplicate_sms: list[str] = field(default_factory=list)  # idempotency keys recorded twice
    notices_missing: list[str] = field(default_factory=list)  # SENT, but not at the sink
    notices_undelivered: list[str] = field(default_factory=list)  # still PENDING/SENDING/FAILED
    documents_skipped: list[str] = field(default_factory=list)  # left UPLOADED
    duplicate_documents: list[str] = field(default_factory=list)  # two rows for one upload
    valid_documents_rejected: list[str] = field(default_factory=list)  # every file sent is valid
    uploads_refused: list[str] = field(default_factory=list)  # an upload's final answer not 2xx
    uploads_lost: list[str] = field(default_factory=list)  # answered 2xx, no such row
    objects_missing: list[str] = field(default_factory=list)  # a document row without its object
    orphan_objects: int = 0  # upload objects without a row (an upload cut off before its commit)
    audit_broken: list[str] = field(default_factory=list)
    audit_events: int = 0
    workflow_mismatches: list[str] = field(default_factory=list)
    clients_gave_up: list[str] = field(default_factory=list)
    outcome_differs: int = 0  # not the generator's expected outcome (information only)
    emails: int = 0
    sms: int = 0
    # What the faults made the system redo (information, not invariants):
    resent_notices: int = 0  # outbox rows sent with more than one attempt
    copies_dropped_by_smtp_sink: int = 0  # resends the sink recognised by their Message-ID
    activity_retries: int = 0  # activity runs with attempt > 1 in the workers' logs

    def failures(self) -> list[str]:
        checks: list[tuple[str, Sequence[str]]] = [
            ("lost appeals", self.lost),
            ("duplicate appeals", self.duplicate_appeals),
            ("appeals not at rest", self.stuck),
            ("double limits", self.double_limits),
            ("limits inconsistent", self.limit_mismatches),
            ("emails twice (same Message-ID)", self.duplicate_emails),
            ("SMS twice (same idempotency key)", self.duplicate_sms),
            ("notices missing at the sinks", self.notices_missing),
            ("notices undelivered", self.notices_undelivered),
            ("documents skipped (left UPLOADED)", self.documents_skipped),
            ("duplicate documents", self.duplicate_documents),
            ("valid documents rejected", self.valid_documents_rejected),
            ("uploads refused", self.uploads_refused),
            ("uploads lost", self.uploads_lost),
            ("documents without their S3 object", self.objects_missing),
            ("audit chains broken", self.audit_broken),
            ("workflows not as their appeal's status says", self.workflow_mismatches),
            ("clients gave up", self.clients_gave_up),
        ]
        return [f"{name}: {len(items)} ({'; '.join(items[:4])})" for name, items in checks if items]


def check_all(
    *,
    engine: Engine,
    runs: Sequence[AppealRun],
    s3_settings: Settings,
    mail_dir: Path,
    sms_file: Path,
    temporal_address: str,
    namespace: str,
    logs_dir: Path | None = None,
) -> Findings:
    f = Findings()
    with session_scope(engine, read_only=True) as session:
        appeals = {a.id: a for a in session.exec(select(Appeal)).all()}
        documents = list(session.exec(select(Document)).all())
        notifications = list(session.exec(select(Notification)).all())
        limit_events = list(session.exec(select(LimitEvent).order_by(col(LimitEvent.id))).all())
        applied = set(
            session.exec(
                select(AppealEvent.appeal_id).where(AppealEvent.to_status == AppealStatus.LIMIT_APPLIED)
            ).all()
        )
        accounts = {a.id: a for a in session.exec(select(CreditAccount)).all()}
        for verdict in scan_appeals(session):
            f.audit_events += verdict.events
            if verdict.broken is not None:
                f.audit_broken.append(f"{verdict.appeal_id} #{verdict.broken.seq}: {verdict.broken.problem}")

    f.appeals = len(appeals)
    f.statuses = Counter(str(AppealStatus(a.status)) for a in appeals.values())
    _appeals(f, runs, appeals)
    _limits(f, appeals, applied, limit_events, accounts)
    _documents(f, runs, documents, s3_settings)
    check_notices(f, notifications, mail_dir, sms_file)
    f.workflow_mismatches, lost = asyncio.run(_workflows(appeals.values(), temporal_address, namespace))
    f.lost += lost
    if logs_dir is not None:
        _redone(f, logs_dir)
    return f


_RETRIED = re.compile(r"activity_started .*\battempt=([0-9]+)")


def _redone(f: Findings, logs_dir: Path) -> None:
    for path in logs_dir.glob("worker-*.log"):
        for line in path.read_text(errors="replace").splitlines():
            match = _RETRIED.search(line)
            if match and int(match.group(1)) > 1:
                f.activity_retries += 1
    smtp_log = logs_dir / "smtp.log"
    if smtp_log.exists():
        f.copies_dropped_by_smtp_sink = smtp_log.read_text(errors="replace").count("dropped a copy of")


def _appeals(f: Findings, runs: Sequence[AppealRun], appeals: dict[str, Appeal]) -> None:
    per_customer = Counter(a.customer_id for a in appeals.values())
    for run in runs:
        c = run.customer
        if run.error:
            f.clients_gave_up.append(f"#{run.index} {c.customer_id}: {run.error}")
        if per_customer[c.customer_id] > 1:
            f.duplicate_appeals.append(f"{c.customer_id}: {per_customer[c.customer_id]} appeals")
        if not run.accepted:
            continue
        f.accepted += 1
        assert run.appeal_id is not None
        appeal = appeals.get(run.appeal_id)
        if appeal is None:
            f.lost.append(f"{run.appeal_id}: answered {run.submit_status}, no row")
            continue
        expected = {
            "AUTO_APPROVE": {"CLOSED"},
            "MANUAL_REVIEW": {"CLOSED"},
            "AUTO_DECLINE": {"AUTO_DECLINED"},
            "INELIGIBLE": {"INELIGIBLE"},
        }.get(c.expected.value, set())
        if str(AppealStatus(appeal.status)) not in expected:
            f.outcome_differs += 1
    for appeal in appeals.values():
        if AppealStatus(appeal.status) not in EXPECTED_FINAL:
            f.stuck.append(f"{appeal.id} {AppealStatus(appeal.status)}")


def _limits(
    f: Findings,
    appeals: dict[str, Appeal],
    applied: set[str],
    events: list[LimitEvent],
    accounts: dict[str, CreditAccount],
) -> None:
    restores: dict[str, list[LimitEvent]] = {}
    for event in events:
        if event.kind == LimitEventKind.RESTORE and event.appeal_id is not None:
            restores.setdefault(event.appeal_id, []).append(event)
    for appeal in appeals.values():
        mine = restores.get(appeal.id, [])
        if len(mine) > 1:
            f.double_limits.append(f"{appeal.id}: {len(mine)} RESTORE events")
        if appeal.id in applied:
            if not mine:
                f.limit_mismatches.append(f"{appeal.id}: LIMIT_APPLIED without a RESTORE event")
            elif mine[0].to_limit_minor != appeal.decided_limit_minor:
                f.limit_mismatches.append(
                    f"{appeal.id}: restored {mine[0].to_limit_minor}, decided {appeal.decided_limit_minor}"
                )
        elif mine:
            f.limit_mismatches.append(f"{appeal.id}: RESTORE without LIMIT_APPLIED ({appeal.status})")
    latest: dict[str, LimitEvent] = {}
    for event in events:  # by id: the last one written is the account's limit
        latest[event.account_id] = event
    touched = {a.account_id for a in appeals.values()}
    for account_id in sorted(touched):
        account, last = accounts.get(account_id), latest.get(account_id)
        if account is None or last is None:
            continue
        if account.current_limit_minor != last.to_limit_minor:
            f.limit_mismatches.append(
                f"{account_id}: limit {account.current_limit_minor}, last event says {last.to_limit_minor}"
            )


def _documents(
    f: Findings, runs: Sequence[AppealRun], documents: list[Document], s3_settings: Settings
) -> None:
    by_id = {d.id: d for d in documents}
    per_type = Counter((d.appeal_id, d.doc_type) for d in documents)
    for d in documents:
        if d.state in (DocumentState.UPLOADED, DocumentState.VERIFYING):
            f.documents_skipped.append(f"{d.appeal_id}/{d.id} {d.doc_type}")
        elif d.state == DocumentState.REJECTED:
            f.valid_documents_rejected.append(f"{d.appeal_id}/{d.id} {d.doc_type} {d.rejection_code}")
    for run in runs:
        sent = Counter(upload.doc_type for upload in run.uploads)
        for upload in run.uploads:
            assert run.appeal_id is not None
            where = f"{run.appeal_id} {upload.doc_type}"
            if upload.status is None or not 200 <= upload.status < 300:
                f.uploads_refused.append(f"{where}: {upload.status} {upload.code}")
            elif upload.document_id not in by_id:
                f.uploads_lost.append(f"{where}: {upload.document_id}")
            rows = per_type[(run.appeal_id, upload.doc_type)]
            if rows > sent[upload.doc_type]:  # one row per upload the client made, retries or not
                f.duplicate_documents.append(f"{where}: {rows} rows for {sent[upload.doc_type]} uploads")
    s3 = make_s3_client(s3_settings)
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=s3_settings.s3_bucket):
        keys.update(obj["Key"] for obj in page.get("Contents", []))
    for d in documents:
        if d.state == DocumentState.AWAITING_UPLOAD:  # a presigned POST never completed
            continue
        if d.s3_key not in keys:
            try:
                s3.head_object(Bucket=s3_settings.s3_bucket, Key=d.s3_key)
            except ClientError:
                f.objects_missing.append(f"{d.appeal_id}/{d.id}")
    # An upload's object is stored under document_key(appeal, document id) before its row commits.
    f.orphan_objects = sum(
        1 for key in keys if key.startswith("appeals/") and key.rsplit("/", 1)[-1] not in by_id
    )


def _sms_lines(sms_file: Path) -> list[dict[str, Any]]:
    if not sms_file.exists():
        return []
    lines = [json.loads(line) for line in sms_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    # A provider that honours idempotency keys may note a dropped repeat; it is not a delivery.
    return [line for line in lines if not (line.get("duplicate") or line.get("dropped"))]


def check_notices(f: Findings, notifications: list[Notification], mail_dir: Path, sms_file: Path) -> None:
    parser = BytesHeaderParser()
    message_ids: Counter[str] = Counter()
    for path in sorted(mail_dir.glob("*.eml")):
        with path.open("rb") as handle:
            message_ids[str(parser.parse(handle).get("Message-ID", "")).strip()] += 1
    f.emails = sum(message_ids.values())
    f.duplicate_emails = [f"{mid} x{n}" for mid, n in message_ids.items() if n > 1]
    sms_keys = Counter(str(line.get("idempotency_key")) for line in _sms_lines(sms_file))
    f.sms = sum(sms_keys.values())
    f.duplicate_sms = [f"{key} x{n}" for key, n in sms_keys.items() if n > 1]
    f.resent_notices = sum(1 for n in notifications if n.channel != "IN_APP" and n.attempts > 1)
    for n in notifications:
        if n.status in UNDELIVERED:
            f.notices_undelivered.append(f"{n.idempotency_key} {n.status} (attempts {n.attempts})")
        elif n.status == "SENT" and n.channel == "EMAIL" and (n.message_id or "").strip() not in message_ids:
            f.notices_missing.append(f"{n.idempotency_key} (email {n.message_id})")
        elif n.status == "SENT" and n.channel == "SMS" and n.idempotency_key not in sms_keys:
            f.notices_missing.append(f"{n.idempotency_key} (sms)")


async def _workflows(appeals: Any, address: str, namespace: str) -> tuple[list[str], list[str]]:
    """Each appeal's workflow: closed (completed) when its status is, running otherwise, its
    AppealStatus search attribute the appeal's status where the workflow upserts it."""
    client = await Client.connect(address, namespace=namespace)
    semaphore = asyncio.Semaphore(16)
    mismatches: list[str] = []
    lost: list[str] = []

    async def one(appeal: Appeal) -> None:
        status = AppealStatus(appeal.status)
        async with semaphore:
            try:
                description = await client.get_workflow_handle(workflow_id_for(appeal.id)).describe()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    lost.append(f"{appeal.id}: {status}, no workflow")
                    return
                raise
        wanted = (
            WorkflowExecutionStatus.COMPLETED
            if status in CLOSED_STATUSES
            else WorkflowExecutionStatus.RUNNING
        )
        if description.status != wanted:
            state = description.status.name if description.status else "unknown"
            mismatches.append(f"{appeal.id}: {status} but the workflow is {state}")
        shown = description.typed_search_attributes.get(APPEAL_STATUS)
        if status in WATCHED_STATUSES and shown != status.value:
            mismatches.append(f"{appeal.id}: {status} but AppealStatus = {shown}")

    await asyncio.gather(*(one(a) for a in appeals))
    return mismatches, lost


async def workflows_behind(engine: Engine, address: str, namespace: str) -> list[str]:
    """The appeals whose workflow does not (yet) say what their row says, or has none."""
    with session_scope(engine, read_only=True) as session:
        appeals = list(session.exec(select(Appeal)).all())
    mismatches, lost = await _workflows(appeals, address, namespace)
    return mismatches + lost


def settled(engine: Engine, accepted_ids: Sequence[str]) -> tuple[bool, str]:
    """Whether the run has come to rest, and what it still waits for: every appeal where it
    may rest, no notice still to deliver, no document still to check."""
    with session_scope(engine, read_only=True) as session:
        statuses = dict(session.exec(select(Appeal.id, Appeal.status)).all())
        waiting_notices = len(
            session.exec(select(Notification.id).where(col(Notification.status).in_(UNDELIVERED))).all()
        )
        unchecked = len(
            session.exec(
                select(Document.id).where(
                    col(Document.state).in_([DocumentState.UPLOADED, DocumentState.VERIFYING])
                )
            ).all()
        )
    missing = [a for a in accepted_ids if a not in statuses]
    moving = Counter(str(AppealStatus(s)) for s in statuses.values() if AppealStatus(s) not in EXPECTED_FINAL)
    if not missing and not moving and not waiting_notices and not unchecked:
        return True, "settled"
    parts = []
    if missing:
        parts.append(f"{len(missing)} accepted appeals without a row")
    if moving:
        parts.append("appeals " + ", ".join(f"{s} {n}" for s, n in sorted(moving.items())))
    if waiting_notices:
        parts.append(f"{waiting_notices} notices to deliver")
    if unchecked:
        parts.append(f"{unchecked} documents UPLOADED")
    return False, "; ".join(parts)
