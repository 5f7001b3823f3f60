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
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, NoReturn

import httpx

from .._core.actions import OnClose
from ..errors import DeadlineExceeded
from ._deadline import Watch

_monotonic_ns = time.monotonic_ns


class _Tracked:
    """What both tracked streams share: the inner stream, the callback, the watch."""

    __slots__ = ("_on_close", "_stream", "_watch")

    def __init__(self, stream: Any, on_close: OnClose | None,
                 watch: Watch | None = None) -> None:
        self._stream = stream
        self._on_close: OnClose | None = on_close
        self._watch: Watch | None = watch

    def _closed(self) -> None:
        """The body was closed: call back once, with the body's error (see the module's
        docstring)."""
        callback, self._on_close = self._on_close, None
        if callback is not None:
            error = sys.exc_info()[1]
            callback(error if isinstance(error, httpx.TransportError) else None)


def _failed(watch: Watch, exc: httpx.TransportError) -> NoReturn:
    """A read failed with `exc` (being handled): raise `DeadlineExceeded` when the deadline
    cut it short, else `exc` again."""
    if watch.fired and not isinstance(exc, DeadlineExceeded):
        raise watch.expired(exc) from exc
    raise exc


class TrackedSyncStream(_Tracked, httpx.SyncByteStream):
    """Wraps a sync response stream; calls `on_close` exactly once, when it is closed.
    With a `Watch` (the call's deadline, `_deadline.py`): the deadline is checked between
    chunks, a read the deadline cut short raises `DeadlineExceeded`, and closing disarms
    the watch (before the connection goes back to the pool)."""

    __slots__ = ()

    _stream: httpx.SyncByteStream

    def __iter__(self) -> Iterator[bytes]:
        if self._watch is None:
            return iter(self._stream)
        return self._watched(self._watch)

    def _watched(self, watch: Watch) -> Iterator[bytes]:
        at = watch.at
        try:
            for chunk in self._stream:
                if _monotonic_ns() >= at:
                    raise watch.expired(None)
                yield chunk
        except httpx.TransportError as exc:
            _failed(watch, exc)

    def close(self) -> None:
        try:
            if self._watch is not None:
                self._watch.disarm()
            self._stream.close()
        finally:
            self._closed()


class TrackedAsyncStream(_Tracked, httpx.AsyncByteStream):
    """`TrackedSyncStream` for an async response stream."""

    __slots__ = ()

    _stream: httpx.AsyncByteStream

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._watch is None:
            return self._stream.__aiter__()
        return self._watched(self._watch)

    async def _watched(self, watch: Watch) -> AsyncIterator[bytes]:
        at = watch.at
        try:
            async for chunk in self._stream:
                if _monotonic_ns() >= at:
                    raise watch.expired(None)
                yield chunk
        except httpx.TransportError as exc:
            _failed(watch, exc)

    async def aclose(self) -> None:
        try:
            if self._watch is not None:
                self._watch.disarm()
            await self._stream.aclose()
        finally:
            self._closed()


def _watcher(kind: type[_Tracked]) -> Callable[[httpx.Response, Watch | None], None]:
    def watch_stream(response: httpx.Response, watch: Watch | None) -> None:
        if watch is None:
            return
        if response.is_closed:  # read already (in memory): httpx never closes it again
            watch.disarm()
            return
        extensions = response.extensions
        watch.stream = (extensions.get("network_stream")
                        if extensions.get("http_version") == b"HTTP/1.1" else None)
        response.stream = kind(response.stream, None, watch)  # type: ignore[assignment]

    return watch_stream


def _both(first: OnClose, then: OnClose) -> OnClose:
    def both(error: BaseException | None) -> None:
        try:
            first(error)
        finally:
            then(error)

    return both


def _tracker(kind: type[_Tracked]) -> Callable[[httpx.Response, OnClose], None]:
    def track(response: httpx.Response, on_close: OnClose) -> None:
        if response.is_closed:
            on_close(None)
            return
        stream: Any = response.stream
        if type(stream) is not kind:
            response.stream = kind(stream, on_close)  # type: ignore[assignment]
        elif stream._on_close is None:  # watched, untracked
            stream._on_close = on_close
        else:  # tracked already: one hook calls both, in the order they were added
            stream._on_close = _both(stream._on_close, on_close)

    return track


#: `watch_sync(response, watch)`: put `response`'s body under the attempt's deadline (see
#: `TrackedSyncStream`); the watch learns the connection's network stream. No watch:
#: nothing to do. `watch_async`: the same for an async response.
watch_sync = _watcher(TrackedSyncStream)
watch_async = _watcher(TrackedAsyncStream)

#: `track_sync(response, on_close)`: have `on_close` called when `response`'s body is
#: closed: at once for a response already read (an in-memory one: httpx never closes it
#: again), else by its stream. `track_async`: the same for an async response. (Made per
#: stream class, so the usual call pays no second function call.)
track_sync = _tracker(TrackedSyncStream)
track_async = _tracker(TrackedAsyncStream)
