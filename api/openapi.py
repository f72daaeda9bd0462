"""The error answers in the OpenAPI document: every operation lists the problem+json responses
it really gives, by stable `code`, with an example of each.

Routes declare theirs with `responses=problems(...)`, naming codes from PROBLEMS below;
`install_openapi` adds the Problem schemas to the document and drops FastAPI's generic 422
(`HTTPValidationError`), which describes a body this API never sends (api/problems.py
answers validation errors as problem+json too)."""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from fastapi import FastAPI

from api import openapi_examples
from api.problems import PROBLEM_JSON
from api.schemas.problems import problem_json_schemas
from core.errors import DomainError

_REF = "#/components/schemas/"


@dataclass(frozen=True)
class ProblemDoc:
    """One code an operation can answer with: when, and an example of the body."""

    status: int
    code: str
    when: str
    detail: str
    extra: Mapping[str, Any] = field(default_factory=dict)


_DOCS: Final[tuple[ProblemDoc, ...]] = (
    # -- 400
    ProblemDoc(
        400,
        "upload_interrupted",
        "The client stopped sending the body before it ended; nothing was stored.",
        "The upload was interrupted; nothing was stored.",
    ),
    ProblemDoc(
        400,
        "bad_request",
        "The multipart body could not be parsed at all.",
        "Did not find boundary character 45 at index 2",
    ),
    # -- 401: api/deps.py and core/auth.py
    ProblemDoc(
        401,
        "missing_token",
        "No `Authorization: Bearer` header, another scheme, or an empty token.",
        "A bearer token is required: send `Authorization: Bearer <token>`. Sign in again, or in "
        "development mint a new token with `appeals token`.",
    ),
    ProblemDoc(
        401,
        "invalid_token",
        "The token is malformed, badly signed, for another service, carries no known role or "
        "names nobody (an empty `sub`); `reason` says which.",
        "The bearer token is malformed: it is not a complete signed token (check that it was "
        "copied whole, without quotes or line breaks). Sign in again, or in development mint a "
        "new token with `appeals token`.",
        {"reason": "malformed"},
    ),
    ProblemDoc(
        401,
        "token_expired",
        "The token has expired.",
        "The bearer token has expired. Sign in again, or in development mint a new token with "
        "`appeals token`.",
        {"reason": "expired"},
    ),
    # -- 403
    ProblemDoc(
        401,
        "invalid_signature",
        "Risk events without a staff token: the HMAC signature (X-Appeals-Timestamp, "
        "X-Appeals-Signature) is missing, does not match the body, is more than 5 minutes old, "
        "or signed events are not accepted (no secret configured).",
        "The signature does not match the body, or its timestamp is more than 5 minutes off.",
    ),
    ProblemDoc(
        403,
        "role_required",
        "The caller's role may not use this operation.",
        "This needs the customer role.",
    ),
    ProblemDoc(
        403,
        "task_not_claimable",
        "The task is open, but not for you: it needs another role, or it is your own appeal.",
        "You cannot claim this task: the task needs the senior_reviewer role.",
    ),
    ProblemDoc(
        403,
        "not_claim_holder",
        "Only the reviewer holding the claim on the task may decide it.",
        "Only the reviewer holding the claim on this task can decide it; claim it first.",
    ),
    ProblemDoc(
        403,
        "role_not_sufficient",
        "The decider's role (as the staff directory has it now) may not work this task: a "
        "second review needs a senior reviewer or supervisor, whoever handed over the claim.",
        "You act as reviewer, and the task needs the senior_reviewer role: the decision was not recorded.",
    ),
    ProblemDoc(
        403,
        "staff_inactive",
        "The staff directory marks the caller inactive.",
        "The staff directory marks you inactive; an admin can reactivate you.",
    ),
    ProblemDoc(
        403,
        "staff_role_not_held",
        "The staff directory does not give the caller the role their token names (it changed "
        "since they signed in).",
        "The staff directory does not give you the senior_reviewer role (it gives: reviewer); sign in again.",
    ),
    # -- 404
    ProblemDoc(
        404,
        "appeal_not_found",
        "No such appeal, or it is another customer's (never 403, so ids cannot be probed).",
        "Appeal 6f1f7a52-3c1e-4f49-9a58-0f0e5b8c2d11 was not found.",
    ),
    ProblemDoc(
        404,
        "account_not_found",
        "No such credit account among the caller's.",
        "Credit account acct-1002 was not found.",
    ),
    ProblemDoc(
        404,
        "assessment_not_found",
        "The appeal has not been assessed yet.",
        "This appeal has not been assessed yet.",
    ),
    ProblemDoc(
        404,
        "document_not_found",
        "No such document on this appeal.",
        "Document 0b7e2f7c-1d7f-4a7b-8d5e-8f6b1f0a9c33 was not found.",
    ),
    ProblemDoc(
        404,
        "task_not_found",
        "No such review task.",
        "Review task 9a3d8f0e-5b2c-4c71-a6f4-1e2d3c4b5a69 was not found.",
    ),
    ProblemDoc(
        404,
        "appeal_not_running",
        "The appeal's workflow is not known to the workflow service.",
        "The appeal's workflow was not found.",
    ),
    ProblemDoc(
        404, "customer_not_found", "No such customer in the ledger.", "Customer c-9999 was not found."
    ),
    ProblemDoc(
        404,
        "staff_member_not_found",
        "No such person in the staff directory.",
        "r-9 is not in the staff directory.",
    ),
    # -- 409
    ProblemDoc(
        409,
        "open_appeal_exists",
        "The account already has an open appeal (one at a time).",
        "Account acct-1002 already has an open appeal (6f1f7a52-3c1e-4f49-9a58-0f0e5b8c2d11).",
        {"open_appeal_id": "6f1f7a52-3c1e-4f49-9a58-0f0e5b8c2d11"},
    ),
    ProblemDoc(
        409,
        "decline_cooldown",
        "The account's latest appeal was declined less than the policy's cool-down ago.",
        "The last appeal on account acct-1002 was declined; a new appeal can be submitted from "
        "2026-12-30 (30 days after the decision).",
        {"may_appeal_from": "2026-12-30"},
    ),
    ProblemDoc(
        409,
        "not_withdrawable",
        "The appeal is decided or closed: too late to withdraw.",
        "The appeal is APPROVED; it can no longer be withdrawn.",
        {"appeal_status": "APPROVED"},
    ),
    ProblemDoc(
        409,
        "appeal_closed",
        "The appeal's workflow has already finished.",
        "The appeal is no longer running.",
    ),
    ProblemDoc(
        409,
        "human_review_not_available",
        "A human review can be asked for only after an automatic decline, within its window.",
        "The appeal is PENDING_REVIEW; a human review can be asked for only after an automatic decline.",
        {"appeal_status": "PENDING_REVIEW"},
    ),
    ProblemDoc(
        409,
        "not_collecting_documents",
        "The appeal is not waiting for documents (any more).",
        "The appeal is CHECKING and is not collecting documents.",
        {"appeal_status": "CHECKING"},
    ),
    ProblemDoc(
        409,
        "document_withheld",
        "The file is not served: not verified yet, refused as active content (or a type we do "
        "not read), changed in storage since it was checked, or removed after its retention "
        "period (`reason`: not_verified, active_content, integrity_failed, removed).",
        "This file was refused as active content or a type we do not read; it is never served.",
        {"reason": "active_content"},
    ),
    ProblemDoc(
        409,
        "document_integrity_failed",
        "The stored copy no longer matches the SHA-256 recorded when the file was verified: it "
        "is flagged on the case, recorded on the audit trail, and not served.",
        "This file no longer matches the one we checked (its SHA-256 differs): it may have been "
        "replaced in storage. It has been flagged on the case and is not served.",
        {"document_id": "5b0c7a8e-3f1d-4e2a-9c6b-7d8e9f0a1b2c"},
    ),
    ProblemDoc(
        409,
        "upload_missing",
        "The direct upload has not arrived in storage yet.",
        "We did not receive the file. Upload it to the URL you were given, then retry.",
    ),
    ProblemDoc(
        409,
        "task_not_claimable",
        "The task is no longer open: someone claimed it first, or it was completed or cancelled.",
        "Someone else claimed this task first.",
    ),
    ProblemDoc(
        409,
        "not_claim_holder",
        "Only the reviewer holding the claim (or a supervisor or admin) can release the task.",
        "Only the reviewer holding a claimed task can release it.",
    ),
    ProblemDoc(409, "task_closed", "The task is completed or cancelled.", "The task is COMPLETED."),
    ProblemDoc(
        409,
        "task_not_assignable",
        "The person named may not take this task: their roles in the staff directory do not "
        "satisfy its `required_role`, it is their own appeal, or they made its first review.",
        "r-2 cannot take this task: the task needs the senior_reviewer role, and the staff "
        "directory gives them reviewer.",
    ),
    ProblemDoc(
        409,
        "staff_member_inactive",
        "The person named is inactive in the staff directory.",
        "r-2 is inactive in the staff directory.",
    ),
    ProblemDoc(
        409,
        "decision_rejected",
        "The task is no longer open for a decision (already decided, or the appeal withdrawn).",
        "Review task 9a3d8f0e-5b2c-4c71-a6f4-1e2d3c4b5a69 is not open on this appeal.",
    ),
    # -- 410
    ProblemDoc(
        410,
        "upload_expired",
        "The upload link expired before the file arrived; start a new upload.",
        "The upload link expired before the file arrived. Please request a new upload and send "
        "the file again.",
        {"expired_at": "2026-11-30T10:15:00Z"},
    ),
    # -- 412
    ProblemDoc(
        412,
        "stale_version",
        "`If-Match` names an older version of the task: someone changed it; reload it.",
        "The task changed (version 3, you had 2); reload it.",
        {"current_version": 3},
    ),
    # -- 413
    ProblemDoc(
        413,
        "document_too_large",
        "The file is larger than the limit (`max_bytes`).",
        "The file is larger than the 10 MiB limit.",
        {"max_bytes": 10485760},
    ),
    ProblemDoc(
        413,
        "payload_too_large",
        "The body is larger than this operation takes (`max_bytes`: a JSON body a few KiB, a "
        "ledger import 64 MiB); refused before it is read.",
        "The request body is larger than the 16 KiB this operation takes.",
        {"max_bytes": 16384},
    ),
    # -- 415
    ProblemDoc(
        415,
        "unsupported_document_type",
        "The file's type is not one the checks can read (PDF, PNG, JPEG, CSV, plain text).",
        "Files of type application/zip are not accepted; upload a PDF, PNG, JPEG or CSV file.",
    ),
    ProblemDoc(
        415,
        "multipart_required",
        "The body is not multipart/form-data.",
        "Send the document as multipart/form-data with the file in a part named `file`.",
    ),
    # -- 422
    ProblemDoc(
        422,
        "validation_failed",
        "A field, parameter or header failed its checks; `errors` lists each.",
        "The request is not valid: body.requested_limit_minor: Input should be greater than 0",
        {
            "errors": [
                {
                    "location": ["body", "requested_limit_minor"],
                    "message": "Input should be greater than 0",
                    "type": "greater_than",
                }
            ]
        },
    ),
    ProblemDoc(
        422,
        "requested_limit_above_original",
        "The requested limit is above the account's original limit.",
        "The requested limit is above the account's original limit of 800000 minor units.",
        {"original_limit_minor": 800000},
    ),
    ProblemDoc(
        422,
        "unknown_staff_member",
        "The person named is not in the staff directory (added when they first sign in, or by an admin).",
        "r-9 is not in the staff directory: people are added when they first sign in, or by an "
        "admin (PUT /admin/staff/{staff_id}).",
    ),
    ProblemDoc(
        422, "invalid_cursor", "The `cursor` is not one this listing gave.", "The cursor is not valid."
    ),
    ProblemDoc(
        422,
        "idempotency_key_reused",
        "The `Idempotency-Key` was used before for a different request (another body, operation "
        "or caller); nothing was done. A new request needs a new key.",
        "This Idempotency-Key was already used for a different request (another body, operation "
        "or caller). Send a new key for a new request; repeat a request exactly to get its first "
        "answer.",
    ),
    ProblemDoc(
        422,
        "upload_size_mismatch",
        "The direct upload's size is not the `size_bytes` declared when it started (the upload "
        "policy admits only that size); nothing was taken, send the declared file again.",
        "The file that arrived has 2048 bytes, not the 1024 bytes you declared. Upload the file "
        "you declared, or start a new upload for this one.",
        {"declared_bytes": 1024, "received_bytes": 2048},
    ),
    ProblemDoc(
        422,
        "unknown_document_type",
        "`doc_type` is not a document type of the checklist.",
        "Unknown document type 'PAYSLIP'; use one of BANK_STATEMENT, INCOME_PROOF, CREDIT_REPORT, "
        "EMPLOYMENT_PROOF, OTHER.",
    ),
    ProblemDoc(
        422,
        "malformed_multipart",
        "The multipart body is broken (no boundary, cut short).",
        "The multipart body ended before its closing boundary.",
    ),
    ProblemDoc(422, "too_many_parts", "The form has too many parts.", "The form has too many parts."),
    ProblemDoc(
        422, "one_file_per_request", "More than one file in one request.", "Send one file per request."
    ),
    ProblemDoc(422, "field_too_long", "A form field is too long.", "The form field 'doc_type' is too long."),
    ProblemDoc(
        422,
        "bad_length",
        "The Content-Length header is not a non-negative number.",
        "The Content-Length header is not a number.",
    ),
    ProblemDoc(
        422,
        "invalid_if_match",
        "`If-Match` is not an ETag of this API.",
        'If-Match must be an ETag from this API, e.g. "3".',
    ),
    ProblemDoc(
        422,
        "unknown_reason_code",
        "A decline names reason codes the policy does not have.",
        "Unknown reason codes ['RC_NOPE']; use the policy's codes (e.g. ['RC_ACCOUNT_CLOSED', "
        "'RC_CREDIT_PRODUCTS', 'RC_DEBT_BURDEN']).",
    ),
    ProblemDoc(
        422,
        "decision_invalid",
        "The workflow found the decision inconsistent (e.g. an approved limit above the original).",
        "The approved limit 900000 is above the account's original limit 800000.",
    ),
    ProblemDoc(
        422,
        "ledger_import_invalid",
        "The files have invalid rows; `errors` lists file, row and field of each; nothing was imported.",
        "2 problem(s) in the uploaded ledger files; nothing was imported. First: bills.csv row 3, "
        "field amount_due_minor: not a whole number",
        {
            "errors": [
                {
                    "file": "bills.csv",
                    "row": 3,
                    "field": "amount_due_minor",
                    "message": "not a whole number",
                },
                {"file": "bills.csv", "row": 7, "field": "due_date", "message": "not a date (YYYY-MM-DD)"},
            ],
            "error_count": 2,
        },
    ),
    ProblemDoc(
        422,
        "risk_events_invalid",
        "The batch of risk events has bad events; `errors` lists index, id and reason of each; "
        "nothing was applied.",
        "2 bad event(s) in the batch; nothing was applied. First: event 0 (evt-1): bill_due_date: "
        "account ga-7-00001 has no bill due on 2026-10-28",
        {
            "errors": [
                {
                    "index": 0,
                    "id": "evt-1",
                    "reason": "bill_due_date: account ga-7-00001 has no bill due on 2026-10-28",
                },
                {
                    "index": 3,
                    "id": "evt-4",
                    "reason": "event_id_reused: an event with this id was received before with another body",
                },
            ],
            "error_count": 2,
        },
    ),
    # -- 429: api/request_guard.py, core/rate_limits.py
    ProblemDoc(
        429,
        "rate_limited",
        "You made as many writes of this kind (submissions, uploads or decisions) as we take in "
        "a minute; `retry_after` (and the `Retry-After` header) says in how many seconds the "
        "next is taken.",
        "You made 10 submissions in the last minute, the most we take; try again in 12 s.",
        {"retry_after": 12},
    ),
    # -- 503
    ProblemDoc(
        503,
        "temporal_unavailable",
        "The workflow service is unreachable; nothing changed; retry shortly.",
        "The workflow service is unreachable; please retry shortly.",
    ),
    ProblemDoc(
        503,
        "document_store_unavailable",
        "The document store is unreachable; nothing was stored; retry.",
        "The document store is unreachable; nothing was stored, please retry.",
    ),
    ProblemDoc(
        503,
        "decision_timeout",
        "The workflow did not confirm the decision in time; retry with the same Idempotency-Key.",
        "The decision was not confirmed in time; retry with the same Idempotency-Key.",
    ),
)

# code -> status -> doc. A few codes exist at two statuses (task_not_claimable: 403 when the
# task is open but not for you, 409 when it is no longer open); name those as "code/status".
PROBLEMS: Final[dict[str, dict[int, ProblemDoc]]] = {}
for _doc in _DOCS:
    PROBLEMS.setdefault(_doc.code, {})[_doc.status] = _doc

# The sets most operations share.
AUTHENTICATED: Final = ("missing_token", "invalid_token", "token_expired")
WITH_ROLE: Final = (*AUTHENTICATED, "role_required")

_ERRORS: Final[list[type[DomainError]]] = [DomainError, *DomainError.__subclasses__()]
_TITLES: Final[dict[int, str]] = {cls.status_code: cls.title for cls in _ERRORS}


def _select(ref: str) -> list[ProblemDoc]:
    code, _, status = ref.partition("/")
    if code not in PROBLEMS:
        raise KeyError(f"{code!r} is not in api/openapi.py PROBLEMS")
    docs = PROBLEMS[code]
    if status:
        return [docs[int(status)]]
    if len(docs) > 1:
        raise ValueError(f"{code!r} has statuses {sorted(docs)}: name one, e.g. '{code}/{min(docs)}'")
    return list(docs.values())


def _schema_name(codes: list[str]) -> str:
    if "ledger_import_invalid" in codes:
        return "LedgerImportProblem"
    if "validation_failed" in codes:
        return "ValidationProblem"
    return "Problem"


def example_body(doc: ProblemDoc, instance: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:problem:appeals:{doc.code}",
        "title": _TITLES.get(doc.status, "Error"),
        "status": doc.status,
        "detail": doc.detail,
        "code": doc.code,
    }
    if instance:
        body["instance"] = instance
    body.update(doc.extra)
    return body


def problems(*refs: str) -> dict[int | str, dict[str, Any]]:
    """The `responses` of a route: for each status, its codes, each with an example."""
    by_status: dict[int, list[ProblemDoc]] = {}
    for ref in refs:
        for doc in _select(ref):
            if doc not in by_status.setdefault(doc.status, []):
                by_status[doc.status].append(doc)
    responses: dict[int | str, dict[str, Any]] = {}
    for status in sorted(by_status):
        docs = by_status[status]
        codes = [doc.code for doc in docs]
        responses[status] = {
            "description": "\n".join(f"- `{doc.code}`: {doc.when}" for doc in docs),
            "content": {
                PROBLEM_JSON: {
                    "schema": {"$ref": _REF + _schema_name(codes)},
                    "examples": {doc.code: {"summary": doc.when, "value": example_body(doc)} for doc in docs},
                }
            },
        }
    return responses


_PATH_PARAM = re.compile(r"\{([^}]+)\}")
_SAMPLE_IDS: Final = {
    "appeal_id": "6f1f7a52-3c1e-4f49-9a58-0f0e5b8c2d11",
    "document_id": "0b7e2f7c-1d7f-4a7b-8d5e-8f6b1f0a9c33",
    "task_id": "9a3d8f0e-5b2c-4c71-a6f4-1e2d3c4b5a69",
    "customer_id": "c-1002",
}


def _finish(schema: dict[str, Any]) -> dict[str, Any]:
    component_schemas = schema.setdefault("components", {}).setdefault("schemas", {})
    component_schemas.update(problem_json_schemas())
    for path, operations in schema.get("paths", {}).items():
        instance = _PATH_PARAM.sub(lambda m: _SAMPLE_IDS.get(m.group(1), "example"), path)
        for operation in operations.values():
            responses = operation.get("responses", {})
            generic = responses.get("422", {}).get("content", {}).get("application/json", {})
            if generic.get("schema", {}).get("$ref") == _REF + "HTTPValidationError":
                # FastAPI's default; routes that validate input declare their own 422.
                del responses["422"]
            for status, response in responses.items():
                for media in response.get("content", {}).values():
                    name = media.pop(openapi_examples.EXAMPLE_REF, None)
                    if name is not None:
                        media["example"] = copy.deepcopy(openapi_examples.named(name))
                problem = response.get("content", {}).get(PROBLEM_JSON)
                if problem is None or not status.isdigit():
                    continue
                for example in problem.get("examples", {}).values():
                    example["value"] = {**example["value"], "instance": instance}
    for name in ("HTTPValidationError", "ValidationError"):
        component_schemas.pop(name, None)
    return schema


def _guard_answers(app: FastAPI) -> dict[tuple[str, str], list[str]]:
    """What api/request_guard.py answers for each operation before the route runs (a body over
    its cap, a write over its rate, a NUL in a parameter or header the operation reads), and
    the reuse of an `Idempotency-Key` for another request where the operation takes one."""
    from api.request_guard import BODY_METHODS, RATE_LIMITED, BodyKind, route_rules

    answers: dict[tuple[str, str], list[str]] = {}
    for rule in route_rules(app):
        if rule.page:
            continue
        for method in rule.methods:
            refs = answers.setdefault((method, rule.path), [])
            if method in BODY_METHODS:
                refs.append(rule.too_large_code)
            if (method, rule.path) in RATE_LIMITED:
                refs.append("rate_limited")
            if rule.query or rule.headers or rule.body in (BodyKind.JSON, BodyKind.FORM):
                refs.append("validation_failed")
            if "idempotency-key" in rule.headers:  # core/idempotency.py
                refs.append("idempotency_key_reused")
    return answers


def _merge(responses: dict[str, Any], extra: dict[int | str, dict[str, Any]]) -> None:
    """Adds the problem answers of `extra` (as `problems` gives them) to an operation's."""
    for status, response in extra.items():
        have = responses.setdefault(str(status), response)
        if have is response:
            continue
        media = have["content"][PROBLEM_JSON]
        for code, example in response["content"][PROBLEM_JSON]["examples"].items():
            if code not in media["examples"]:
                media["examples"][code] = example
                have["description"] += "\n" + f"- `{code}`: {example['summary']}"
        media["schema"] = {"$ref": _REF + _schema_name(list(media["examples"]))}


def install_openapi(app: FastAPI) -> None:
    """Finish the generated document once, the first time it is asked for."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            for (method, path), refs in _guard_answers(app).items():
                operation = schema.get("paths", {}).get(path, {}).get(method.lower())
                if operation is not None and refs:
                    _merge(operation.setdefault("responses", {}), problems(*refs))
            app.openapi_schema = _finish(schema)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
