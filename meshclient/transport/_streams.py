"""Response streams that report when the body is finished (closed), so load measurements
and spans end then, not when the headers arrive (tower's TrackCompletion).

On every meshed response, so kept light: iteration is the inner stream's own (no frame of
ours per chunk: a generator wrapper here cost ~5 µs per request against a real server),
and the callback runs once, when httpx closes the body. httpx always closes it: after a
full read (`Response.read`/`iter_*` close at the end), when reading fails (`Client.send`
and `Client.stream` close it while the error propagates), and at the end of a `with
client.stream(...)` block. A body whose reading failed is told apart by the transport
error (reset, timeout, protocol error) propagating while it is closed; other exceptions
propagating then are the caller's own, not the body's."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator

import httpx

from .._core.actions import OnClose

_new_object = object.__new__


class TrackedSyncStream(httpx.SyncByteStream):
    """Wraps a sync response stream; calls `on_close` exactly once, when it is closed."""

    __slots__ = ("_on_close", "_stream")

    def __init__(self, stream: httpx.SyncByteStream, on_close: OnClose) -> None:
        self._stream = stream
        self._on_close: OnClose | None = on_close

    def __iter__(self) -> Iterator[bytes]:
        return iter(self._stream)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            callback, self._on_close = self._on_close, None
            if callback is not None:  # with the body's error: see the module's docstring
                error = sys.exc_info()[1]
                callback(error if isinstance(error, httpx.TransportError) else None)


class TrackedAsyncStream(httpx.AsyncByteStream):
    """Wraps an async response stream; calls `on_close` exactly once, when it is closed."""

    __slots__ = ("_on_close", "_stream")

    def __init__(self, stream: httpx.AsyncByteStream, on_close: OnClose) -> None:
        self._stream = stream
        self._on_close: OnClose | None = on_close

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            callback, self._on_close = self._on_close, None
            if callback is not None:  # with the body's error: see the module's docstring
                error = sys.exc_info()[1]
                callback(error if isinstance(error, httpx.TransportError) else None)


def track_sync(response: httpx.Response, on_close: OnClose) -> None:
    """Have `on_close` called when `response`'s body is closed: at once for a response
    already read (an in-memory one: httpx never closes it again), else by its stream."""
    if response.is_closed:
        on_close(None)
    else:  # `TrackedSyncStream(response.stream, on_close)`, without the `__init__` frame
        stream = _new_object(TrackedSyncStream)
        stream._stream, stream._on_close = response.stream, on_close  # type: ignore[assignment]
        response.stream = stream


def track_async(response: httpx.Response, on_close: OnClose) -> None:
    """`track_sync` for an async response."""
    if response.is_closed:
        on_close(None)
    else:  # `TrackedAsyncStream(response.stream, on_close)`, without the `__init__` frame
        stream = _new_object(TrackedAsyncStream)
        stream._stream, stream._on_close = response.stream, on_close  # type: ignore[assignment]
        response.stream = stream
