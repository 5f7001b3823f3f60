"""`AsyncMeshTransport`: the awaiting shell around the sans-I/O core."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import httpx

from .._core.actions import Discard, Done, Hedge, HedgeOutcome, Mirror, Outcome, Send, Sleep, WaitForEndpoints
from .._core.first import First
from ..discovery._base import EndpointWaiter
from ..policy import Policy, PolicyStore, Service
from ..routing import Decision
from ..security.routes import Guard
from ._base import MeshBase
from ._mirror import MirrorSender
from ._streams import track_async


async def _wait_ready(waiter: EndpointWaiter, timeout_s: float) -> None:
    """A service's first answer (issue-5), awaited without a thread: polled with a short,
    growing sleep (1 ms to 50 ms), so the deadline bounds it exactly and a burst of cold
    requests does not fill the worker-thread pool. Only a service's first requests wait."""
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
        self._inner_kwargs = kwargs
        self._setup(policy)
        self.inner = inner if inner is not None else httpx.AsyncHTTPTransport(**kwargs)
        self.mirrors = MirrorSender(self.registry)  # issue-6

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # one policy snapshot, routed once; issue-9: limits, credentials, mTLS
        service, decision, guard = self._begin(request)
        if guard is None:
            return await self._handle(request, None, service, decision)
        await guard.admit_async(request)
        try:
            response = await self._handle(request, guard, service, decision)
        except BaseException as exc:
            guard.observe(None, exc)
            guard.release()
            raise
        guard.observe(response.status_code, None)
        track_async(response, lambda _error: guard.release())
        return response

    async def _handle(self, request: httpx.Request, guard: Guard | None,
                      service: Service | None, decision: Decision | None) -> httpx.Response:
        start = self._flow(request, service, decision)
        if start is None:
            return await self.inner.handle_async_request(request)
        held: httpx.Response | None = None  # a response the flow still owns
        if isinstance(start, First):  # the usual call: attempt 1 without the generator
            if guard is None:
                try:
                    held = await self.inner.handle_async_request(start.sent)
                except Exception as exc:  # the core decides what the caller sees
                    step = start.finish(None, exc)
                else:
                    step = start.finish(held)
            else:
                sent = await self._send(start.as_send(), guard)
                held = sent.response
                step = start.finish(held, sent.error)
            if isinstance(step, Done):
                if step.on_close is not None:
                    track_async(step.response, step.on_close)
                return step.response
            flow = step  # not final: the flow takes over
        else:
            flow = start
        try:
            action = next(flow)
            while True:
                if type(action) is Send and guard is None:  # the usual step, inlined
                    try:
                        sent = Outcome(await self.inner.handle_async_request(action.request))
                    except Exception as exc:  # the core decides what the caller sees
                        sent = Outcome(None, exc)
                    held = sent.response or held
                    action = flow.send(sent)
                elif type(action) is Done:  # the usual last step
                    response = action.response
                    if action.on_close is not None:
                        track_async(response, action.on_close)
                    held = None
                    return response
                elif isinstance(action, (Send, Hedge)):
                    reply = await (self._send(action, guard) if isinstance(action, Send)
                                   else self._hedge(action, guard))
                    outcome = reply if isinstance(reply, Outcome) else reply.outcome
                    held = outcome.response or held
                    action = flow.send(reply)
                elif isinstance(action, Mirror):  # fire and forget, bounded
                    self.mirrors.send_async(self.inner, action)
                    action = flow.send(None)
                elif isinstance(action, Sleep):
                    await anyio.sleep(action.seconds)
                    action = flow.send(None)
                elif isinstance(action, WaitForEndpoints):  # a service's first request
                    await _wait_ready(action.waiter, action.timeout_s)
                    action = flow.send(None)
                else:
                    assert isinstance(action, Discard)
                    await action.response.aclose()
                    action = flow.send(None)
        except BaseException:  # cancelled mid-call (or the flow raised): free the connection
            if held is not None and not held.is_closed:
                with anyio.CancelScope(shield=True):
                    await held.aclose()
            raise

    async def _send(self, send: Send, guard: Guard | None) -> Outcome:
        try:
            if guard is None:
                return Outcome(response=await self.inner.handle_async_request(send.request))
            inner = self._inner_for(guard, self.inner, httpx.AsyncHTTPTransport)
            return Outcome(response=await inner.handle_async_request(
                await guard.attach_async(send)))
        except Exception as exc:  # the core decides what the caller sees
            return Outcome(error=exc)

    async def _hedge(self, hedge: Hedge, guard: Guard | None) -> HedgeOutcome:
        """Race the primary and, after `delay_s`, the secondary; cancel the loser."""
        results: list[Outcome | None] = [None, None]
        order: list[int] = []
        finished = [anyio.Event(), anyio.Event()]
        changed = anyio.Event()

        async def run(i: int, send: Send) -> None:
            results[i] = await self._send(send, guard)
            order.append(i)
            finished[i].set()
            changed.set()

        winner: int | None = None
        async with anyio.create_task_group() as tg:
            tg.start_soon(run, 0, hedge.primary)
            with anyio.move_on_after(hedge.delay_s):
                await finished[0].wait()
            if finished[0].is_set():
                return HedgeOutcome(0, results[0] or Outcome(), None, False)
            tg.start_soon(run, 1, hedge.secondary)
            while winner is None:
                await changed.wait()
                changed = anyio.Event()
                for i in list(order):
                    outcome = results[i]
                    if outcome is not None and hedge.good(outcome):
                        winner = i
                        break
                if winner is None and len(order) == 2:
                    winner = order[-1]  # neither good: report the later one
            tg.cancel_scope.cancel()
        assert winner is not None
        loser = 1 - winner
        other = results[loser]
        if other is not None and other.response is not None:
            await other.response.aclose()
        won = results[winner]
        assert won is not None
        return HedgeOutcome(winner, won, other, True)

    async def aclose(self) -> None:
        await anyio.to_thread.run_sync(self._close_owned)  # issue-5; joins threads off the loop
        await self.mirrors.aclose()  # issue-6
        for inner in self._tls_transports():
            await inner.aclose()
        await self.inner.aclose()

    async def __aenter__(self) -> AsyncMeshTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None = None,
                        exc_value: BaseException | None = None,
                        traceback: TracebackType | None = None) -> None:
        await self.mirrors.aclose()  # issue-6
        for inner in self._tls_transports():
            await inner.aclose()
        await anyio.to_thread.run_sync(self._close_owned)  # issue-5
        await self.inner.__aexit__(exc_type, exc_value, traceback)
