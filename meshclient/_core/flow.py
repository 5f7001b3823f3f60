"""THE request state machine, sans I/O.

`request_flow` is a generator: it yields actions (`Send`, `Sleep`, `Discard`, `Done`) and
receives what the shell observed (`Outcome` after a `Send`, `None` otherwise). It raises the
error the caller should see. Both transports drive it; neither re-implements a step.

It imports no I/O: no sockets, threads, asyncio, sleeps or transport modules (a test walks
this package's imports to keep it so).
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING

import httpx

from ..errors import NoEndpointsAvailable
from .actions import Action, Done, OnClose, Outcome, Send, WaitForEndpoints
from .address import address_request

if TYPE_CHECKING:  # types only: the runtime holds locks, the core must not import it
    from .._runtime import ServiceRuntime
    from ..balance import EndpointState

Flow = Generator[Action, "Outcome | None", None]


def request_flow(request: httpx.Request, runtime: ServiceRuntime) -> Flow:
    """Route one logical request of `runtime.service` through the mesh."""
    service = runtime.service
    clock = runtime.clock
    waiter = runtime.discovery  # None once warm: a warm request never waits on discovery
    if waiter is not None:
        yield WaitForEndpoints(waiter, service.timeout.total)
        if not waiter.ready:  # the wait ended empty
            raise NoEndpointsAvailable(
                f"service {service.name!r} has no endpoints{_why(runtime)}", request=request,
                service=service.name)
    state = runtime.balancer.pick()
    if state is None:
        raise NoEndpointsAvailable(
            f"service {service.name!r} has no endpoints{_why(runtime)}", request=request,
            service=service.name)
    attempt = address_request(request, service, state.endpoint)
    start = state.begin(clock.now_ns())
    outcome = yield Send(attempt, state.endpoint, service.name, 1)
    assert outcome is not None
    if outcome.response is None:
        state.end(start, clock.now_ns(), ok=False)
        assert outcome.error is not None
        raise outcome.error
    response = outcome.response
    yield Done(response, _finisher(state, start, response.status_code < 500, runtime))


def _finisher(state: EndpointState, start: int, ok: bool, runtime: ServiceRuntime) -> OnClose:
    def on_close(error: BaseException | None) -> None:
        state.end(start, runtime.clock.now_ns(), ok and error is None)

    return on_close


def _why(runtime: ServiceRuntime) -> str:
    cache = runtime.feed.cache
    if cache is None:
        return ""
    if not cache.ready:
        return (f" (discovery from {cache.resolver.source} has not answered: "
                f"{cache.last_error or 'no answer yet'})")
    return f" (discovery from {cache.resolver.source} found none)"
