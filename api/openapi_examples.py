"""Example requests and answers of the main operations, for the OpenAPI document.

tests/api/test_openapi.py checks every example here against its model, so they stay true."""

from __future__ import annotations

from typing import Any, Final

APPEAL_ID: Final = "6f1f7a52-3c1e-4f49-9a58-0f0e5b8c2d11"
TASK_ID: Final = "9a3d8f0e-5b2c-4c71-a6f4-1e2d3c4b5a69"
DOCUMENT_ID: Final = "0b7e2f7c-1d7f-4a7b-8d5e-8f6b1f0a9c33"


def ok(status: int, example: str, description: str) -> dict[int | str, dict[str, Any]]:
    """A success response's description and example (its schema comes from the route's model).

    The example is named (a constant of this module) and put in place by api/openapi.py once
    the document is built: FastAPI drops every null from what routes declare, and an example
    without its nulls would not be a valid answer."""
    named(example)
    return {status: {"description": description, "content": {"application/json": {EXAMPLE_REF: example}}}}


EXAMPLE_REF: Final = "x-example-ref"


def named(name: str) -> dict[str, Any]:
    value = globals().get(name)
    if not (name.isupper() and isinstance(value, dict)):
        raise KeyError(f"{name!r} is not an example of api/openapi_examples.py")
    return value


# -- appeals -----------------------------------------------------------------------------------

APPEAL_CREATE: Final[dict[str, Any]] = {
    "full": {
        "summary": "Restore the original limit",
        "value": {
            "account_id": "acct-1002",
            "requested_limit_minor": 800000,
            "statement": "I repaid everything in March; my salary is paid on time again.",
        },
    },
    "part": {
        "summary": "Ask for part of it back",
        "value": {"account_id": "acct-1002", "requested_limit_minor": 500000},
    },
}

APPEAL_DETAIL: Final[dict[str, Any]] = {
    "id": APPEAL_ID,
    "account_id": "acct-1002",
    "status": "AWAITING_DOCUMENTS",
    "requested_limit_minor": 800000,
    "decided_limit_minor": None,
    "version": 3,
    "created_at": "2026-11-30T09:00:00Z",
    "updated_at": "2026-11-30T09:00:02Z",
    "customer_id": "c-1002",
    "status_reason": None,
    "amount_owed_minor": None,
    "closed_at": None,
    "workflow_id": f"appeal-{APPEAL_ID}",
    "timeline": [
        {
            "seq": 1,
            "at": "2026-11-30T09:00:00Z",
            "actor": "customer:c-1002",
            "kind": "submitted",
            "from_status": None,
            "to_status": "SUBMITTED",
            "details": {"account_id": "acct-1002", "requested_limit_minor": 800000},
        },
        {
            "seq": 2,
            "at": "2026-11-30T09:00:02Z",
            "actor": "workflow",
            "kind": "status_changed",
            "from_status": "SUBMITTED",
            "to_status": "AWAITING_DOCUMENTS",
            "details": {},
        },
    ],
    "checklist": [
        {
            "doc_type": "BANK_STATEMENT",
            "required": True,
            "reasons": ["always"],
            "min_full_months": 3,
            "state": "MISSING",
            "document_id": None,
            "rejection_reason": None,
            "rejection_reason_zh": None,
        }
    ],
    "documents": [],
    "decision": None,
    "notifications": [],
}

APPEAL_SUMMARY: Final[dict[str, Any]] = {
    key: APPEAL_DETAIL[key]
    for key in (
        "id",
        "account_id",
        "requested_limit_minor",
        "decided_limit_minor",
        "version",
        "created_at",
        "updated_at",
    )
} | {"status": "AWAITING_DOCUMENTS"}

WITHDRAW: Final[dict[str, Any]] = {
    "reason": {"summary": "With a reason", "value": {"reason": "I paid off the account instead."}},
    "none": {"summary": "No reason given (the body may also be left out)", "value": {}},
}

# -- documents -----------------------------------------------------------------------------------

UPLOAD_REQUEST: Final[dict[str, Any]] = {
    "statement": {
        "summary": "A bank statement as a PDF",
        "value": {
            "doc_type": "BANK_STATEMENT",
            "content_type": "application/pdf",
            "size_bytes": 183204,
            "filename": "statement-2026-08-to-10.pdf",
        },
    }
}

PRESIGNED_UPLOAD: Final[dict[str, Any]] = {
    "document_id": DOCUMENT_ID,
    "url": "http://127.0.0.1:9000/appeal-documents",
    "fields": {
        "key": f"appeals/{APPEAL_ID}/{DOCUMENT_ID}",
        "Content-Type": "application/pdf",
        "x-amz-server-side-encryption": "AES256",
        "policy": "eyJleHBpcmF0aW9uIjogIjIwMjYtMTEtMzBUMDk6MTA6MDBaIiwgLi4ufQ==",
        "x-amz-algorithm": "AWS4-HMAC-SHA256",
        "x-amz-credential": "local/20261130/us-east-1/s3/aws4_request",
        "x-amz-date": "20261130T090000Z",
        "x-amz-signature": "5d2c8f0e4b7a...",
    },
    "expires_at": "2026-11-30T09:10:00Z",
}

DOCUMENT: Final[dict[str, Any]] = {
    "id": DOCUMENT_ID,
    "doc_type": "BANK_STATEMENT",
    "filename": "statement-2026-08-to-10.pdf",
    "declared_content_type": "application/pdf",
    "size_bytes": 183204,
    "sha256": None,
    "state": "UPLOADED",
    "rejection_code": None,
    "rejection_reason": None,
    "rejection_reason_zh": None,
    "duplicate_of": None,
    "created_at": "2026-11-30T09:01:00Z",
}

DOCUMENT_LINK: Final[dict[str, Any]] = {
    "url": f"http://127.0.0.1:9000/appeal-documents/evidence/{APPEAL_ID}/{DOCUMENT_ID}"
    "?versionId=3ab105ee-6c11-4f31-a0c3-302903b53bdd&response-content-disposition=attachment...",
    "expires_at": "2026-11-30T09:15:00Z",
    "disposition": "attachment",
}

# -- review --------------------------------------------------------------------------------------

REVIEW_TASK: Final[dict[str, Any]] = {
    "id": TASK_ID,
    "appeal_id": APPEAL_ID,
    "round": 1,
    "stage": 1,
    "queue": "review",
    "status": "CLAIMED",
    "priority": 0,
    "required_role": "reviewer",
    "risk_tier": "MEDIUM",
    "assignee": "r-1",
    "escalated": False,
    "due_at": "2026-12-01T09:05:00Z",
    "claimed_at": "2026-11-30T10:00:00Z",
    "created_at": "2026-11-30T09:05:00Z",
    "version": 2,
}

TASK_DETAIL: Final[dict[str, Any]] = {
    "task": REVIEW_TASK,
    "appeal": APPEAL_DETAIL | {"status": "IN_REVIEW", "checklist": [], "timeline": []},
    "assessment": {"score": 512, "risk_tier": "MEDIUM", "recommendation": "MANUAL_REVIEW"},
    "documents": [
        {
            "id": DOCUMENT_ID,
            "doc_type": "BANK_STATEMENT",
            "filename": "statement-2026-08-to-10.pdf",
            "declared_content_type": "application/pdf",
            "size_bytes": 183204,
            "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "state": "ACCEPTED",
            "rejection_code": None,
            "rejection_reason": None,
            "upload_method": "presigned",
            "created_at": "2026-11-30T09:01:00Z",
            "verified_at": "2026-11-30T09:01:05Z",
            "download_url": "http://127.0.0.1:9000/appeal-documents/appeals/...&X-Amz-Expires=300",
            "download_expires_at": "2026-11-30T10:05:00Z",
        }
    ],
    "allowed_actions": {
        "claim": {"allowed": False, "reason": "the task is CLAIMED"},
        "release": {"allowed": True, "reason": None},
        "reassign": {"allowed": False, "reason": "only supervisors reassign tasks"},
        "approve": {"allowed": True, "reason": None},
        "decline": {"allowed": True, "reason": None},
        "request_info": {"allowed": True, "reason": None},
    },
}

DECISION: Final[dict[str, Any]] = {
    "approve": {
        "summary": "Restore the limit in full",
        "value": {"outcome": "APPROVE", "approved_limit_minor": 800000, "note": "Clean record since March."},
    },
    "partial": {
        "summary": "Approve part of it",
        "value": {
            "outcome": "APPROVE",
            "approved_limit_minor": 500000,
            "note": "Income covers a smaller limit.",
        },
    },
    "decline": {
        "summary": "Decline, with the policy's reason codes",
        "value": {"outcome": "DECLINE", "reasons": ["RC_LATE_PAYMENTS", "RC_DEBT_BURDEN"]},
    },
    "request_info": {
        "summary": "Ask the customer for more documents",
        "value": {
            "outcome": "REQUEST_INFO",
            "requested_documents": ["INCOME_PROOF"],
            "note": "Please send your last three payslips.",
        },
    },
}

DECISION_RESPONSE: Final[dict[str, Any]] = {
    "appeal_id": APPEAL_ID,
    "task_id": TASK_ID,
    "status": "PARTIALLY_APPROVED",
    "approved_limit_minor": 500000,
}
