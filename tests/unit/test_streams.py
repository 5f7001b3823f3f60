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


def test_sync_chunks_pass_through_in_order_through_httpx() -> None:
    class Chunks(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield from (b"a", b"", b"bc", b"d")

    calls: list[BaseException | None] = []
    stream = TrackedSyncStream(Chunks(), calls.append)
    assert isinstance(stream, httpx.SyncByteStream)
    transport = httpx.MockTransport(lambda request: httpx.Response(200, stream=stream))
    with httpx.Client(transport=transport) as client, \
            client.stream("GET", "http://users/") as response:
        assert calls == []
        assert list(response.iter_raw()) == [b"a", b"bc", b"d"]  # (closes it at the end)
    assert calls == [None]


def test_sync_read_then_close_calls_once() -> None:
    calls: list[BaseException | None] = []
    stream = TrackedSyncStream(httpx.ByteStream(b"abc"), calls.append)
    assert b"".join(stream) == b"abc"
    assert calls == []  # finished when httpx closes it (it always does after a read)
    stream.close()
    stream.close()
    assert calls == [None]


def test_sync_error_is_reported_once() -> None:
    calls: list[BaseException | None] = []
    stream = TrackedSyncStream(_Broken(), calls.append)
    with pytest.raises(httpx.ReadError):
        try:
            list(stream)
        except httpx.ReadError:
            stream.close()  # as httpx's Client.send does while the error propagates
            raise
    stream.close()
    assert len(calls) == 1 and isinstance(calls[0], httpx.ReadError)


def test_the_callers_own_exception_is_not_a_body_error() -> None:
    calls: list[BaseException | None] = []
    stream = TrackedSyncStream(httpx.ByteStream(b"abc"), calls.append)
    try:
        raise ValueError("the caller's")
    except ValueError:
        stream.close()
    assert calls == [None]


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
            try:
                async for _ in stream:
                    pass
            except httpx.ReadError:
                await stream.aclose()
                raise
        await stream.aclose()

    anyio.run(main)
    assert len(calls) == 1 and isinstance(calls[0], httpx.ReadError)


@pytest.mark.parametrize("streaming", [False, True])
def test_a_body_cut_by_the_server_is_reported_through_httpx(streaming: bool) -> None:
    """Through a real httpx.Client: a body whose reading fails reaches the callback."""
    calls: list[BaseException | None] = []

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, stream=TrackedSyncStream(_Broken(), calls.append))

    with httpx.Client(transport=httpx.MockTransport(handler)) as client, pytest.raises(httpx.ReadError):
        if streaming:
            with client.stream("GET", "http://users/") as response:
                response.read()
        else:
            client.get("http://users/")
    assert len(calls) == 1 and isinstance(calls[0], httpx.ReadError)
