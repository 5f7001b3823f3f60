"""The usual first attempt, made without the generator.

Most calls are one attempt whose answer is final. `request_flow` handles every case, but a
generator driven by a shell, with its setup for retries, hedges, faults and mirrors, costs
more than the usual call needs. So when nothing has to happen before the first attempt
(no fault, no hedging, no discovery wait, time left; a mirror copy leaves in the shell
first), the shells use this
instead:

    first = start_first(request, runtime, inbound, decision)   # None: use request_flow
    response = <send first.sent>        # or the exception sending it raised
    flow = first.finish(response)       # (or first.finish(None, error)): None, the
                                        # response is final (close it with first.on_close),
                                        # or request_flow(..., resume=Resume(...))

`start_first` does the flow's steps 2-6 for attempt 1 (deadline, budget deposit, pick
and guard, the attempt's request; how many attempts the call may make, the one-layer and
replay rules, matters only if the flow takes over, which works it out then); `finish`
observes the outcome (step 7) and ends the call when the response is final (`is_final`).
Anything else (an error, a retryable status) is handed to `request_flow` as a `Resume`
value, so retries, budgets and deadlines are decided in one place. With telemetry on, the
same path: a subclass (`transport._traced.TracedFirst`) tells telemetry about the attempt.
Pure, like the rest of the core.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import partial
from typing import TYPE_CHECKING

import httpx

from ..context import ATTEMPT_HEADER
from ..resilience.deadline import bounds
from .actions import OnClose, Outcome, Send
from .attempt import attempt_request, no_pick, observe, pick_and_guard
from .flow import Flow, Resume, is_final, request_flow
from .report import EXTENSION, CallInfo

if TYPE_CHECKING:
    from .._runtime import ServiceRuntime
    from ..balance import EndpointState
    from ..context import Inbound
    from ..routing import Decision

_NOT_TRIED: set[str] = set()  # read only: a first pick excludes nothing


class First:
    """A first attempt in flight: its request (`sent`: send this), and what `finish` (and
    the flow, if it takes over) needs. One per call; made by `start_first`."""

    __slots__ = ("at_ns", "capped", "decision", "inbound", "inherited", "left_ns",
                 "on_close", "per_try_ns", "request", "runtime", "sent", "start_ns", "state",
                 "ticket")

    #: telemetry records this call (a `transport._traced.TracedFirst`): the shell sends
    #: the attempt inside `sending()`
    traced = False

    def __init__(self, request: httpx.Request, runtime: ServiceRuntime,
                 inbound: Inbound | None, decision: Decision | None, sent: httpx.Request,
                 state: EndpointState, ticket: int, start_ns: int, capped: bool,
                 bound: tuple[int, int | None, bool], left_ns: int) -> None:
        self.request, self.runtime, self.inbound, self.decision = (request, runtime, inbound,
                                                                   decision)
        self.sent = sent  # the attempt's request, addressed to the endpoint
        self.state, self.ticket, self.start_ns, self.capped = state, ticket, start_ns, capped
        # the call's deadline, as `Deadline`'s fields (made one if the flow takes over)
        self.at_ns, self.per_try_ns, self.inherited = bound
        self.left_ns = left_ns  # of it, when the attempt was made (the shell's bound)
        #: for a final response (set by `finish`): call when its body closes
        self.on_close: OnClose | None = None

    def __repr__(self) -> str:
        result = "in flight" if self.on_close is None else "final"
        return (f"<First {self.request.method} {self.request.url} "
                f"endpoint={self.state.endpoint.key} ticket={self.ticket} {result}>")

    def as_send(self) -> Send:
        """The attempt as a `Send` (for telemetry, and a shell whose guard attaches
        credentials)."""
        return Send(self.sent, self.state.endpoint, self.runtime.service.name, 1, self.left_ns)

    def sending(self) -> AbstractContextManager[None]:
        """Entered around the attempt's send (by a shell, for a traced call)."""
        return nullcontext()

    def finish(self, response: httpx.Response | None,
               error: Exception | None = None) -> Flow | None:
        """Observe the attempt (its response, or the error sending it raised). None: the
        response is final, and the shell returns it with `on_close` called when its body
        closes; else the flow from here on."""
        runtime = self.runtime
        now = runtime.clock.now_ns()
        state, start = self.state, self.start_ns
        ok = observe(runtime, state, self.ticket, start, response, error, now, self.at_ns)
        if response is not None and is_final(runtime, response):
            self.on_close = partial(state.end, start, None, ok)
            response.extensions[EXTENSION] = CallInfo(runtime.service.name, state.endpoint.key, 1)
            return None
        resume = Resume(Outcome(response, error), ok, now, state, self.ticket, start,
                        self.capped, self.at_ns, self.per_try_ns, self.inherited)
        return request_flow(self.request, runtime, self.inbound, self.decision, resume)

    def cancelled(self) -> None:
        """The shell was interrupted while the attempt was in flight."""


def start_first(request: httpx.Request, runtime: ServiceRuntime, inbound: Inbound | None,
                decision: Decision | None,
                make: Callable[..., First] = First) -> First | None:
    """The call's first attempt, started (`make`: `First` or a subclass, given `First`'s
    arguments), or None when the call needs `request_flow` from the beginning (nothing has
    been done then). Raises `NoEndpointsAvailable` or `CircuitOpen` as the flow would."""
    service = runtime.service
    retry = service.retry
    if decision is None:
        if service.fault:
            return None
    elif decision.fault:
        return None
    if retry.hedge is not None or (runtime.feed.cache is not None
                                   and runtime.discovery is not None):
        return None  # hedging, or the endpoint cache's first answer to wait for
    now = runtime.clock.now_ns()
    bound = bounds(service.timeout, request.extensions, now,
                   inbound.deadline_ns if inbound is not None else None)
    at, per_try_ns, _inherited = bound
    if at - now <= 0:
        return None  # the flow raises DeadlineExceeded
    runtime.resilience.budget.tokens.deposit(now)
    chosen = pick_and_guard(runtime, _NOT_TRIED, now, at)
    if not isinstance(chosen, tuple):
        raise no_pick(chosen, request, runtime)
    state, ticket = chosen
    sent, capped = attempt_request(request, runtime, state, 1, at, per_try_ns, now)
    if inbound is not None and inbound.is_retry and retry.one_layer:  # as `request_flow`
        sent.headers[ATTEMPT_HEADER] = "2"  # part of a retry: none below either
    return make(request, runtime, inbound, decision, sent, state, ticket, state.begin(now),
                capped, bound, at - now)


