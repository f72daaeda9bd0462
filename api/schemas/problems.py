"""The error bodies the API answers with: RFC 9457 problem details (application/problem+json).

These models only describe the bodies for the OpenAPI document (api/openapi.py); the bodies
themselves are written by api/problems.py."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema


class Problem(BaseModel):
    """What went wrong, for a person (`title`, `detail`) and for a program (`code`).

    Branch on `code`, which is stable; the texts may change. Some codes add members of their
    own (RFC 9457 extension members), listed below; others may be added over time, so ignore
    members you do not know."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(
        description="A URI naming the kind of problem: `urn:problem:appeals:` and the code.",
        examples=["urn:problem:appeals:appeal_not_found"],
    )
    title: str = Field(description="The HTTP status in words.", examples=["Not found"])
    status: int = Field(ge=400, le=599, description="The HTTP status code, repeated.", examples=[404])
    detail: str = Field(description="What happened and what to do next, for a person.")
    code: str = Field(description="Stable and machine-readable.", examples=["appeal_not_found"])
    instance: str | SkipJsonSchema[None] = Field(
        default=None, description="The path of the request that failed.", examples=["/appeals/3f0c"]
    )
    # Extension members: each is present only with the codes named in its description.
    reason: str | SkipJsonSchema[None] = Field(
        default=None,
        description="`invalid_token`, `token_expired`: what is wrong with the token "
        "(malformed, bad_signature, wrong_algorithm, expired, wrong_issuer, not_yet_valid, "
        "missing_claim, unknown_role, invalid).",
    )
    appeal_status: str | SkipJsonSchema[None] = Field(
        default=None,
        description="`not_withdrawable`, `not_collecting_documents`, `human_review_not_available`: "
        "the appeal's status when the request was refused.",
    )
    open_appeal_id: str | SkipJsonSchema[None] = Field(
        default=None, description="`open_appeal_exists`: the appeal already open for the account."
    )
    original_limit_minor: int | SkipJsonSchema[None] = Field(
        default=None, description="`requested_limit_above_original`: the most that can be asked for."
    )
    current_version: int | SkipJsonSchema[None] = Field(
        default=None, description="`stale_version`: the task's version now; reload and retry."
    )
    max_bytes: int | SkipJsonSchema[None] = Field(
        default=None,
        description="`document_too_large`: the largest file accepted, in bytes; "
        "`payload_too_large`: the largest body the operation takes.",
    )
    retry_after: int | SkipJsonSchema[None] = Field(
        default=None,
        description="`rate_limited`: seconds until the next write of this kind is taken (as the "
        "`Retry-After` header).",
    )
    expired_at: datetime | SkipJsonSchema[None] = Field(
        default=None, description="`upload_expired`: when the upload link expired."
    )


class InvalidParam(BaseModel):
    """One thing wrong with the request."""

    location: list[str | int] = Field(
        description='Where: ["body", "requested_limit_minor"], ["query", "limit"], ["header", ...].'
    )
    message: str
    type: str | None = Field(default=None, description="The kind of check that failed, e.g. `missing`.")


class ValidationProblem(Problem):
    """A request that is not valid. With `code` `validation_failed`, `errors` lists every
    field that failed its checks; other codes of status 422 say in `detail` what is wrong."""

    errors: list[InvalidParam] | SkipJsonSchema[None] = Field(
        default=None, description="`validation_failed`: each field that failed its checks."
    )


class LedgerIssue(BaseModel):
    """One problem in an uploaded ledger file."""

    file: str
    row: int | None = Field(description="1-based, counting the header row; null for the whole file.")
    field: str | None
    message: str


class LedgerImportProblem(Problem):
    """Uploaded ledger files that cannot be imported: nothing was written."""

    errors: list[LedgerIssue] = Field(description="The first 1,000 problems, by file, row and field.")
    error_count: int = Field(description="How many problems there are in all.")


PROBLEM_MODELS: tuple[type[Problem], ...] = (Problem, ValidationProblem, LedgerImportProblem)


def problem_json_schemas() -> dict[str, Any]:
    """The schemas of PROBLEM_MODELS, keyed by model name, with refs into components/schemas."""
    from pydantic.json_schema import models_json_schema

    _, top = models_json_schema(
        [(model, "serialization") for model in PROBLEM_MODELS],
        ref_template="#/components/schemas/{model}",
    )
    schemas: dict[str, Any] = top["$defs"]
    for schema in schemas.values():
        for prop in schema.get("properties", {}).values():
            # An optional member is left out, never null: drop the `null` default pydantic notes.
            if "default" in prop and prop["default"] is None and "anyOf" not in prop:
                del prop["default"]
    return schemas
