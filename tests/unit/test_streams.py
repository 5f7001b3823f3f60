"""Tracked response streams call their callback exactly once: on full read, close or error."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anyio
import httpx
import pytest

from meshclient.transport._streams import TrackedAsyncStream, TrackedSyncStream


class _Broken(httpx.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b"a"
        raise httpx.ReadError("cut")


class _ABroken(httpx.AsyncByteStream):
    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"a"
        raise httpx.ReadError("cut")


def test_sync_read_then_close_calls_once() -> None:
    calls: list[BaseException | None] = []
    stream = TrackedSyncStream(httpx.ByteStream(b"abc"), calls.append)
    assert b"".join(stream) == b"abc"
    stream.close()
    assert calls == [None]


def test_sync_error_is_reported_once() -> None:
    calls: list[BaseException | None] = []
    stream = TrackedSyncStream(_Broken(), calls.append)
    with pytest.raises(httpx.ReadError):
        list(stream)
    stream.close()
    assert len(calls) == 1 and isinstance(calls[0], httpx.ReadError)


def test_async_close_without_reading_calls_once() -> None:
    calls: list[BaseException | None] = []

    async def main() -> None:
        stream = TrackedAsyncStream(httpx.ByteStream(b"abc"), calls.append)
        await stream.aclose()
        await stream.aclose()

    anyio.run(main)
    assert calls == [None]


def test_async_error_is_reported_once() -> None:
    calls: list[BaseException | None] = []

    async def main() -> None:
        stream = TrackedAsyncStream(_ABroken(), calls.append)
        with pytest.raises(httpx.ReadError):
            async for _ in stream:
                pass
        await stream.aclose()

    anyio.run(main)
    assert len(calls) == 1 and isinstance(calls[0], httpx.ReadError)
