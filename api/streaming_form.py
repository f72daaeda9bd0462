"""A multipart/form-data body read as it arrives, its file part streamed to a worker thread.

FastAPI's `UploadFile` spools the whole body (to memory, then disk) before the route runs, so a
size limit can only be checked after the fact. Here the event loop parses the body chunk by
chunk with python-multipart's push parser and hands the file's bytes through a small bounded
channel to a blocking consumer (boto3's upload) running in a worker thread. The limit is
enforced on every chunk; the first byte over it stops reading and makes the consumer fail,
which is what makes boto3 abort a multipart upload and store nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Final, Generic, TypeVar

import anyio
from anyio import from_thread, lowlevel, to_thread
from anyio.abc import TaskGroup
from python_multipart import MultipartParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header

from core.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

T = TypeVar("T")

# Form fields besides the file are short (a document type); anything longer is not ours.
MAX_FIELD_BYTES: Final = 1024
MAX_PARTS: Final = 16
# What a multipart envelope may add to the file: boundaries, part headers, small fields.
ENVELOPE_ALLOWANCE: Final = 64 * 1024
_CHANNEL_CHUNKS: Final = 16


class BodyIncomplete(Exception):
    """Raised to the consumer when the body stopped before the file did (error, disconnect):
    it must fail rather than store a truncated file."""


class ByteChannel:
    """A bounded pipe: the event loop writes chunks, a worker thread reads them like a file.

    Create it on the event loop; read it from any thread (boto3 reads from its own pool).
    """

    def __init__(self, max_chunks: int = _CHANNEL_CHUNKS) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[bytes](max_chunks)
        self._token = lowlevel.current_token()
        self._buffer = bytearray()
        self._eof = False
        self._closed = False
        self._failed = False

    # Event-loop side.
    async def write(self, data: bytes) -> bool:
        """Waits while the channel is full; False once the reader has stopped."""
        try:
            await self._send.send(data)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            return False
        return True

    def finish(self) -> None:
        self._closed = True
        self._send.close()

    def fail(self) -> None:
        """Ends the stream as broken (a no-op once it finished cleanly)."""
        if not self._closed:
            self._closed = self._failed = True
            self._send.close()

    def close_reader(self) -> None:
        self._receive.close()

    # Worker-thread side: the file-like object the consumer reads.
    def read(self, n: int = -1) -> bytes:
        while not self._eof and (n is None or n < 0 or len(self._buffer) < n):
            try:
                self._buffer += from_thread.run(self._receive.receive, token=self._token)
            except anyio.EndOfStream:
                if self._failed:
                    raise BodyIncomplete("the request body ended before the file") from None
                self._eof = True
        size = len(self._buffer) if n is None or n < 0 else min(n, len(self._buffer))
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data


@dataclass(frozen=True)
class FilePart:
    name: str
    filename: str
    content_type: str  # as declared in the part's headers; "" when absent


@dataclass
class StreamedForm(Generic[T]):
    fields: dict[str, str]
    file: FilePart | None
    stored: T | None


@dataclass
class _PartState:
    headers: dict[str, str] = field(default_factory=dict)
    header_name: bytearray = field(default_factory=bytearray)
    header_value: bytearray = field(default_factory=bytearray)
    name: str = ""
    is_file: bool = False
    field_value: bytearray = field(default_factory=bytearray)


class _FormEvents:
    """python-multipart callbacks (synchronous, called inside `parser.write`)."""

    def __init__(self, file_field: str) -> None:
        self.file_field = file_field
        self.fields: dict[str, str] = {}
        self.file: FilePart | None = None
        self.file_data: list[bytes] = []
        self.file_done = False
        self.ended = False
        self.parts = 0
        self._part = _PartState()

    def on_part_begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidInput("The form has too many parts.", code="too_many_parts")
        self._part = _PartState()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._part.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._part.header_value += data[start:end]

    def on_header_end(self) -> None:
        name = self._part.header_name.decode("latin-1").strip().lower()
        # latin-1 keeps the raw bytes; names in UTF-8 are decoded once the header is parsed.
        self._part.headers[name] = self._part.header_value.decode("latin-1").strip()
        self._part.header_name, self._part.header_value = bytearray(), bytearray()

    def on_headers_finished(self) -> None:
        _, params = parse_options_header(self._part.headers.get("content-disposition", ""))
        self._part.name = params.get(b"name", b"").decode("latin-1")
        filename = params.get(b"filename")
        if self._part.name == self.file_field:
            if self.file is not None:
                raise InvalidInput("Send one file per request.", code="one_file_per_request")
            self._part.is_file = True
            self.file = FilePart(
                name=self._part.name,
                filename=(filename or b"").decode("utf-8", "replace"),
                content_type=self._part.headers.get("content-type", ""),
            )

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._part.is_file:
            self.file_data.append(data[start:end])
            return
        self._part.field_value += data[start:end]
        if len(self._part.field_value) > MAX_FIELD_BYTES:
            raise InvalidInput(f"The form field {self._part.name!r} is too long.", code="field_too_long")

    def on_part_end(self) -> None:
        if self._part.is_file:
            self.file_done = True
        elif self._part.name:
            self.fields[self._part.name] = self._part.field_value.decode("utf-8", "replace")

    def on_end(self) -> None:
        self.ended = True

    def take_file_data(self) -> list[bytes]:
        data, self.file_data = self.file_data, []
        return data


def multipart_boundary(content_type: str) -> bytes:
    media_type, params = parse_options_header(content_type)
    if media_type != b"multipart/form-data":
        raise UnsupportedMediaType(
            "Send the document as multipart/form-data with the file in a part named `file`.",
            code="multipart_required",
        )
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("The multipart body has no boundary.", code="malformed_multipart")
    return boundary


async def read_streamed_form(
    body: AsyncIterable[bytes],
    content_type: str,
    *,
    file_field: str,
    max_file_bytes: int,
    check_file: Callable[[FilePart, dict[str, str]], None],
    consume: Callable[[FilePart, ByteChannel], T],
) -> StreamedForm[T]:
    """Parses `body`; when the file part starts, `check_file` (on the loop) may refuse it, then
    `consume` runs in a worker thread reading the file's bytes from a `ByteChannel`.

    Errors, in order of precedence: the body's (malformed, too large, disconnected), then the
    consumer's. A consumer that returned stays the caller's to clean up if an error follows.
    """
    events = _FormEvents(file_field)
    try:
        parser = MultipartParser(
            multipart_boundary(content_type),
            {
                "on_part_begin": events.on_part_begin,
                "on_header_field": events.on_header_field,
                "on_header_value": events.on_header_value,
                "on_header_end": events.on_header_end,
                "on_headers_finished": events.on_headers_finished,
                "on_part_data": events.on_part_data,
                "on_part_end": events.on_part_end,
                "on_end": events.on_end,
            },
        )
    except FormParserError as exc:
        raise InvalidInput(f"The multipart body is malformed: {exc}", code="malformed_multipart") from exc

    channel = ByteChannel()
    stored: list[T] = []
    consumer_errors: list[Exception] = []
    body_error: Exception | None = None

    async def _consume(part: FilePart) -> None:
        try:
            stored.append(await to_thread.run_sync(consume, part, channel))
        except Exception as exc:
            consumer_errors.append(exc)
        finally:
            channel.close_reader()

    async with anyio.create_task_group() as tg:
        try:
            await _pump(body, parser, events, channel, tg, max_file_bytes, check_file, _consume)
        except Exception as exc:
            body_error = exc
        finally:
            # Whatever stopped the body (error, disconnect, cancellation) must stop the
            # consumer too, or the task group would wait for it forever.
            channel.fail()
    if body_error is not None:
        raise body_error
    if consumer_errors:
        raise consumer_errors[0]
    return StreamedForm(fields=events.fields, file=events.file, stored=stored[0] if stored else None)


async def _pump(
    body: AsyncIterable[bytes],
    parser: MultipartParser,
    events: _FormEvents,
    channel: ByteChannel,
    tg: TaskGroup,
    max_file_bytes: int,
    check_file: Callable[[FilePart, dict[str, str]], None],
    consume: Callable[[FilePart], Coroutine[Any, Any, None]],
) -> None:
    started = finished = False
    file_bytes = body_bytes = 0
    async for chunk in body:
        body_bytes += len(chunk)
        if body_bytes > max_file_bytes + ENVELOPE_ALLOWANCE:
            raise _too_large(max_file_bytes)
        try:
            parser.write(chunk)
        except FormParserError as exc:
            raise InvalidInput(f"The multipart body is malformed: {exc}", code="malformed_multipart") from exc
        if events.file is not None and not started:
            check_file(events.file, events.fields)
            tg.start_soon(consume, events.file)
            started = True
        for piece in events.take_file_data():
            file_bytes += len(piece)
            if file_bytes > max_file_bytes:
                raise _too_large(max_file_bytes)
            if not await channel.write(piece):
                return  # the consumer stopped: its error is reported
        if events.file_done and not finished:
            channel.finish()
            finished = True
    if not events.ended:
        raise InvalidInput(
            "The multipart body ended before its closing boundary.", code="malformed_multipart"
        )
    channel.finish()


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The file is larger than the {max_bytes // (1024 * 1024)} MiB limit.",
        code="document_too_large",
        max_bytes=max_bytes,
    )
