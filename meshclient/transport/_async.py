"""`AsyncMeshTransport`: the awaiting shell around the sans-I/O core."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import httpx

from .._core.actions import Discard, Done, Outcome, Send, Sleep, WaitForEndpoints
from ..discovery._base import EndpointWaiter
from ..policy import Policy, PolicyStore
from ._base import MeshBase
from ._streams import TrackedAsyncStream


async def _wait_ready(waiter: EndpointWaiter, timeout_s: float) -> None:
    """A service's first answer, awaited without a thread: polled with a short, growing
    sleep (1 ms to 50 ms), so the deadline bounds it exactly and a burst of cold requests
    does not fill the worker-thread pool. Only a service's first requests get here."""
    waiter.wait(0)  # starts the cache if needed; never blocks
    delay = 0.001
    with anyio.move_on_after(timeout_s):
        while not waiter.ready:
            await anyio.sleep(delay)
            delay = min(delay * 2, 0.05)


class AsyncMeshTransport(MeshBase, httpx.AsyncBaseTransport):
    """The `httpx.AsyncBaseTransport` twin of `MeshTransport` (same parameters; `inner`
    defaults to `httpx.AsyncHTTPTransport(**kwargs)`)."""

    def __init__(self, policy: Policy | PolicyStore | None = None,
                 inner: httpx.AsyncBaseTransport | None = None, **kwargs: Any) -> None:
        self._setup(policy)
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport(**kwargs)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        flow = self._flow(request)
        if flow is None:
            return await self.inner.handle_async_request(request)
        action = next(flow)
        while True:
            if isinstance(action, Send):
                try:
                    outcome = Outcome(response=await self.inner.handle_async_request(
                        action.request))
                except Exception as exc:  # the core decides what the caller sees
                    outcome = Outcome(error=exc)
                action = flow.send(outcome)
            elif isinstance(action, Done):
                response = action.response
                if action.on_close is not None:
                    response.stream = TrackedAsyncStream(
                        response.stream,  # type: ignore[arg-type]
                        action.on_close)
                return response
            elif isinstance(action, Sleep):
                await anyio.sleep(action.seconds)
                action = flow.send(None)
            elif isinstance(action, WaitForEndpoints):
                await _wait_ready(action.waiter, action.timeout_s)
                action = flow.send(None)
            else:
                assert isinstance(action, Discard)
                await action.response.aclose()
                action = flow.send(None)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close_owned)  # joins threads: off the loop
        await self.inner.aclose()

    async def __aenter__(self) -> AsyncMeshTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None = None,
                        exc_value: BaseException | None = None,
                        traceback: TracebackType | None = None) -> None:
        await anyio.to_thread.run_sync(self._close_owned)  # joins threads: off the loop
        await self.inner.__aexit__(exc_type, exc_value, traceback)
