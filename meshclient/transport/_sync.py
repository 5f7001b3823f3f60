"""`MeshTransport`: the blocking shell around the sans-I/O core."""

from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from types import TracebackType
from typing import Any

import httpx

from .._core.actions import Discard, Done, Hedge, HedgeOutcome, Mirror, Outcome, Send, Sleep, WaitForEndpoints
from .._core.first import First
from .._core.flow import Flow
from ..policy import Policy, PolicyStore
from ..security.routes import Guard
from ._base import Begun, MeshBase
from ._deadline import Watch, arm, watch_attempt
from ._mirror import MirrorSender
from ._streams import track_sync, watch_sync

#: Most threads the sync shell uses for hedged requests (created on first use, on demand).
HEDGE_THREADS = 32


class MeshTransport(MeshBase, httpx.BaseTransport):
    """An `httpx.BaseTransport` that routes requests for services in the policy through the
    mesh and passes every other request straight to `inner`.

    **Parameters:**

    * **policy** - a `Policy`, a `PolicyStore`, or `None` for `meshclient.default_store()`
      (the environment's policy, shared by the process).
    * **inner** - the transport that does the I/O; default `httpx.HTTPTransport(**kwargs)`.
    * **kwargs** - passed to `httpx.HTTPTransport` when `inner` is not given.

    Usage:
    ```python
    client = httpx.Client(transport=MeshTransport())
    client.get("http://users/v1/users/42")
    ```
    """

    def __init__(self, policy: Policy | PolicyStore | None = None,
                 inner: httpx.BaseTransport | None = None, **kwargs: Any) -> None:
        self._inner_kwargs = kwargs
        self._setup(policy)
        self.inner = inner if inner is not None else httpx.HTTPTransport(**kwargs)
        self._pool: ThreadPoolExecutor | None = None  # for hedged requests, made on first use
        self._pool_lock = threading.Lock()
        self.mirrors = MirrorSender(self.registry)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        # one policy snapshot, routed once; then limits, credentials, mTLS
        start = self._start(request)
        if start is None:
            return self.inner.handle_request(request)
        if not isinstance(start, First):
            if isinstance(start, tuple):  # a guard: admission first
                return self._guarded(request, start)
            return self._drive(start, None, None)
        # the usual call: attempt 1 without the generator, held to the call's deadline
        held: httpx.Response | None = None
        watch = watch_attempt(start.sent, start.left_ns, self.inner, start.runtime.service.name)
        try:
            held = self.inner.handle_request(start.sent)
        except Exception as exc:  # the core decides what the caller sees
            flow = start.finish(None, watch.failed(exc))
        except BaseException:
            watch.disarm()
            raise
        else:
            watch_sync(held, watch)
            flow = start.finish(held)
            if flow is None:  # final
                track_sync(held, start.on_close)
                return held
        assert flow is not None
        return self._drive(flow, None, held)  # not final: the flow takes over

    def _guarded(self, request: httpx.Request, begun: Begun) -> httpx.Response:
        """`handle_request` for a destination with a guard (`begun`: what
        `_start` answered): admitted first, its attempts sent with the guard's credentials
        and TLS, and the guard told the result."""
        guard = begun[2]
        assert guard is not None
        guard.admit_sync(request)
        try:
            start = self._start(request, begun)
            if start is None:  # pragma: no cover - a guard is only made for a service
                response = self.inner.handle_request(request)
            elif isinstance(start, First):
                sent = self._send(start.as_send(), guard)
                flow = start.finish(sent.response, sent.error)
                if flow is None:  # final
                    assert sent.response is not None
                    response = sent.response
                    track_sync(response, start.on_close)
                else:
                    response = self._drive(flow, guard, sent.response)
            else:
                response = self._drive(start, guard, None)
        except BaseException as exc:
            guard.observe(None, exc)
            guard.release()
            raise
        guard.observe(response.status_code, None)
        track_sync(response, lambda _error: guard.release())
        return response

    def _drive(self, flow: Flow, guard: Guard | None,
               held: httpx.Response | None) -> httpx.Response:
        """Run `flow` to its end, carrying out each action it yields. `held`: a response
        the flow already owns (a first attempt's, which it will discard or return)."""
        try:
            action = next(flow)
            while True:
                if type(action) is Send and guard is None:  # the usual step
                    sent = self._send(action, None)
                    held = sent.response or held
                    action = flow.send(sent)
                elif type(action) is Done:  # the usual last step
                    response = action.response
                    if action.on_close is not None:
                        track_sync(response, action.on_close)
                    held = None
                    return response
                elif isinstance(action, (Send, Hedge)):
                    reply = (self._send(action, guard) if isinstance(action, Send)
                             else self._hedge(action, guard))
                    outcome = reply if isinstance(reply, Outcome) else reply.outcome
                    held = outcome.response or held
                    action = flow.send(reply)
                elif isinstance(action, Mirror):  # fire and forget, bounded
                    self.mirrors.send_sync(self.inner, action)
                    action = flow.send(None)
                elif isinstance(action, Sleep):
                    time.sleep(action.seconds)
                    action = flow.send(None)
                elif isinstance(action, WaitForEndpoints):  # a service's first request
                    action.waiter.wait(action.timeout_s)
                    action = flow.send(None)
                else:
                    assert isinstance(action, Discard)
                    action.response.close()
                    action = flow.send(None)
        except BaseException:  # interrupted mid-call (or the flow raised): free the connection
            if held is not None and not held.is_closed:
                held.close()
            raise

    def _send(self, send: Send, guard: Guard | None) -> Outcome:
        """One attempt, held to the call's deadline (`_deadline.py`)."""
        watch: Watch | None = None
        try:
            if guard is None:
                inner, request = self.inner, send.request
            else:
                inner = self._inner_for(guard, self.inner, httpx.HTTPTransport)
                request = guard.attach_sync(send)
            watch = arm(request, send.left_ns, inner, send.service)
            response = inner.handle_request(request)
        except Exception as exc:  # the core decides what the caller sees
            return Outcome(error=exc if watch is None else watch.failed(exc))
        except BaseException:
            if watch is not None:
                watch.disarm()
            raise
        watch_sync(response, watch)
        return Outcome(response=response)

    def _hedge(self, hedge: Hedge, guard: Guard | None) -> HedgeOutcome:
        """Race the primary and, after `delay_s`, the secondary on a small thread pool. A
        blocking call cannot be cancelled: the loser is abandoned and its response closed
        when it arrives."""
        with self._pool_lock:
            if self._pool is None:
                # Threads start on demand; abandoned losers keep theirs until they end
                # (bounded by the attempt's timeout), so the cap leaves room for them.
                self._pool = ThreadPoolExecutor(HEDGE_THREADS,
                                                thread_name_prefix="meshclient-hedge")
            pool = self._pool
        first = pool.submit(self._send, hedge.primary, guard)
        done, _ = wait([first], timeout=hedge.delay_s)
        if done:
            return HedgeOutcome(0, first.result(), None, False)
        hedge.on_secondary()
        futures = [first, pool.submit(self._send, hedge.secondary, guard)]
        pending = set(futures)
        finished: list[int] = []
        winner: int | None = None
        while winner is None:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            finished += sorted(futures.index(f) for f in done)
            for i in finished:
                if hedge.good(futures[i].result()):
                    winner = i
                    break
            if winner is None and not pending:
                winner = finished[-1]  # neither good: report the later one
        loser = futures[1 - winner]
        other = None
        if loser.done():
            other = loser.result()
            if other.response is not None:
                other.response.close()
        else:
            loser.add_done_callback(_close_abandoned)
        return HedgeOutcome(winner, futures[winner].result(), other, True)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for inner in self._tls_transports():
            inner.close()
        self._close_owned()  # discovery of a store this transport built
        self.inner.close()

    def __enter__(self) -> MeshTransport:
        self.inner.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None = None,
                 exc_value: BaseException | None = None,
                 traceback: TracebackType | None = None) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        for inner in self._tls_transports():
            inner.close()
        self._close_owned()
        self.inner.__exit__(exc_type, exc_value, traceback)


def _close_abandoned(future: Future[Outcome]) -> None:
    if future.cancelled():
        return
    response = future.result().response
    if response is not None:
        response.close()
