"""`AsyncMeshTransport`: the awaiting shell around the sans-I/O core."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import anyio
import anyio.to_thread
import httpx

from .._core.actions import Discard, Done, Hedge, HedgeOutcome, Mirror, Outcome, Send, Sleep, WaitForEndpoints
from .._core.first import First
from .._core.flow import Flow
from ..discovery._base import EndpointWaiter
from ..policy import Policy, PolicyStore
from ..security.routes import Guard
from ._base import Begun, MeshBase
from ._deadline import Watch, arm, watch_attempt
from ._mirror import MirrorSender
from ._streams import track_async, watch_async


async def _wait_ready(waiter: EndpointWaiter, timeout_s: float) -> None:
    """A service's first answer, awaited without a thread: polled with a short,
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
        self.mirrors = MirrorSender(self.registry)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # one policy snapshot, routed once; then limits, credentials, mTLS
        start = self._start(request)
        if start is None:
            return await self.inner.handle_async_request(request)
        if not isinstance(start, First):
            if isinstance(start, tuple):  # a guard: admission first
                return await self._guarded(request, start)
            return await self._drive(start, None, None)
        # the usual call: attempt 1 without the generator, held to the call's deadline
        held: httpx.Response | None = None
        watch = watch_attempt(start.sent, start.left_ns, self.inner, start.runtime.service.name)
        try:
            held = await self.inner.handle_async_request(start.sent)
        except Exception as exc:  # the core decides what the caller sees
            flow = start.finish(None, watch.failed(exc))
        except BaseException:
            watch.disarm()
            raise
        else:
            watch_async(held, watch)
            flow = start.finish(held)
            if flow is None:  # final
                track_async(held, start.on_close)
                return held
        assert flow is not None
        return await self._drive(flow, None, held)  # not final: the flow takes over

    async def _guarded(self, request: httpx.Request, begun: Begun) -> httpx.Response:
        """`handle_async_request` for a destination with a guard (`begun`: what
        `_start` answered): admitted first, its attempts sent with the guard's credentials
        and TLS, and the guard told the result."""
        guard = begun[2]
        assert guard is not None
        await guard.admit_async(request)
        try:
            start = self._start(request, begun)
            if start is None:  # pragma: no cover - a guard is only made for a service
                response = await self.inner.handle_async_request(request)
            elif isinstance(start, First):
                sent = await self._send(start.as_send(), guard)
                flow = start.finish(sent.response, sent.error)
                if flow is None:  # final
                    assert sent.response is not None
                    response = sent.response
                    track_async(response, start.on_close)
                else:
                    response = await self._drive(flow, guard, sent.response)
            else:
                response = await self._drive(start, guard, None)
        except BaseException as exc:
            guard.observe(None, exc)
            guard.release()
            raise
        guard.observe(response.status_code, None)
        track_async(response, lambda _error: guard.release())
        return response

    async def _drive(self, flow: Flow, guard: Guard | None,
                     held: httpx.Response | None) -> httpx.Response:
        """Run `flow` to its end, carrying out each action it yields. `held`: a response
        the flow already owns (a first attempt's, which it will discard or return)."""
        try:
            action = next(flow)
            while True:
                if type(action) is Send and guard is None:  # the usual step
                    sent = await self._send(action, None)
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
        """One attempt, held to the call's deadline (`_deadline.py`)."""
        watch: Watch | None = None
        try:
            if guard is None:
                inner, request = self.inner, send.request
            else:
                inner = self._inner_for(guard, self.inner, httpx.AsyncHTTPTransport)
                request = await guard.attach_async(send)
            watch = arm(request, send.left_ns, inner, send.service)
            response = await inner.handle_async_request(request)
        except Exception as exc:  # the core decides what the caller sees
            return Outcome(error=exc if watch is None else watch.failed(exc))
        except BaseException:  # cancelled (a losing hedge)
            if watch is not None:
                watch.disarm()
            raise
        watch_async(response, watch)
        return Outcome(response=response)

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
            hedge.on_secondary()
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
        await anyio.to_thread.run_sync(self._close_owned)  # joins threads off the loop
        await self.mirrors.aclose()
        for inner in self._tls_transports():
            await inner.aclose()
        await self.inner.aclose()

    async def __aenter__(self) -> AsyncMeshTransport:
        await self.inner.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None = None,
                        exc_value: BaseException | None = None,
                        traceback: TracebackType | None = None) -> None:
        await self.mirrors.aclose()
        for inner in self._tls_transports():
            await inner.aclose()
        await anyio.to_thread.run_sync(self._close_owned)
        await self.inner.__aexit__(exc_type, exc_value, traceback)
