"""The shells' side of mirroring: send a copy once, in the background, bounded.

`MirrorSender` owns a `MirrorGate` (copies in flight, drop when full). The sync shell runs
each copy on a short-lived daemon thread, the async shell as an asyncio task it tracks
and cancels on `aclose()`. A copy picks one endpoint of the mirror service, is sent once
through the inner transport (no retries, no hedges), has its body read and dropped, and
feeds the endpoint's load metric like any request. Nothing it does reaches the caller.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import httpx

from .._core.actions import Mirror
from .._core.address import address_request
from .._runtime import Registry
from ..policy import Service
from ..routing.gate import MirrorGate

logger = logging.getLogger("meshclient.routing")

Finish = Callable[[bool], None]


def _plan(registry: Registry, action: Mirror) -> tuple[httpx.Request, Finish] | None:
    assert isinstance(action.service, Service)
    runtime = registry.runtime(action.service)
    state = runtime.balancer.pick()
    if state is None:
        return None
    request = address_request(action.request, action.service, state.endpoint)
    start = state.begin(runtime.clock.now_ns())

    def finish(ok: bool) -> None:
        state.end(start, runtime.clock.now_ns(), ok)

    return request, finish


class MirrorSender:
    def __init__(self, registry: Registry, gate: MirrorGate | None = None) -> None:
        self.registry = registry
        self.gate = gate if gate is not None else MirrorGate()
        self._tasks: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        gate = self.gate
        return (f"<MirrorSender in_flight={gate.in_flight}/{gate.limit} "
                f"tasks={len(self._tasks)} {gate.stats}>")

    def send_sync(self, inner: httpx.BaseTransport, action: Mirror) -> None:
        if not self.gate.try_enter():
            return
        try:
            thread = threading.Thread(target=self._run_sync, args=(inner, action),
                                      name="meshclient-mirror", daemon=True)
            thread.start()
        except Exception:  # never let the copy affect the call
            self.gate.leave(False)

    def _run_sync(self, inner: httpx.BaseTransport, action: Mirror) -> None:
        ok = False
        try:
            plan = _plan(self.registry, action)
            if plan is not None:
                request, finish = plan
                try:
                    response = inner.handle_request(request)
                    try:
                        response.read()
                    finally:
                        response.close()
                    ok = response.status_code < 500
                finally:
                    finish(ok)
        except Exception as exc:
            logger.debug("mirror copy to %s failed: %r", action.request.url.host, exc)
        finally:
            self.gate.leave(ok)

    def send_async(self, inner: httpx.AsyncBaseTransport, action: Mirror) -> None:
        if not self.gate.try_enter():
            return
        try:
            task = asyncio.get_running_loop().create_task(self._run_async(inner, action))
        except Exception:
            self.gate.leave(False)
            return
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_async(self, inner: httpx.AsyncBaseTransport, action: Mirror) -> None:
        ok = False
        try:
            plan = _plan(self.registry, action)
            if plan is not None:
                request, finish = plan
                try:
                    response = await inner.handle_async_request(request)
                    try:
                        await response.aread()
                    finally:
                        await response.aclose()
                    ok = response.status_code < 500
                finally:
                    finish(ok)
        except Exception as exc:
            logger.debug("mirror copy to %s failed: %r", action.request.url.host, exc)
        finally:
            self.gate.leave(ok)

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
