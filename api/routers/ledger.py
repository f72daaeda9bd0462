"""Admin endpoints for the ledger: load CSV files, read one customer's record."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from pathlib import PureWindowsPath
from typing import Annotated, Any, Final

from anyio import to_thread
from fastapi import APIRouter, Depends, Request
from sqlalchemy.engine import Engine
from starlette.datastructures import UploadFile

from api.deps import ClockDep, EngineDep, GatewayDep, SettingsDep, principal_from_authorization, require_role
from api.openapi import WITH_ROLE, problems
from api.risk_events import receive_risk_events
from api.schemas.ledger import (
    CustomerLedgerPublic,
    LedgerImportResult,
    RiskEventsResult,
    TableCountsPublic,
)
from core.auth import Principal, Role
from core.db import session_scope
from core.errors import Forbidden, InvalidInput, PayloadTooLarge, UnsupportedMediaType
from core.ledger.importer import LEDGER_FILES, LedgerImportFailed, import_ledger_files
from core.ledger.queries import customer_ledger
from core.lender.risk_events import MAX_BODY_BYTES as MAX_EVENTS_BODY_BYTES
from core.lender.risk_events import batch_schema, parse_body, signed_sender
from core.notifications.channels.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER

router = APIRouter(prefix="/admin/ledger", tags=["ledger"])
_EVENTS_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": batch_schema()}},
    }
}
AdminDep = Annotated[Principal, Depends(require_role(Role.ADMIN))]

MAX_UPLOAD_BYTES: Final = 64 * 1024 * 1024  # all files of one request together
MAX_ERRORS_SHOWN: Final = 1_000
_CHUNK: Final = 1024 * 1024

_IMPORT_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "Any of " + ", ".join(LEDGER_FILES) + " (by file name).",
                        }
                    },
                }
            }
        },
    }
}


@router.post(
    "/import",
    response_model=LedgerImportResult,
    openapi_extra=_IMPORT_BODY,
    responses=problems(
        *WITH_ROLE, "bad_request", "payload_too_large", "multipart_required", "ledger_import_invalid"
    ),
)
async def import_ledger(
    request: Request, _admin: AdminDep, engine: EngineDep, clock: ClockDep
) -> LedgerImportResult:
    """Import ledger CSV files (the format of `appeals ledger import`): all rows of all files,
    or, when any row is invalid, nothing at all."""
    files = await _read_files(request)
    return await to_thread.run_sync(_import, engine, files, clock.today())


@router.post(
    "/events",
    response_model=RiskEventsResult,
    openapi_extra=_EVENTS_BODY,
    responses=problems(*WITH_ROLE, "invalid_signature", "payload_too_large", "risk_events_invalid"),
)
async def post_risk_events(
    request: Request, engine: EngineDep, gateway: GatewayDep, settings: SettingsDep, clock: ClockDep
) -> RiskEventsResult:
    """Risk events from the core credit system (docs/lender-loop.md): a staff token with the
    admin role, or the body signed with APPEALS_RISK_EVENT_SECRET (`X-Appeals-Timestamp`,
    `X-Appeals-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.{body}")>`, at most 5
    minutes off). The whole batch is validated first: any bad event refuses it (422, each bad
    event by index and id) and nothing is applied. Idempotent by event id. Each applied event
    starts its limit-action workflow."""
    authorization = request.headers.get("authorization")
    sender: str | None = None
    if authorization or TIMESTAMP_HEADER.lower() not in request.headers:
        principal = principal_from_authorization(settings, authorization or "")
        if principal.role is not Role.ADMIN:
            raise Forbidden("This needs the admin role.", code="role_required")
        sender = f"staff:{principal.subject}"
    body = await _read_capped(request)
    if sender is None:
        secret = settings.risk_event_secret.get_secret_value() if settings.risk_event_secret else None
        sender = signed_sender(
            secret,
            timestamp=request.headers.get(TIMESTAMP_HEADER),
            signature=request.headers.get(SIGNATURE_HEADER),
            body=body,
            now=clock.now(),
        )
    events = parse_body(body)
    result, started = await receive_risk_events(
        engine, gateway, events, received_from=sender, now=clock.now()
    )
    return RiskEventsResult.of(result, started)


async def _read_capped(request: Request) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > MAX_EVENTS_BODY_BYTES:
            raise PayloadTooLarge(
                f"At most {MAX_EVENTS_BODY_BYTES // (1024 * 1024)} MiB of events per request."
            )
        chunks.append(chunk)
    return b"".join(chunks)


@router.get(
    "/customers/{customer_id}",
    response_model=CustomerLedgerPublic,
    responses=problems(*WITH_ROLE, "customer_not_found"),
)
def get_customer_ledger(customer_id: str, _admin: AdminDep, engine: EngineDep) -> CustomerLedgerPublic:
    """A customer with their accounts, bills, limit events, loan applications elsewhere and
    attributes (what `input:NAME` policy characteristics read); per account, the risk events
    received and what their limit action did, the portfolio review's decisions with their
    reasons, and the account's audit trail."""
    with session_scope(engine, read_only=True) as session:
        record = customer_ledger(session, customer_id)
        return CustomerLedgerPublic.model_validate(
            {
                "customer": record.customer,
                "accounts": record.accounts,
                "bills": record.bills,
                "limit_events": record.limit_events,
                "loan_applications": record.loan_applications,
                "attributes": record.attributes,
                "risk_events": record.risk_events,
                "review_actions": record.review_actions,
                "account_events": record.account_events,
            },
            from_attributes=True,
        )


def _import(engine: Engine, files: Mapping[str, bytes], today: date) -> LedgerImportResult:
    try:
        with session_scope(engine) as session:
            summary = import_ledger_files(session, files, today=today)
    except LedgerImportFailed as exc:
        errors = exc.errors
        raise InvalidInput(
            f"{len(errors)} problem(s) in the uploaded ledger files; nothing was imported. "
            f"First: {errors[0]}",
            code="ledger_import_invalid",
            errors=[e.as_dict() for e in errors[:MAX_ERRORS_SHOWN]],
            error_count=len(errors),
        ) from exc
    return LedgerImportResult(
        files=sorted(files, key=LEDGER_FILES.index),
        tables={
            table: TableCountsPublic(inserted=c.inserted, updated=c.updated, unchanged=c.unchanged)
            for table, c in summary.tables.items()
        },
    )


async def _read_files(request: Request) -> dict[str, bytes]:
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        raise UnsupportedMediaType("Upload the CSV files as multipart/form-data.", code="multipart_required")
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_UPLOAD_BYTES:
        raise PayloadTooLarge(f"At most {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB per import.")
    files: dict[str, bytes] = {}
    problems: list[dict[str, Any]] = []
    total = 0
    async with request.form(max_files=2 * len(LEDGER_FILES), max_fields=2 * len(LEDGER_FILES)) as form:
        for field_name, value in form.multi_items():
            if not isinstance(value, UploadFile):
                problems.append(_problem(field_name, f"form field {field_name!r} is not a file"))
                continue
            # Browsers send a bare name, some clients a path (C:\\data\\bills.csv): keep the name.
            name = PureWindowsPath(value.filename or "").name
            if name in files:
                problems.append(_problem(name, "uploaded twice"))
                continue
            chunks: list[bytes] = []
            while chunk := await value.read(_CHUNK):
                total += len(chunk)
                if total > MAX_UPLOAD_BYTES:
                    raise PayloadTooLarge(f"At most {MAX_UPLOAD_BYTES // (1024 * 1024)} MiB per import.")
                chunks.append(chunk)
            files[name or "(unnamed file)"] = b"".join(chunks)
    if not files and not problems:
        problems.append(_problem("files", f"no files uploaded (expected any of {', '.join(LEDGER_FILES)})"))
    if problems:
        raise InvalidInput(
            f"The upload is not a set of ledger files: {problems[0]['message']}",
            code="ledger_import_invalid",
            errors=problems,
            error_count=len(problems),
        )
    return files


def _problem(file: str, message: str) -> dict[str, Any]:
    return {"file": file, "row": None, "field": None, "message": message}
