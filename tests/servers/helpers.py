"""Helpers for resilience behaviour tests: run requests concurrently or under an inbound
context through either shell, and a redis-server on a free port."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from typing import Any

import anyio
import httpx

from meshclient.context import Inbound, inbound_context
from tests.servers.caller import Caller
from tests.servers.redis_server import RedisServer


def concurrent(caller: Caller, n: int, method: str, url: str,
               **kwargs: Any) -> list[httpx.Response | Exception]:
    """`n` requests at once; each result is a response (body read) or the exception."""
    if caller.kind == "sync":
        import concurrent.futures

        def one() -> httpx.Response | Exception:
            try:
                return caller.client.request(method, url, **kwargs)  # type: ignore[no-any-return]
            except Exception as exc:
                return exc

        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            return list(pool.map(lambda _: one(), range(n)))

    async def run(client: httpx.AsyncClient) -> list[httpx.Response | Exception]:
        out: list[httpx.Response | Exception] = []

        async def one() -> None:
            try:
                out.append(await client.request(method, url, **kwargs))
            except Exception as exc:
                out.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
        return out

    return caller.call(run)  # type: ignore[no-any-return]


def request_inbound(caller: Caller, value: Inbound, method: str, url: str,
                    **kwargs: Any) -> httpx.Response:
    """One request made while handling `value` (context.inbound set in the caller's task)."""
    if caller.kind == "sync":
        with inbound_context(value):
            return caller.client.request(method, url, **kwargs)  # type: ignore[no-any-return]

    async def run(client: httpx.AsyncClient) -> httpx.Response:
        with inbound_context(value):
            return await client.request(method, url, **kwargs)

    return caller.call(run)  # type: ignore[no-any-return]


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free loopback port; yields its URL."""
    if shutil.which("redis-server") is None:
        import pytest

        pytest.skip("redis-server is not installed (.ci/run installs it)")
    with RedisServer() as server:
        yield server.url
