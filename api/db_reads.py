"""The API's short database reads (an appeal, a queue page) on a few threads of their own.

They run off the event loop like all sync I/O, but not on anyio's default pool of 40 threads:
eight requests reading at once on eight threads spend much of their CPU handing the interpreter
lock to each other (bench/api_bench.py: at concurrency 8 on SQLite, 2 threads cost half the CPU
per request of 40 and answer 1.8 times as many). The default pool stays for long work that
waits (an upload streamed from a slow client holds its thread for the whole upload), so a few
slow uploads never hold up the reads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from anyio import CapacityLimiter, to_thread

T = TypeVar("T")


class DatabaseReads:
    def __init__(self, threads: int) -> None:
        self._limiter = CapacityLimiter(threads)

    @property
    def threads(self) -> int:
        return int(self._limiter.total_tokens)

    async def run(self, read: Callable[[], T]) -> T:
        """`read()` on one of the read threads, once one is free."""
        return await to_thread.run_sync(read, limiter=self._limiter)
