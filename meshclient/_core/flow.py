"""THE request state machine, sans I/O.

`request_flow` is a generator: it yields actions (`Send`, `Sleep`, `Discard`, `Done`, and
`Mirror` for issue-6's dark traffic) and
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
from ..routing.fault import injected_outcome, roll
from ..routing.mirror import mirror_copy
from .actions import Action, Done, Mirror, OnClose, Outcome, Send, Sleep
from .address import address_request

if TYPE_CHECKING:  # types only: the runtime holds locks, the core must not import it
    from .._runtime import ServiceRuntime
    from ..balance import EndpointState
    from ..routing import Decision

Flow = Generator[Action, "Outcome | None", None]


def request_flow(request: httpx.Request, runtime: ServiceRuntime,
                 decision: Decision | None = None) -> Flow:
    """Route one logical request of `runtime.service` through the mesh.

    `decision` (issue-6) is the routing step's result: `runtime` is already the
    destination's; its `mirror` is yielded first, its `fault` is rolled per attempt.
    """
    service = runtime.service
    clock = runtime.clock
    # issue-6 hook 1: the mirror copy leaves first (the shell never waits for it).
    if decision is not None and decision.mirror is not None:
        copy = mirror_copy(request, decision.mirror)
        if copy is not None:
            yield Mirror(copy, decision.mirror)
    # issue-6 hook 2 (per attempt): roll the fault; a delay is a Sleep before the send.
    fault = roll(decision.fault, request, runtime.rng) if decision is not None else None
    if fault is not None and fault.delay_s:
        yield Sleep(fault.delay_s)
    state = runtime.balancer.pick()
    if state is None:
        raise NoEndpointsAvailable(
            f"service {service.name!r} has no endpoints", request=request, service=service.name)
    attempt = address_request(request, service, state.endpoint)
    start = state.begin(clock.now_ns())
    if fault is not None and fault.abort is not None:
        # issue-6 hook 3: an abort replaces the send's outcome, classified like a real one.
        outcome: Outcome | None = injected_outcome(fault.abort, attempt)
    else:
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
