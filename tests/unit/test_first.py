"""The first attempt made without the generator (`_core/first.py`) does what the flow does:
same request, same accounting, and the flow takes over from any outcome that is not final."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from meshclient._core.actions import Done, Outcome, Send
from meshclient._core.first import First, start_first
from meshclient._core.flow import request_flow
from meshclient._runtime import Registry, ServiceRuntime
from meshclient.context import Inbound
from meshclient.errors import CircuitOpen
from meshclient.policy import Policy
from meshclient.routing import route
from meshclient.testing import FakeClock, SeededRng

from .test_flow import ENDPOINTS, drive, get


def runtime(clock: FakeClock, **service: Any) -> ServiceRuntime:
    policy = Policy.from_dict({"services": {"users": {"endpoints": ENDPOINTS, **service}}})
    return Registry(clock, SeededRng(3)).runtime(policy.resolved["users"])


def through_first(request: httpx.Request, rt: ServiceRuntime, replies: list[Any],
                  clock: FakeClock, inbound: Inbound | None = None) -> list[Any]:
    """What a shell does: the first attempt by hand, then the flow if it takes over."""
    first = start_first(request, rt, inbound, None)
    assert isinstance(first, First)
    clock.advance(0.01)
    reply = replies.pop(0)
    outcome = reply if isinstance(reply, Outcome) else Outcome(response=reply)
    step = first.finish(outcome.response, outcome.error)  # type: ignore[arg-type]
    if step is None:  # final: what the flow's last step would be
        assert outcome.response is not None
        return [first.as_send(), Done(outcome.response, first.on_close, 1)]
    return [first.as_send(), *drive(step, replies, clock)]


def summary(actions: list[Any]) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for action in actions:
        if isinstance(action, Send):
            out.append(("send", (action.attempt, action.endpoint.key, str(action.request.url),
                                 action.request.headers.get("x-mesh-deadline-ms"),
                                 action.request.headers.get("x-mesh-attempt"),
                                 action.request.extensions.get("timeout"))))
        elif isinstance(action, Done):
            out.append(("done", (action.attempts, action.response.status_code)))
        else:
            out.append((type(action).__name__, None))
    return out


@pytest.mark.parametrize("replies", [
    [200],
    [404],  # final: not in retry.on
    [503, 200],
    [503, 503, 503],  # attempts exhausted: the last real response
    [httpx.ConnectError("refused"), 200],
])
def test_same_actions_as_the_flow(replies: list[Any]) -> None:
    def answers() -> list[Any]:
        return [Outcome(error=r) if isinstance(r, Exception) else httpx.Response(r)
                for r in replies]

    clock_a, clock_b = FakeClock(), FakeClock()
    by_flow = drive(request_flow(get(), runtime(clock_a)), answers(), clock_a)
    by_first = through_first(get(), runtime(clock_b), answers(), clock_b)
    assert summary(by_first) == summary(by_flow)


def _put_streamed() -> httpx.Request:  # a generator body: sent once, never replayed
    return httpx.Request("PUT", "http://users/a", content=iter([b"a", b"b"]))


def _put_large() -> httpx.Request:  # in memory, but over the replay limit
    return httpx.Request("PUT", "http://users/a", content=b"x" * (64 * 1024 + 1))


@pytest.mark.parametrize(("request_of", "inbound"), [
    (get, Inbound(attempt=2)),  # a layer above retries: one attempt here (one-layer rule)
    (get, Inbound(attempt=1)),
    (_put_streamed, None),
    (_put_large, None),
    (lambda: httpx.Request("PUT", "http://users/a", content=b"small"), None),
])
def test_same_attempt_allowance_as_the_flow(request_of: Any, inbound: Inbound | None) -> None:
    """How many attempts a call may make (one-layer and replay rules) is worked out when
    the flow takes over from the first attempt: the same as the flow's own."""
    clock_a, clock_b = FakeClock(), FakeClock()
    replies = [httpx.Response(503), httpx.Response(503), httpx.Response(200)]
    by_flow = drive(request_flow(request_of(), runtime(clock_a), inbound), list(replies),
                    clock_a)
    by_first = through_first(request_of(), runtime(clock_b), list(replies), clock_b, inbound)
    assert summary(by_first) == summary(by_flow)
    assert len([a for a in by_first if isinstance(a, Send)]) == (
        1 if request_of in (_put_streamed, _put_large) or (inbound and inbound.is_retry) else 3)


@pytest.mark.parametrize("extensions", [
    {}, {"meshclient.timeout": 2.5}, {"meshclient.timeout": {"total": 4, "per_try": 0.5}},
    {"timeout": {"connect": 1.0, "read": 30.0, "write": None, "pool": 1.0}}])
@pytest.mark.parametrize("inbound_s", [None, 0.8, 60.0])
def test_same_deadline_and_timeouts_as_the_flow(extensions: dict[str, Any],
                                                inbound_s: float | None) -> None:
    def request() -> httpx.Request:
        return httpx.Request("GET", "http://users/a", extensions=dict(extensions))

    def inbound(clock: FakeClock) -> Inbound | None:
        return None if inbound_s is None else Inbound(
            deadline_ns=clock.now_ns() + int(inbound_s * 1e9))

    clock_a, clock_b = FakeClock(), FakeClock()
    replies = [httpx.Response(503), httpx.Response(200)]
    by_flow = drive(request_flow(request(), runtime(clock_a, timeout={"per_try": "1s"}),
                                 inbound(clock_a)), list(replies), clock_a)
    by_first = through_first(request(), runtime(clock_b, timeout={"per_try": "1s"}),
                             list(replies), clock_b, inbound(clock_b))
    assert summary(by_first) == summary(by_flow)


def test_the_usual_call_ends_its_accounting_when_the_body_closes() -> None:
    clock = FakeClock()
    rt = runtime(clock)
    first = start_first(get(), rt, None, None)
    assert first is not None
    state = first.state
    assert state.in_flight == 1 and first.as_send().attempt == 1
    assert first.sent.headers["host"] == "users"
    assert first.finish(httpx.Response(200)) is None  # final
    assert state.in_flight == 1  # until the body is closed
    first.on_close(None)
    assert state.in_flight == 0 and state.failures == 0


def test_an_error_is_classified_by_the_flow() -> None:
    clock = FakeClock()
    rt = runtime(clock, retry={"attempts": 1})
    first = start_first(get(), rt, None, None)
    assert first is not None
    step = first.finish(None, httpx.ConnectError("refused"))
    assert step is not None
    with pytest.raises(httpx.ConnectError):
        next(step)
    assert first.state.in_flight == 0 and first.state.failures == 1


@pytest.mark.parametrize("service", [
    {"retry": {"hedge": {"delay": "10ms"}}},
    {"fault": {"abort": {"status": 503, "percent": 50}}},
])
def test_calls_that_need_the_flow_first_are_left_untouched(service: dict[str, Any]) -> None:
    clock = FakeClock()
    rt = runtime(clock, **service)
    balance = rt.resilience.budget.tokens.balance
    assert start_first(get(), rt, None, None) is None
    assert rt.resilience.budget.tokens.balance == balance  # nothing deposited
    assert all(s.in_flight == 0 and s.requests == 0 for s in rt.balancer.states())


def test_a_faulted_route_uses_the_flow_and_a_mirrored_one_does_not() -> None:
    clock = FakeClock()
    policy = Policy.from_dict({"services": {
        "users": {"endpoints": ENDPOINTS, "routes": [
            {"name": "m", "match": {"path": {"prefix": "/m"}}, "mirror": {"to": "shadow"}},
            {"name": "f", "match": {"path": {"prefix": "/f"}},
             "fault": {"delay": {"duration": "1ms", "percent": 100}}}]},
        "shadow": {"endpoints": ["127.0.0.9:80"]}}})
    registry = Registry(clock, SeededRng(3))
    service = policy.resolved["users"]
    rt = registry.runtime(service)
    faulted = httpx.Request("GET", "http://users/f")
    assert start_first(faulted, rt, None, route(faulted, service, policy, registry.rng)) is None
    # a mirror copy leaves in the shell first: the call itself takes the usual path
    mirrored = httpx.Request("GET", "http://users/m")
    decision = route(mirrored, service, policy, registry.rng)
    assert decision.mirror is not None
    assert start_first(mirrored, rt, None, decision) is not None
    plain = httpx.Request("GET", "http://users/other")
    assert start_first(plain, rt, None, route(plain, service, policy, registry.rng)) is not None


def test_a_passed_inbound_deadline_leaves_it_to_the_flow() -> None:
    clock = FakeClock()
    rt = runtime(clock)
    assert start_first(get(), rt, Inbound(deadline_ns=clock.now_ns() - 1), None) is None
    assert all(s.requests == 0 for s in rt.balancer.states())


def test_every_breaker_open_raises_as_the_flow_does() -> None:
    clock = FakeClock()
    rt = runtime(clock, breaker={"failures": 1, "reset": "30s"})
    for state in rt.balancer.states():
        assert state.breaker is not None
        state.breaker.record(state.breaker.admit(), False)
    with pytest.raises(CircuitOpen):
        start_first(get(), rt, None, None)
    with pytest.raises(CircuitOpen):
        next(request_flow(get(), rt))


@pytest.mark.parametrize(("caller", "kept_as_is"), [
    (dict.fromkeys(("connect", "read", "write", "pool"), 5.0), True),
    (dict.fromkeys(("connect", "read", "write", "pool"), 20.0), False),  # longer than the bound
    (dict.fromkeys(("connect", "read", "write", "pool"), 15.0), False),  # not shorter
    ({"connect": 5.0, "read": None, "write": 5.0, "pool": 5.0}, False),  # unbounded read
    ({"connect": 1.0}, False),  # missing keys
    (dict.fromkeys(("connect", "read", "write", "pool", "extra"), 5.0), False),
    ({"connect": 5.0, "read": 5.0, "write": 5.0, "pool": float("nan")}, False),
    (None, False)])
def test_the_attempt_keeps_the_callers_timeouts_exactly_when_all_are_shorter(
        caller: dict[str, Any] | None, kept_as_is: bool) -> None:
    from meshclient.resilience.deadline import attempt_timeout

    clock = FakeClock()
    extensions = {} if caller is None else {"timeout": caller}
    first = start_first(httpx.Request("GET", "http://users/a", extensions=extensions),
                        runtime(clock), None, None)
    assert first is not None
    kept = first.sent.extensions.get("timeout") is caller
    assert kept == kept_as_is
    if kept:  # capping would have given back the caller's own values
        assert attempt_timeout(caller, 15.0) == caller


def test_an_open_breaker_sends_the_first_attempt_elsewhere() -> None:
    clock = FakeClock()
    rt = runtime(clock, breaker={"failures": 1, "reset": "30s"})
    states = rt.balancer.states()
    for state in states[:2]:  # two of the three endpoints' breakers open
        assert state.breaker is not None
        state.breaker.record(state.breaker.admit(), False)
    for _ in range(5):
        first = start_first(get(), rt, None, None)
        assert first is not None and first.state is states[2]
        assert first.finish(httpx.Response(200)) is None
        first.on_close(None)


def test_a_first_attempt_hands_the_flow_an_immutable_resume() -> None:
    from meshclient._core.flow import Resume

    clock = FakeClock()
    rt = runtime(clock, retry={"attempts": 2, "on": ["503"]})
    first = start_first(get(), rt, None, None)
    assert isinstance(first, First) and first.on_close is None  # made whole by its constructor
    handed: list[Resume] = []
    import meshclient._core.first as first_module

    real = first_module.request_flow

    def spy(*args: Any) -> Any:
        handed.append(args[4])
        return real(*args)

    first_module.request_flow = spy  # type: ignore[assignment]
    try:
        step = first.finish(httpx.Response(503))
    finally:
        first_module.request_flow = real
    assert step is not None and len(handed) == 1
    resume = handed[0]
    assert isinstance(resume, Resume) and resume.outcome.response is not None
    assert (resume.state, resume.ticket, resume.at_ns) == (first.state, first.ticket, first.at_ns)
    with pytest.raises(AttributeError):
        resume.ok = False  # type: ignore[misc]
    assert [type(a).__name__ for a in drive(step, [httpx.Response(200)], clock)][-1] == "Done"


def test_first_and_flow_share_one_finality_rule() -> None:
    from meshclient._core.flow import is_final

    rt = runtime(FakeClock(), retry={"on": ["503", "gateway-error"]})
    assert is_final(rt, httpx.Response(200)) and is_final(rt, httpx.Response(500))
    assert not is_final(rt, httpx.Response(503)) and not is_final(rt, httpx.Response(502))
