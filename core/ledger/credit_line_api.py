"""Applying a decided limit through an external credit-line HTTP API (when configured).

    POST {url}/credit-lines/{account_id}/limit
    Authorization: Bearer <token>            (when a token is set)
    Idempotency-Key: limit-restore:{appeal_id}
    {"account_id", "new_limit_minor", "currency", "reason": "appeal_approved", "appeal_id"}

The key is the same on every attempt for an appeal, so the API applies the change once however
often a retry repeats the request. A connection error, a timeout, 408, 425, 429 or 5xx is worth
retrying (CreditLineUnavailable); any other non-2xx answer is the API refusing the change
(CreditLineRefused), which no retry can fix.
"""

from __future__ import annotations

import httpx

IDEMPOTENCY_HEADER = "Idempotency-Key"
_RETRYABLE_STATUSES = {408, 425, 429}


class CreditLineUnavailable(Exception):
    """A transient failure: the request may be repeated with the same idempotency key."""


class CreditLineRefused(Exception):
    """The API refused the change; an operator has to look at it."""

    def __init__(self, status_code: int, body: str) -> None:
        super().__init__(f"The credit-line API refused the limit change: HTTP {status_code}: {body[:500]}")
        self.status_code = status_code
        self.body = body


def idempotency_key(appeal_id: str) -> str:
    return f"limit-restore:{appeal_id}"


def review_idempotency_key(run_date: str, account_id: str) -> str:
    """The portfolio review's key: one restore per account and run date."""
    return f"limit-restore:review:{run_date}:{account_id}"


def apply_limit_externally(
    url: str,
    token: str | None,
    *,
    appeal_id: str | None,
    account_id: str,
    new_limit_minor: int,
    currency: str = "CNY",
    timeout: float = 15.0,
    reason: str = "appeal_approved",
    key: str | None = None,
) -> None:
    """Returns when the API accepted (2xx) the new limit; raises otherwise. `key` replaces the
    appeal's idempotency key for a change no appeal asked for (the portfolio review's
    `review_idempotency_key`), whose `appeal_id` is None."""
    if key is None and appeal_id is None:
        raise ValueError("a limit change needs an appeal id or an idempotency key")
    headers = {IDEMPOTENCY_HEADER: key or idempotency_key(appeal_id or "")}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    body = {
        "account_id": account_id,
        "new_limit_minor": new_limit_minor,
        "currency": currency,
        "reason": reason,
        "appeal_id": appeal_id,
    }
    try:
        response = httpx.post(
            f"{url.rstrip('/')}/credit-lines/{account_id}/limit",
            json=body,
            headers=headers,
            timeout=timeout,
            follow_redirects=False,
        )
    except httpx.HTTPError as exc:  # connection refused or reset, timeout, protocol error
        raise CreditLineUnavailable(f"The credit-line API could not be reached: {exc!r}") from exc
    if response.is_success:
        return
    if response.status_code >= 500 or response.status_code in _RETRYABLE_STATUSES:
        raise CreditLineUnavailable(f"The credit-line API answered HTTP {response.status_code}.")
    raise CreditLineRefused(response.status_code, response.text)
