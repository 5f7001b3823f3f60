"""The usual first attempt, made without the generator.

Most calls are one attempt whose answer is final. `request_flow` handles every case, but a
generator driven by a shell, with its setup for retries, hedges, faults and mirrors, costs
more than the usual call needs. So when nothing has to happen before the first attempt
(no mirror, no fault, no hedging, no discovery wait, time left), the shells use this
instead:

    first = start_first(request, runtime, inbound, decision)   # None: use request_flow
    response = <send first.sent>        # or the exception sending it raised
    flow = first.finish(response)       # (or first.finish(None, error)): None, the
                                        # response is final (close it with first.on_close),
                                        # or request_flow(..., after=first)

`start_first` does the flow's steps 2-6 for attempt 1 (deadline, budget deposit, pick
and guard, the attempt's request; how many attempts the call may make, the one-layer and
replay rules, matters only if the flow takes over, which works it out then); `finish`
observes the outcome (step 7) and ends the call when the status is not one `retry.on`
lists. Anything else (an error, a retryable status) is classified by `request_flow`, which
takes over from that outcome, so retries, budgets and deadlines are decided in one place.
Pure, like the rest of the core.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import httpx

from ..context import ATTEMPT_HEADER
from ..resilience.deadline import bounds
from .actions import OnClose, Outcome, Send
from .attempt import (
    attempt_request,
    no_pick,
    observe,
    pick_and_guard,
)
from .flow import Flow, request_flow
from .report import EXTENSION, CallInfo

if TYPE_CHECKING:
    from .._runtime import ServiceRuntime
    from ..balance import EndpointState
    from ..context import Inbound
    from ..routing import Decision

_NOT_TRIED: set[str] = set()  # read only: a first pick excludes nothing


class First:
    """A first attempt in flight: its `send`, and what `finish` (and the flow, if it takes
    over) needs. One per call; made by `start_first`."""

    __slots__ = ("at_ns", "capped", "decision", "inbound", "inherited", "left_ns", "now", "ok",
                 "on_close", "outcome", "per_try_ns", "request", "runtime", "sent", "start",
                 "state", "ticket")

    sent: httpx.Request  # the attempt's request, addressed to the endpoint: send this
    request: httpx.Request
    runtime: ServiceRuntime
    inbound: Inbound | None
    decision: Decision | None
    at_ns: int  # the call's deadline: a `Deadline`'s fields, made one if the flow takes over
    left_ns: int  # of it, when the attempt was made (the shell's wall-clock bound)
    per_try_ns: int | None
    inherited: bool
    state: EndpointState
    ticket: int
    start: int
    capped: bool
    on_close: OnClose  # set by `finish` for a final response: call when its body closes
    # set by `finish` when the flow takes over
    outcome: Outcome
    ok: bool
    now: int

    def __repr__(self) -> str:
        # slots fill in as the attempt goes (`finish` sets `outcome` and `ok`)
        request = getattr(self, "request", None)
        state = getattr(self, "state", None)
        outcome = getattr(self, "outcome", None)
        if outcome is None:
            result = "final" if hasattr(self, "on_close") else "in flight"
        elif outcome.response is not None:
            result = f"status={outcome.response.status_code} ok={self.ok}"
        else:
            result = f"error={type(outcome.error).__name__} ok={self.ok}"
        return (f"<First {request.method if request else None} "
                f"{request.url if request else None} "
                f"endpoint={state.key if state is not None else None} {result}>")

    def as_send(self) -> Send:
        """The attempt as a `Send` (for a shell whose security guard attaches credentials)."""
        return Send(self.sent, self.state.endpoint, self.runtime.service.name, 1, self.left_ns)

    def finish(self, response: httpx.Response | None,
               error: Exception | None = None) -> Flow | None:
        """Observe the attempt (its response, or the error sending it raised). None: the
        response is final, and the shell returns it with `on_close` called when its body
        closes; else the flow from here on."""
        runtime = self.runtime
        now = runtime.clock.now_ns()
        state, start = self.state, self.start
        ok = observe(runtime, state, self.ticket, start, response, error, now)
        # `rules.status_listed`, as the set lookup it is
        if response is not None and response.status_code not in runtime.resilience.rules.statuses:
            self.on_close = partial(state.end, start, None, ok)
            response.extensions[EXTENSION] = CallInfo(runtime.service.name, state.endpoint.key, 1)
            return None
        self.outcome, self.ok, self.now = Outcome(response, error), ok, now
        return request_flow(self.request, runtime, self.inbound, self.decision, after=self)


def start_first(request: httpx.Request, runtime: ServiceRuntime, inbound: Inbound | None,
                decision: Decision | None) -> First | None:
    """The call's first attempt, started, or None when the call needs `request_flow` from
    the beginning (nothing has been done then). Raises `NoEndpointsAvailable` or
    `CircuitOpen` as the flow would."""
    service = runtime.service
    retry = service.retry
    if decision is None:
        if service.fault:
            return None
    elif decision.fault or decision.mirror is not None:
        return None
    if retry.hedge is not None or (runtime.feed.cache is not None
                                   and runtime.discovery is not None):
        return None  # hedging, or the endpoint cache's first answer to wait for
    now = runtime.clock.now_ns()
    at, per_try_ns, inherited = bounds(service.timeout, request.extensions, now,
                                       inbound.deadline_ns if inbound is not None else None)
    if at - now <= 0:
        return None  # the flow raises DeadlineExceeded
    runtime.resilience.budget.budget.deposit(now)
    first = First.__new__(First)
    chosen = pick_and_guard(runtime, _NOT_TRIED, now)
    if not isinstance(chosen, tuple):
        raise no_pick(chosen, request, runtime)
    state, first.ticket = chosen
    first.sent, first.capped = attempt_request(request, runtime, state, 1, at, per_try_ns, now)
    if inbound is not None and inbound.is_retry and retry.one_layer:  # as `request_flow`
        first.sent.headers[ATTEMPT_HEADER] = "2"  # part of a retry: none below either
    first.start = state.begin(now)
    first.left_ns = at - now
    first.state, first.at_ns, first.per_try_ns, first.inherited = (state, at, per_try_ns,
                                                                   inherited)
    first.request, first.runtime, first.inbound, first.decision = (request, runtime, inbound,
                                                                   decision)
    return first
