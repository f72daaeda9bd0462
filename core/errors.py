"""Typed domain errors. Each carries the HTTP status and a stable machine-readable code."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "bad_request"
    title = "Bad request"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code
        self.extra = extra


class NotFound(DomainError):
    status_code = 404
    code = "not_found"
    title = "Not found"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class Unauthorized(DomainError):
    status_code = 401
    code = "unauthorized"
    title = "Unauthorized"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(DomainError):
    status_code = 412
    code = "precondition_failed"
    title = "Precondition failed"


class InvalidInput(DomainError):
    status_code = 422
    code = "invalid_input"
    title = "Unprocessable content"


class PayloadTooLarge(DomainError):
    status_code = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(DomainError):
    status_code = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "service_unavailable"
    title = "Service unavailable"


class Gone(DomainError):
    status_code = 410
    code = "gone"
    title = "Gone"


class TooManyRequests(DomainError):
    status_code = 429
    code = "rate_limited"
    title = "Too many requests"
