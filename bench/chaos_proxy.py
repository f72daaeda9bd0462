"""A TCP proxy in front of the S3 server for bench/chaos.py: the API and worker processes reach
S3 through it, so the harness can make S3 refuse connections or hang without losing what the
S3 server holds (moto keeps objects in memory: restarting it would lose every upload).

- `refuse()`: the listening socket is closed and every open connection reset, as when the
  server's process is gone; new connections are refused until `heal()`.
- `hang()`: connections are accepted and bytes read, but nothing is passed on in either
  direction until `heal()`, when everything held flows on (a client whose read timeout passed
  meanwhile has given up and retried).
- `lose_answers(share)`: requests reach the server, but (for that share of them) the
  connection is reset as the answer starts back, so the client never learns the outcome of
  what the server did (a crash or a network cut after the commit, before the response): its
  retry must not do it twice.

The harness also puts one in front of each API process, for the lost-answers fault.

It runs its own event loop in a daemon thread; the methods are called from any thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import threading
from concurrent.futures import Future
from typing import Any

_CHUNK = 64 * 1024


class FaultyProxy:
    def __init__(self, *, host: str, port: int, upstream_host: str, upstream_port: int) -> None:
        self.host, self.port = host, port
        self.upstream = (upstream_host, upstream_port)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="s3-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self._flowing: asyncio.Event | None = None
        self._transports: set[asyncio.BaseTransport] = set()
        self.mode = "pass"
        self.lose_share = 1.0
        self.answers_lost = 0
        self._rng = random.Random(12)

    # -- control, from any thread -------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        self._call(self._start())

    def refuse(self) -> None:
        self.mode = "refuse"
        self._call(self._refuse())

    def hang(self) -> None:
        self.mode = "hang"
        self._call(self._hang())

    def lose_answers(self, share: float = 1.0) -> None:
        """Loses each answer with probability `share` (seeded: runs repeat)."""
        self.lose_share = share
        self.mode = "lose-answers"

    def heal(self) -> None:
        self.mode = "pass"
        self._call(self._heal())

    def stop(self) -> None:
        if not self._thread.is_alive():
            return
        with contextlib.suppress(Exception):
            self._call(self._refuse())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _call(self, coro: Any) -> None:
        future: Future[None] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        future.result(10)

    # -- inside the proxy's loop ----------------------------------------------------------------

    async def _start(self) -> None:
        self._flowing = asyncio.Event()
        self._flowing.set()
        await self._listen()

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._handle, self.host, self.port, reuse_address=True)

    async def _refuse(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for transport in list(self._transports):
            with contextlib.suppress(Exception):
                transport.abort()  # type: ignore[attr-defined]
        self._transports.clear()
        assert self._flowing is not None
        self._flowing.set()  # what was held is dropped with its connection

    async def _hang(self) -> None:
        assert self._flowing is not None
        self._flowing.clear()

    async def _heal(self) -> None:
        assert self._flowing is not None
        await self._listen()
        self._flowing.set()

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        assert self._flowing is not None
        self._transports.add(client_writer.transport)
        upstream_writer: asyncio.StreamWriter | None = None
        try:
            await self._flowing.wait()  # hanging: the connection is accepted, nothing answers
            try:
                upstream_reader, upstream_writer = await asyncio.open_connection(*self.upstream)
            except OSError:
                return
            self._transports.add(upstream_writer.transport)
            await asyncio.gather(
                self._pipe(client_reader, upstream_writer),
                self._pipe(upstream_reader, client_writer, answers=True),
            )
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    self._transports.discard(writer.transport)
                    with contextlib.suppress(Exception):
                        writer.close()

    async def _pipe(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, answers: bool = False
    ) -> None:
        assert self._flowing is not None
        try:
            while True:
                data = await reader.read(_CHUNK)
                if not data:
                    break
                await self._flowing.wait()
                if answers and self.mode == "lose-answers" and self._rng.random() < self.lose_share:
                    self.answers_lost += 1
                    writer.transport.abort()  # the server has answered; the client hears a reset
                    break
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            with contextlib.suppress(Exception):
                if writer.can_write_eof():
                    writer.write_eof()
