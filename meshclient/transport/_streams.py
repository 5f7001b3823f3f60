"""Response streams that report when the body is finished (closed or fully read), so load
measurements and spans end then, not when the headers arrive (tower's TrackCompletion).

On every meshed response, so kept allocation-light: one wrapper object, the callback held
directly and dropped once called."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx

from .._core.actions import OnClose


class TrackedSyncStream(httpx.SyncByteStream):
    """Wraps a sync response stream; calls `on_close` exactly once."""

    __slots__ = ("_on_close", "_stream")

    def __init__(self, stream: httpx.SyncByteStream, on_close: OnClose) -> None:
        self._stream = stream
        self._on_close: OnClose | None = on_close

    def _finish(self, error: BaseException | None) -> None:
        callback, self._on_close = self._on_close, None
        if callback is not None:
            callback(error)

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except BaseException as exc:
            self._finish(exc)
            raise
        self._finish(None)

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            if self._on_close is not None:  # usually already called: the body was read
                self._finish(None)


class TrackedAsyncStream(httpx.AsyncByteStream):
    """Wraps an async response stream; calls `on_close` exactly once."""

    __slots__ = ("_on_close", "_stream")

    def __init__(self, stream: httpx.AsyncByteStream, on_close: OnClose) -> None:
        self._stream = stream
        self._on_close: OnClose | None = on_close

    def _finish(self, error: BaseException | None) -> None:
        callback, self._on_close = self._on_close, None
        if callback is not None:
            callback(error)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except BaseException as exc:
            self._finish(exc)
            raise
        self._finish(None)

    async def aclose(self) -> None:
        try:
            await self._stream.aclose()
        finally:
            if self._on_close is not None:  # usually already called: the body was read
                self._finish(None)


def track_sync(response: httpx.Response, on_close: OnClose) -> None:
    """Have `on_close` called when `response`'s body is closed or fully read: at once for a
    response already read (an in-memory one: httpx never closes it again), else by its
    stream."""
    if response.is_closed:
        on_close(None)
    else:
        response.stream = TrackedSyncStream(response.stream, on_close)  # type: ignore[arg-type]


def track_async(response: httpx.Response, on_close: OnClose) -> None:
    """`track_sync` for an async response."""
    if response.is_closed:
        on_close(None)
    else:
        response.stream = TrackedAsyncStream(response.stream, on_close)  # type: ignore[arg-type]
