"""One attempt's pure steps, used by the flow: pick and guard an endpoint, address the
attempt with its headers and timeout, and observe what came back."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from .. import _events
from ..balance import PROBING
from ..errors import CircuitOpen, NoEndpointsAvailable
from ..resilience.breaker import NORMAL, PROBE, REFUSED
from ..resilience.classify import OTHER, POOL_TIMEOUT, error_kind
from ..resilience.deadline import Deadline, attempt_timeout
from .actions import Send
from .address import address_request, header

if TYPE_CHECKING:
    from .._runtime import ServiceRuntime
    from ..balance import EndpointState
    from ..context import Inbound

#: Largest body buffered for replay (a bigger or streaming body is never sent twice).
MAX_REPLAY_BYTES = 64 * 1024
_NO_KEYS: frozenset[str] = frozenset()
ALL_OPEN = "all-open"


def attempts_allowed(request: httpx.Request, attempts: int, one_layer: bool,
                     inbound: Inbound | None) -> int:
    """How many attempts this layer may make: `retry.attempts`, or 1 when a layer above
    retries (the one-layer rule) or the body cannot be replayed. A replayable body is in
    memory (httpx `ByteStream`, which `request.read()` also produces) and ≤ 64 KiB; a
    generator body is consumed by the first attempt and is never sent twice."""
    if attempts < 2:
        return attempts
    if one_layer and inbound is not None and inbound.is_retry:
        return 1
    if not isinstance(request.stream, httpx.ByteStream):
        return 1
    content = request.__dict__.get("_content")  # `request.content`, which raises if unread
    if content is not None:
        return attempts if len(content) <= MAX_REPLAY_BYTES else 1
    # a ByteStream passed as `stream=`: trust Content-Length
    length = header(request.headers, b"content-length")
    return attempts if length is None or (length.isascii() and length.isdigit()
                                          and int(length) <= MAX_REPLAY_BYTES) else 1


def _left_s(deadline_ns: int | None, now_ns: int) -> float | None:
    """Seconds the call has left, for a breaker whose shared storage must not outlast it."""
    return None if deadline_ns is None else (deadline_ns - now_ns) / 1e9


def pick_and_guard(runtime: ServiceRuntime, tried: set[str], now_ns: int,
                   deadline_ns: int | None = None) -> tuple[EndpointState, int] | str | None:
    """Pick an endpoint not yet tried (the balancer reuses one when all were) whose breaker
    admits the attempt, at `now_ns`, within the call's `deadline_ns`. Returns (state,
    breaker ticket), `ALL_OPEN` when every candidate's breaker refused, or None when the
    service has no endpoints."""
    balancer = runtime.balancer
    if not tried:  # a first attempt: the usual case, one pick, one admission
        state = balancer.pick(_NO_KEYS, now_ns)
        if state is None:
            return None
        breaker = state.breaker
        # a clean breaker (closed, nothing counted) would admit: not asked
        ticket = (NORMAL if breaker is None or breaker.clean
                  else breaker.admit(_left_s(deadline_ns, now_ns), probe=state.phase == PROBING,
                                     panic=balancer.panic))
        if ticket != REFUSED:
            return state, ticket
        refused = {state.endpoint.key}
    else:
        refused = set()
    for _ in range(len(balancer.states()) + 1):
        exclude = frozenset(tried | refused) if (tried or refused) else _NO_KEYS
        state = balancer.pick(exclude, now_ns)
        if state is None:
            return None
        if refused and state.endpoint.key in refused:
            break
        breaker = state.breaker
        ticket = NORMAL if breaker is None else breaker.admit(
            _left_s(deadline_ns, now_ns), probe=state.phase == PROBING, panic=balancer.panic)
        if ticket != REFUSED:
            return state, ticket
        refused.add(state.endpoint.key)
    return ALL_OPEN


def prepare(request: httpx.Request, runtime: ServiceRuntime, state: EndpointState,
            attempt: int, deadline: Deadline, now_ns: int) -> tuple[Send, bool]:
    """The `Send` for one attempt, and whether its timeout is the call's deadline (so a
    timeout means the deadline passed): `attempt_request`, wrapped."""
    out, capped = attempt_request(request, runtime, state, attempt, deadline.at_ns,
                                  deadline.per_try_ns, now_ns)
    return Send(out, state.endpoint, runtime.service.name, attempt,
                deadline.at_ns - now_ns), capped


def attempt_request(request: httpx.Request, runtime: ServiceRuntime, state: EndpointState,
                    attempt: int, at_ns: int, per_try_ns: int | None,
                    now_ns: int) -> tuple[httpx.Request, bool]:
    """The attempt's request and whether its timeout is the call's deadline. The attempt
    carries the remaining deadline and, from the second on, its number; its httpx timeout
    is per_try, capped by what remains and by the caller's. (`prepare` wraps it in a
    `Send`; a first attempt made without the generator needs none.)"""
    remaining = at_ns - now_ns
    if per_try_ns is None or remaining <= per_try_ns:
        bound_ns, capped = remaining, True
    else:
        bound_ns, capped = per_try_ns, False
    left_ms = remaining // 1_000_000
    out = address_request(request, runtime.service, state.endpoint, None,
                          str(left_ms if left_ms > 0 else 0), attempt)
    caller: Any = request.extensions.get("timeout")  # a mapping, or None
    bound_s = bound_ns / 1e9
    # Every one of the caller's httpx timeouts set and shorter than the bound: the attempt
    # keeps the caller's timeout extension as it is (the usual case, httpx's 5 s default
    # under a longer deadline: no new mapping per attempt), and a timeout is the caller's,
    # not the deadline's. (None, NaN or a missing key: no; capping would give back the
    # caller's own values wherever this holds.)
    try:  # the four httpx keys, unrolled (every request)
        kept = bool(len(caller) == 4 and caller["connect"] < bound_s
                    and caller["read"] < bound_s and caller["write"] < bound_s
                    and caller["pool"] < bound_s)
    except (KeyError, TypeError):
        kept = False
    if kept:
        capped = False  # the caller's own, shorter timeouts bound this attempt (kept as is)
    else:
        out.extensions["timeout"] = attempt_timeout(caller, bound_s)
        if capped and caller:
            for value in caller.values():
                if value is not None and value < bound_s:
                    capped = False  # the caller's own, shorter timeout bounds this attempt
                    break
    return out, capped


def observe(runtime: ServiceRuntime, state: EndpointState, ticket: int, start_ns: int,
            response: httpx.Response | None, error: Exception | None, now_ns: int,
            deadline_ns: int | None = None) -> bool:
    """Record an attempt's result (its response, or the error sending it raised) in its
    breaker (and, while hedging at a percentile, its time in the latency ring); for an
    error, end the endpoint's load measurement too (a response's ends when its body
    closes). Returns whether the endpoint did well (no connect error, reset, timeout or
    5xx). A pool timeout (the caller's own pool had no connection free) is no verdict: the
    attempt is cancelled without a latency sample, breaker result or ejection streak."""
    if response is not None:
        ok = response.status_code < 500  # a 5xx counts against the endpoint
        if ok and runtime.resilience.latency.samples:  # hedging at a percentile
            runtime.resilience.latency.observe(now_ns - start_ns)
    else:
        assert error is not None
        kind = error_kind(error)
        if kind == POOL_TIMEOUT:  # never left the caller's pool: no verdict on the endpoint
            state.cancel(start_ns)
            if state.breaker is not None:
                state.breaker.release(ticket)
            return True
        ok = kind == OTHER  # not the endpoint's fault
        state.end(start_ns, now_ns, ok)
    breaker = state.breaker
    if breaker is not None and not (ok and ticket == NORMAL and breaker.clean):
        # (a success on a clean breaker changes nothing)
        breaker.record(ticket, ok, _left_s(deadline_ns, now_ns))
        if ok and ticket == PROBE:  # back from an open breaker: a fresh latency estimate
            state.restart_estimate()
    return ok


def abandon(state: EndpointState, ticket: int, start_ns: int, now_ns: int) -> None:
    """An attempt cancelled without a result (a losing hedge): no verdict on the endpoint."""
    state.end(start_ns, now_ns, True)
    if state.breaker is not None:
        state.breaker.release(ticket)


def no_pick(chosen: str | None, request: httpx.Request,
            runtime: ServiceRuntime) -> NoEndpointsAvailable | CircuitOpen:
    """The error for a first attempt that found nowhere to go (`pick_and_guard` gave None
    or `ALL_OPEN`)."""
    name = runtime.service.name
    if chosen is None:
        return NoEndpointsAvailable(f"service {name!r} has no endpoints{why_none(runtime)}",
                                    request=request, service=name)
    _events.emit(_events.BREAKER_FAST_FAIL, name)
    return CircuitOpen(f"every endpoint of {name!r} has an open circuit breaker",
                       request=request, service=name)


def why_none(runtime: ServiceRuntime) -> str:
    """Why a discovered service has no endpoint, for `NoEndpointsAvailable`."""
    cache = runtime.feed.cache
    if cache is None:
        return ""
    if not cache.ready:
        return (f" (discovery from {cache.resolver.source} has not answered: "
                f"{cache.last_error or 'no answer yet'})")
    return f" (discovery from {cache.resolver.source} found none)"
