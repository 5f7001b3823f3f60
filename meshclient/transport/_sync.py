# GENERATED from meshclient/transport/_async.py by scripts/unasync.py: do not edit; edit the async
# source and run `python scripts/unasync.py`.
"""`MeshTransport`: the blocking shell around the sans-I/O core. What the two shells
do differently lives in the `_io_*.py` modules, under the same names."""

from __future__ import annotations

from types import TracebackType
from typing import Any

import httpx

from .._core.actions import Discard, Done, Hedge, Mirror, Outcome, Send, Sleep, WaitForEndpoints
from .._core.first import First
from .._core.flow import Flow
from ..policy import Policy, PolicyStore
from ..security.checks import CheckFn
from ..security.egress import check_sync
from ..security.routes import Guard
from ..telemetry import access_log
from ._base import Begun, MeshBase
from ._deadline import Watch, arm, watch_attempt
from ._io_sync import (
    Racer,
    close_mirrors,
    close_shielded,
    run_blocking,
    sleep,
    wait_ready,
    watch_lag,
)
from ._mirror import MirrorSender
from ._streams import track_sync, watch_sync


class MeshTransport(MeshBase, httpx.BaseTransport):
    """An `httpx.BaseTransport` that routes requests for services in the policy
    through the mesh and passes every other request straight to `inner`.

    **Parameters:**

    * **policy** - a `Policy`, a `PolicyStore`, or `None` for `meshclient.default_store()`
      (the environment's policy, shared by the process).
    * **inner** - the transport that does the I/O; default
      `httpx.HTTPTransport(**kwargs)` for hosts outside the policy, and one
      `httpx.HTTPTransport(**kwargs)` per endpoint of a service (its own connection
      pool; `limits` apply per endpoint). A given `inner` does all the I/O.
    * **check** - asked about every request before it leaves (an egress policy; see
      docs/ext-authz.md): `Allow` adds its headers, `Deny` raises `CheckDenied`.
    * **kwargs** - passed to `httpx.HTTPTransport` when `inner` is not given.

    Usage:
    ```python
    client = httpx.Client(transport=MeshTransport())
    client.get("http://users/v1/users/42")
    ```
    """

    def __init__(self, policy: Policy | PolicyStore | None = None,
                 inner: httpx.BaseTransport | None = None, *,
                 check: CheckFn | None = None, **kwargs: Any) -> None:
        self._inner_kwargs = kwargs
        self.check = check
        self.access_log = access_log.current()  # MESHCLIENT_ACCESS_LOG; None: off
        self._owns_inner = inner is None
        self._setup(policy)
        self.inner = inner if inner is not None else httpx.HTTPTransport(**kwargs)
        if inner is None:  # a pool per endpoint (`_pools.py`); `inner`: pass-through hosts
            self.pools = self._endpoint_pools(httpx.HTTPTransport)
        self._racer = Racer()  # for hedged requests
        self.mirrors = MirrorSender(self.registry)

    def _renew_after_fork(self) -> None:
        if self._owns_inner:
            self.inner = httpx.HTTPTransport(**self._inner_kwargs)
        self._racer = Racer()

    def _mirror(self, action: Mirror) -> None:
        """Hand a mirror copy to the background senders: a queue put, never waiting."""
        self.mirrors.send_sync(self.inner, action)

    def _tend_pools(self) -> None:
        """Close the pools of endpoints gone from discovery once nothing is in flight."""
        for pool in self._pools_to_close():
            pool.close()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        log = self.access_log
        if log is None or (entry := log.outbound(request)) is None:
            return self._handle(request)
        try:  # the access-log line: captured when the body closes (or the call fails)
            response = self._handle(request)
        except BaseException as exc:
            entry.failed(exc)
            raise
        track_sync(response, entry.on_close(response))  # joins the call's own close hook
        return response

    def _handle(self, request: httpx.Request) -> httpx.Response:
        if self.check is not None:  # before anything else: a denied call costs nothing
            check_sync(self.check, request)
        # routed once under one policy snapshot; then limits, credentials, mTLS
        begun = self._route(request)
        if begun.runtime is None and self.store.xds is not None:  # a new xDS host?
            waiter = self._xds_waiter(request)
            if waiter is not None:  # its first requests wait, bounded, for its resources
                wait_ready(waiter, waiter.timeout_s)
                begun = self._route(request)
        if self._pools_due:  # an endpoint set changed (routing may have applied it)
            self._tend_pools()
        if begun.guard is not None:  # admission first
            return self._guarded(request, begun)
        opened = self._open(request, begun)
        if opened is None:
            return self.inner.handle_request(request)
        if begun.runtime is not None and begun.runtime.choosing:
            watch_lag()  # client stalls are not charged to endpoints (`_stall.py`)
        if not isinstance(opened, First):
            return self._drive(opened, None, None)
        # the usual call: attempt 1 without the generator, held to the call's deadline
        first = opened
        held: httpx.Response | None = None
        pools = self.pools
        inner = self.inner if pools is None else pools.get(first.state.endpoint.key)
        watch = watch_attempt(first.sent, first.left_ns, inner, first.runtime.service.name)
        try:
            if not first.traced:
                held = inner.handle_request(first.sent)
            else:
                with first.sending():
                    held = inner.handle_request(first.sent)
        except Exception as exc:  # the core decides what the caller sees
            flow = first.finish(None, watch.failed(exc))
        except BaseException:
            watch.disarm()
            first.cancelled()
            raise
        else:
            watch_sync(held, watch)
            flow = first.finish(held)
            if flow is None:  # final
                assert first.on_close is not None
                track_sync(held, first.on_close)
                return held
        assert flow is not None
        return self._drive(flow, None, held)  # not final: the flow takes over

    def _guarded(self, request: httpx.Request, begun: Begun) -> httpx.Response:
        """`handle_request` for a destination with a guard: admitted first, its
        attempts sent with the guard's credentials and TLS, and the guard told the
        result."""
        guard = begun.guard
        assert guard is not None
        guard.admit_sync(request)
        try:
            opened = self._open(request, begun)
            if opened is None:  # pragma: no cover - a guard is only made for a service
                response = self.inner.handle_request(request)
            elif isinstance(opened, First):
                first = opened
                try:
                    with first.sending():
                        sent = self._send(first.as_send(), guard)
                except BaseException:
                    first.cancelled()
                    raise
                flow = first.finish(sent.response, sent.error)
                if flow is None:  # final
                    assert sent.response is not None and first.on_close is not None
                    response = sent.response
                    track_sync(response, first.on_close)
                else:
                    response = self._drive(flow, guard, sent.response)
            else:
                response = self._drive(opened, guard, None)
        except BaseException as exc:
            guard.observe(None, exc)
            guard.release()
            raise
        guard.observe(response.status_code, None)
        track_sync(response, lambda _error: guard.release())
        return response

    def _drive(
            self, flow: Flow, guard: Guard | None, held: httpx.Response | None,
    ) -> httpx.Response:
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
                    reply = (
                        self._send(action, guard) if isinstance(action, Send)
                        else self._racer.race(action, lambda s: self._send(s, guard)))
                    outcome = reply if isinstance(reply, Outcome) else reply.outcome
                    held = outcome.response or held
                    action = flow.send(reply)
                elif isinstance(action, Sleep):
                    sleep(action.seconds)
                    action = flow.send(None)
                elif isinstance(action, WaitForEndpoints):  # a service's first request
                    wait_ready(action.waiter, action.timeout_s)
                    action = flow.send(None)
                else:
                    assert isinstance(action, Discard)
                    action.response.close()
                    action = flow.send(None)
        except BaseException:  # interrupted mid-call (or the flow raised): free the connection
            if held is not None and not held.is_closed:
                close_shielded(held)
            raise

    def _send(self, send: Send, guard: Guard | None) -> Outcome:
        """One attempt, held to the call's deadline (`_deadline.py`)."""
        watch: Watch | None = None
        try:
            inner = self._inner_at(send.endpoint, guard, httpx.HTTPTransport)
            request = send.request if guard is None else guard.attach_sync(send)
            watch = arm(request, send.left_ns, inner, send.service)
            response = inner.handle_request(request)
        except Exception as exc:  # the core decides what the caller sees
            return Outcome(error=exc if watch is None else watch.failed(exc))
        except BaseException:  # interrupted (a losing hedge)
            if watch is not None:
                watch.disarm()
            raise
        watch_sync(response, watch)
        return Outcome(response=response)

    def _close_mesh(self) -> None:
        """Everything but the inner transport, in order: hedges, mirror copies, the
        endpoints' pools, the TLS transports, the background work (discovery, health
        checks) of a store this transport built."""
        self._racer.close()
        close_mirrors(self.mirrors)
        for inner in [*(self.pools.take_all() if self.pools else ()), *self._tls_transports()]:
            inner.close()
        run_blocking(self._close_owned)  # joins threads

    def close(self) -> None:
        self._close_mesh()
        self.inner.close()

    def __enter__(self) -> MeshTransport:
        self.inner.__enter__()
        return self

    def __exit__(
            self, exc_type: type[BaseException] | None = None,
            exc_value: BaseException | None = None, traceback: TracebackType | None = None,
    ) -> None:
        self._close_mesh()
        self.inner.__exit__(exc_type, exc_value, traceback)
