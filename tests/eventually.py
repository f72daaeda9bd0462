"""The one way the tests wait: `eventually` probes until a final condition holds, or fails
saying what it waited for and what it last saw.

Appeals run on real servers in other tasks, threads and processes, so a test observes their
outcome some time after it acts. Wait for a FINAL state (a document ACCEPTED or REJECTED, the
notices written), never for "no longer X": an intermediate state may be skipped or seen a
moment early on a busy machine.

Deadlines scale with APPEALS_TEST_PATIENCE (a factor, default 1): a slow or shared CI machine
sets it to 2 or 3 instead of anyone raising timeouts test by test.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import pprint
import time
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

PATIENCE_ENV = "APPEALS_TEST_PATIENCE"
# Generous on purpose: a passing wait returns as soon as its condition holds, so only a
# failing test ever pays for the full deadline.
DEFAULT_TIMEOUT = 60.0
_FIRST_DELAY, _BACKOFF, _MAX_DELAY = 0.02, 1.5, 0.25
_SHOWN_CHARS = 3000


def patience(seconds: float) -> float:
    """A deadline in seconds, scaled by APPEALS_TEST_PATIENCE; also for `asyncio.wait_for`."""
    raw = os.environ.get(PATIENCE_ENV, "").strip()
    try:
        factor = float(raw) if raw else 1.0
    except ValueError as exc:
        raise ValueError(f"{PATIENCE_ENV} must be a number (a factor such as 2), not {raw!r}") from exc
    if factor <= 0:
        raise ValueError(f"{PATIENCE_ENV} must be positive, not {raw!r}")
    return seconds * factor


class _Tries(Generic[T]):
    """The deadline, the backoff and what the last try saw, shared by both variants."""

    def __init__(self, what: str, timeout: float) -> None:
        self.what = what
        self.timeout = patience(timeout)
        self.started = time.monotonic()
        self.deadline = self.started + self.timeout
        self.delay = _FIRST_DELAY
        self.count = 0
        self.seen = False
        self.last_value: T | None = None
        self.last_error: Exception | None = None

    def saw(self, value: T) -> None:
        self.count += 1
        self.seen, self.last_value, self.last_error = True, value, None

    def failed(self, error: Exception) -> None:
        self.count += 1
        self.last_error = error

    def pause(self) -> float | None:
        """Seconds to wait before the next try; None once the deadline has passed."""
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            return None
        delay, self.delay = self.delay, min(self.delay * _BACKOFF, _MAX_DELAY)
        return min(delay, remaining)

    def timed_out(self) -> AssertionError:
        elapsed = time.monotonic() - self.started
        lines = [f"Timed out after {elapsed:.1f} s ({self.count} tries) waiting for {self.what}."]
        if self.seen:
            shown = pprint.pformat(self.last_value, width=100, compact=True)
            if len(shown) > _SHOWN_CHARS:
                shown = shown[:_SHOWN_CHARS] + " ...(cut)"
            lines.append(f"Last value seen: {shown}")
        else:
            lines.append("No try returned a value.")
        if self.last_error is not None:
            lines.append(f"The last try raised: {type(self.last_error).__name__}: {self.last_error}")
        lines.append(f"(Deadline {self.timeout:g} s; {PATIENCE_ENV} scales every deadline.)")
        error = AssertionError("\n".join(lines))
        error.__cause__ = self.last_error
        return error


@overload
async def eventually(
    probe: Callable[[], Awaitable[T]],
    until: Callable[[T], object] = ...,
    *,
    what: str,
    timeout: float = ...,
) -> T: ...
@overload
async def eventually(
    probe: Callable[[], T],
    until: Callable[[T], object] = ...,
    *,
    what: str,
    timeout: float = ...,
) -> T: ...
async def eventually(
    probe: Callable[[], Any],
    until: Callable[[Any], object] = bool,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Calls `probe` (sync or async) with a short backoff until `until(value)` is true and
    returns that value. A probe or predicate that raises counts as "not yet". After `timeout`
    seconds (times APPEALS_TEST_PATIENCE) it fails with `what` ("appeal 42 to be CLOSED"),
    the last value seen and the last exception raised.
    """
    tries: _Tries[Any] = _Tries(what, timeout)
    while True:
        try:
            value = probe()
            if inspect.isawaitable(value):
                value = await value
            tries.saw(value)
            if until(value):
                return value
        except Exception as exc:
            tries.failed(exc)
        delay = tries.pause()
        if delay is None:
            raise tries.timed_out()
        await asyncio.sleep(delay)


def eventually_sync(
    probe: Callable[[], T],
    until: Callable[[T], object] = bool,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
) -> T:
    """`eventually` for synchronous tests (the e2e tests drive the stack with a blocking
    client); it blocks the calling thread between tries."""
    tries: _Tries[T] = _Tries(what, timeout)
    while True:
        try:
            value = probe()
            tries.saw(value)
            if until(value):
                return value
        except Exception as exc:
            tries.failed(exc)
        delay = tries.pause()
        if delay is None:
            raise tries.timed_out()
        time.sleep(delay)
