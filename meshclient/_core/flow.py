"""THE request state machine, sans I/O.

`request_flow` is a generator: it yields actions (`Send`, `Hedge`, `Sleep`, `Discard`,
`WaitForEndpoints`, `Done`) and receives what the shell observed (`Outcome` after a `Send`, `HedgeOutcome`
after a `Hedge`, `None` otherwise). It raises the error the caller should see. Both
transports drive it; neither re-implements a step.

One call, in order:
  1. route          (the shell routed already: `runtime` is the destination's, and the
                    mirror copy has left; here the fault is rolled per attempt)
  2. deadline, budget deposit, one-layer rule (rate-limit admission happens in the shell,
     once per call, before the flow starts: waiting is I/O)
  3-5. pick an endpoint not yet tried whose breaker admits the attempt
  6. send (or hedge) with the deadline header (and the attempt header on retries and
     hedges) and the per-try timeout
  7. observe: breaker, latency, endpoint load
  8. classify; retry (different endpoint, backoff or Retry-After, budget, deadline) or
     return the last real response / raise the last real error

It imports no I/O: no sockets, threads, asyncio, sleeps or transport modules (a test walks
this package's imports to keep it so).
"""

from __future__ import annotations

from collections.abc import Generator
from functools import partial
from typing import TYPE_CHECKING, NamedTuple

import httpx

from .. import _events
from ..context import ATTEMPT_HEADER, RETRIES_SPENT_HEADER, Inbound, parse_retries_spent
from ..errors import DeadlineExceeded, NoEndpointsAvailable
from ..resilience.classify import POOL_TIMEOUT, RETRY_AFTER_STATUSES, TIMEOUT, error_kind
from ..resilience.deadline import Deadline
from ..resilience.retry_after import http_date_s, parse_retry_after
from ..routing.fault import roll
from .actions import Action, Discard, Done, Hedge, HedgeOutcome, Outcome, Sleep, WaitForEndpoints
from .attempt import (
    attempts_allowed,
    no_pick,
    observe,
    pick_and_guard,
    prepare,
    why_none,
)
from .hedging import Secondary, good_outcome, hedge_delay_s, plan_hedge, settle_hedge
from .injected import injected_outcome
from .report import annotate, stamp

if TYPE_CHECKING:  # types only: the runtime holds locks, the core must not import it
    from .._runtime import ServiceRuntime
    from ..balance import EndpointState
    from ..routing import Decision

Flow = Generator[Action, "Outcome | HedgeOutcome | None", None]
_NS = 1_000_000_000


def is_final(runtime: ServiceRuntime, response: httpx.Response) -> bool:
    """THE rule for a response: final (returned as it is, never marked, no retry asked)
    when its status is not one `retry.on` lists (`RetryRules.status_listed`, as the set
    lookup it is: every call asks)."""
    return response.status_code not in runtime.resilience.rules.statuses


class Resume(NamedTuple):
    """Attempt 1, made outside the generator (`first.First`), whose outcome is not final:
    what the flow carries on from (steps 2-7 of attempt 1 are done)."""

    outcome: Outcome
    ok: bool  # the endpoint did well (`observe`)
    now_ns: int  # when the outcome was observed
    state: EndpointState
    ticket: int  # the breaker's
    start_ns: int  # the endpoint's load measurement
    capped: bool  # the attempt's timeout was the call's deadline
    at_ns: int  # the call's deadline (`Deadline`'s fields)
    per_try_ns: int | None
    inherited: bool


def request_flow(request: httpx.Request, runtime: ServiceRuntime,
                 inbound: Inbound | None = None, decision: Decision | None = None,
                 resume: Resume | None = None) -> Flow:
    """Route one logical request of `runtime.service` through the mesh. `inbound` is the
    request being handled when this call is made (`context.inbound`), if any; `decision`
    is the routing step's result (`runtime` is already its destination's). `resume`: the
    call's first attempt was made by `first.start_first` and its outcome is not final; the
    flow carries on from that outcome."""
    service = runtime.service
    clock = runtime.clock
    name = service.name
    retry = service.retry
    rules = runtime.resilience.rules
    stats = runtime.resilience.budget
    # 1. route: the fault is the routing decision's (its mirror copy left in the shell).
    fault_policy = decision.fault if decision is not None else service.fault
    tried: set[str] = set()
    attempt = 0
    last: Outcome | None = None
    if resume is None:
        now = clock.now_ns()
        # 2. deadline, budget, one-layer rule.
        deadline = Deadline.start(service.timeout, request.extensions, now,
                                  inbound.deadline_ns if inbound is not None else None)
        stats.tokens.deposit(now)
        # 3. discover: a service's first request waits, bounded by the deadline, for the
        #    endpoint cache's first answer; a warm request never waits.
        waiter = runtime.discovery if runtime.feed.cache is not None else None  # static: none
        if waiter is not None:
            yield WaitForEndpoints(waiter, max(0.0, deadline.remaining_ns(now) / _NS))
            if not waiter.ready:  # the wait ended empty
                raise NoEndpointsAvailable(f"service {name!r} has no endpoints{why_none(runtime)}",
                                           request=request, service=name)
            now = clock.now_ns()
    else:
        deadline = Deadline(resume.at_ns, resume.per_try_ns, resume.inherited)
    # (the same after attempt 1: whether the body can be replayed, and whether a layer
    # above retries, do not change by sending it)
    max_attempts = attempts_allowed(request, retry.attempts, retry.one_layer, inbound)
    retrying_layer = max_attempts > 1  # this layer owns the retry decision
    # serving a retry (one-layer rule): the call is sent as part of it, so no layer below
    # retries either
    in_retry = retry.one_layer and inbound is not None and inbound.is_retry

    while True:
        if resume is not None:  # attempt 1, made outside the generator: its outcome
            outcome, ok, now = resume.outcome, resume.ok, resume.now_ns
            state, ticket, start, capped = (resume.state, resume.ticket, resume.start_ns,
                                            resume.capped)
            attempt = 1
            tried.add(state.endpoint.key)
            resume = None
        else:
            attempt += 1
            if attempt > 1:
                now = clock.now_ns()
            if deadline.at_ns - now <= 0:
                if last is not None and last.response is not None:
                    yield Discard(last.response)
                raise annotate(DeadlineExceeded(f"deadline of the call to {name!r} passed "
                                                f"before attempt {attempt}", request=request,
                                                service=name), name, attempt - 1, tried)
            # 3-5. pick and guard.
            chosen = pick_and_guard(runtime, tried, now, deadline.at_ns)
            if not isinstance(chosen, tuple):
                if last is not None:  # a retry found nowhere to go: the last real outcome
                    yield from _give_up(last, attempt - 1, request, runtime, retrying_layer,
                                        inbound, state.endpoint.key, tried)
                    return
                raise no_pick(chosen, request, runtime)
            state, ticket = chosen
            if last is not None and last.response is not None:
                yield Discard(last.response)  # kept open until the retry had somewhere to go
            tried.add(state.endpoint.key)
            # fault injection, rolled per attempt: a delay is a Sleep before the send (so the
            # deadline header reflects it), an abort replaces the send's outcome below.
            fault = roll(fault_policy, request, runtime.rng) if fault_policy else None
            if fault is not None and fault.delay_s:
                yield Sleep(fault.delay_s)
                now = clock.now_ns()
            send, capped = prepare(request, runtime, state, attempt, deadline, now)
            if in_retry and attempt == 1:
                send.request.headers[ATTEMPT_HEADER] = "2"

            # 6. send, or hedge when the service hedges and a second endpoint is available.
            hedge = None
            # a hedge sends the request twice: the replay rules of a retry apply to it
            # (`RetryRules.replayable`; `max_attempts` > 1: the body can be replayed)
            if (attempt == 1 and retry.hedge is not None and max_attempts > 1
                    and fault is None and rules.replayable(request)):
                hedge = plan_hedge(request, runtime, tried, deadline, now)
            start = state.begin(now)
            if fault is not None and fault.abort is not None:
                # an injected abort is classified like a real failure (retries, breakers)
                outcome = injected_outcome(fault.abort, send.request)
                now = clock.now_ns()
                ok = observe(runtime, state, ticket, start, outcome.response, outcome.error,
                             now, deadline.at_ns)
            elif hedge is None:
                reply = yield send
                assert isinstance(reply, Outcome)
                outcome = reply
                now = clock.now_ns()
                ok = observe(runtime, state, ticket, start, outcome.response, outcome.error,
                             now, deadline.at_ns)
            else:
                h_state, h_ticket, h_send = hedge
                secondary = Secondary(runtime, h_state)
                reply = yield Hedge(send, h_send, hedge_delay_s(runtime), good_outcome(runtime),
                                    secondary.begin)
                assert isinstance(reply, HedgeOutcome)
                now = clock.now_ns()
                outcome, state, ok, start = settle_hedge(runtime, reply,
                                                          (state, ticket, start),
                                                          (secondary, h_ticket))
                if reply.hedged:
                    attempt += 1
        last = outcome

        # 7-8. classify, then retry or return. The usual answer first: a final response is
        # never marked (what `_retry_wait` and `_finish` would decide, without asking them).
        response = outcome.response
        if response is not None and is_final(runtime, response):
            yield Done(stamp(response, name, state.endpoint.key, attempt),
                       partial(state.end, start, None, ok), attempt)
            return
        try:
            wait_s = _retry_wait(outcome, capped, attempt, request, runtime, now)
        except DeadlineExceeded as exc:
            annotate(exc, name, attempt, tried)
            raise
        if wait_s is None or not _may_retry(attempt, max_attempts, wait_s, deadline, now,
                                            runtime):
            yield _finish(outcome, state, start, ok, attempt, request, runtime,
                          retrying_layer, inbound, tried)
            return
        stats.retries += 1
        _events.emit(_events.RETRY, name, attempt=attempt + 1, endpoint=state.endpoint.key,
                     wait_s=wait_s, reason=_reason(outcome))
        if outcome.response is not None:
            state.end(start, now, ok)
        if wait_s > 0:
            yield Sleep(wait_s)


def _reason(outcome: Outcome) -> str:
    if outcome.response is not None:
        return str(outcome.response.status_code)
    assert outcome.error is not None
    return error_kind(outcome.error)


def _retry_wait(outcome: Outcome, capped: bool, attempt: int, request: httpx.Request,
                runtime: ServiceRuntime, now: int) -> float | None:
    """Seconds to wait before retrying this outcome, or None when it is final (a success,
    or a failure that may not be retried). Raises `DeadlineExceeded` for a timeout that
    was the call's deadline."""
    res = runtime.resilience
    rules = res.rules
    response = outcome.response
    if response is None:
        error = outcome.error
        assert error is not None
        kind = error_kind(error)
        if kind in (TIMEOUT, POOL_TIMEOUT) and capped:
            raise DeadlineExceeded(f"deadline of the call to {runtime.service.name!r} passed "
                                   f"during attempt {attempt}", request=request,
                                   service=runtime.service.name) from error
        if not rules.error_retryable(kind, request):
            return None
        return res.backoff.wait(attempt, runtime.rng)
    status = response.status_code
    if not rules.status_retryable(status, request):
        return None
    if (runtime.service.retry.one_layer
            and parse_retries_spent(response.headers.get(RETRIES_SPENT_HEADER)) is not None):
        return None  # retries already spent below: one layer retries, not every layer
    if status in RETRY_AFTER_STATUSES:
        value = response.headers.get("retry-after")
        if value is not None:
            reference = http_date_s(response.headers.get("date")) or res.wall()
            after = parse_retry_after(value, reference)
            if after is not None:
                return after
    return res.backoff.wait(attempt, runtime.rng)


def _may_retry(attempt: int, max_attempts: int, wait_s: float, deadline: Deadline, now: int,
               runtime: ServiceRuntime) -> bool:
    """Attempts left, time left (the wait plus the fastest endpoint's latency estimate),
    then a token from the budget (checked last, so a refused retry costs nothing)."""
    res = runtime.resilience
    stats = res.budget
    name = runtime.service.name
    if attempt >= max_attempts:
        if max_attempts > 1:
            stats.attempts_exhausted += 1
            _events.emit(_events.BUDGET_EXHAUSTED, name, reason="attempts", attempts=attempt)
        return False
    remaining = deadline.remaining_ns(now) - int(wait_s * _NS)
    fastest = runtime.balancer.fastest_ns()
    if remaining <= 0 or (fastest is not None and remaining < fastest):
        return False
    if not stats.tokens.try_withdraw():
        stats.budget_exhausted += 1
        _events.emit(_events.BUDGET_EXHAUSTED, name, reason="budget", attempts=attempt)
        return False
    return True


def _finish(outcome: Outcome, state: EndpointState | None, start: int, ok: bool,
            attempts: int, request: httpx.Request, runtime: ServiceRuntime,
            retrying_layer: bool, inbound: Inbound | None, tried: set[str],
            endpoint: str | None = None) -> Done:
    """The `Done` returning the response (its load measurement ends when its body closes;
    `state` None: already ended; `endpoint` then names the response's), or raise the error,
    noted with the service, attempts and endpoints tried. (A function, not a
    sub-generator: the flow yields its result, one allocation fewer per call.)"""
    response = outcome.response
    name = runtime.service.name
    owned = retrying_layer and runtime.service.retry.one_layer
    rules = runtime.resilience.rules
    if response is None:
        error = outcome.error
        assert error is not None
        if owned and inbound is not None and rules.error_retryable(error_kind(error), request):
            inbound.spent.append(attempts)  # failed after owning its retries
        raise annotate(error, name, attempts, tried)
    if owned and rules.status_retryable(response.status_code, request):
        # This layer owned the retries of a retryable failure: tell the layers above, on
        # the response and through the inbound request being handled. (A failure it could
        # not retry, e.g. a POST, stays unmarked: a layer above may be able to.) A count
        # marked below is kept when larger: a layer never lowers what was spent below it.
        below = parse_retries_spent(response.headers.get(RETRIES_SPENT_HEADER))
        spent = attempts if below is None or below < attempts else below
        response.headers[RETRIES_SPENT_HEADER] = str(spent)
        if inbound is not None:
            inbound.spent.append(spent)
    on_close = (None if state is None
                else partial(state.end, start, None, ok))
    served = endpoint if state is None else state.endpoint.key
    return Done(stamp(response, name, served or "", attempts), on_close, attempts)


def _give_up(last: Outcome, attempts: int, request: httpx.Request, runtime: ServiceRuntime,
             retrying_layer: bool, inbound: Inbound | None, endpoint: str,
             tried: set[str]) -> Flow:
    """A retry had nowhere to go (every other breaker open): the previous outcome (from
    `endpoint`), whose endpoint accounting is already closed."""
    yield _finish(last, None, 0, True, attempts, request, runtime, retrying_layer, inbound,
                  tried, endpoint)
