"""The request flow driven by hand on a fake clock: no sockets, no sleeping."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from meshclient._core.actions import Discard, Done, Outcome, Send, Sleep
from meshclient._core.flow import request_flow
from meshclient._runtime import Registry, ServiceRuntime
from meshclient.errors import CircuitOpen, DeadlineExceeded
from meshclient.policy import Policy
from meshclient.testing import FakeClock, SeededRng

ENDPOINTS = ["127.0.0.2:80", "127.0.0.3:80", "127.0.0.4:80"]


def runtime(clock: FakeClock, **service: Any) -> ServiceRuntime:
    policy = Policy.from_dict({"services": {"users": {"endpoints": ENDPOINTS, **service}}})
    return Registry(clock, SeededRng(3)).runtime(policy.resolved["users"])


def drive(flow: Any, replies: list[Any], clock: FakeClock, step_s: float = 0.01) -> list[Any]:
    """Answer each Send with the next reply; sleeps advance the clock."""
    actions = [next(flow)]
    while not isinstance(actions[-1], Done):
        action = actions[-1]
        if isinstance(action, Send):
            clock.advance(step_s)
            reply = replies.pop(0)
            outcome = reply if isinstance(reply, Outcome) else Outcome(response=reply)
            actions.append(flow.send(outcome))
        else:
            if isinstance(action, Sleep):
                clock.advance(action.seconds)
            actions.append(flow.send(None))
    return actions


def get() -> httpx.Request:
    return httpx.Request("GET", "http://users/a")


def test_retries_go_to_different_endpoints_with_numbered_attempts() -> None:
    clock = FakeClock()
    rt = runtime(clock)
    actions = drive(request_flow(get(), rt), [httpx.Response(503)] * 2 + [httpx.Response(200)],
                    clock)
    sends = [a for a in actions if isinstance(a, Send)]
    assert [s.attempt for s in sends] == [1, 2, 3]
    assert len({s.endpoint.key for s in sends}) == 3
    # the first attempt carries no attempt header (absent means 1, as in gRPC)
    assert [s.request.headers.get("x-mesh-attempt") for s in sends] == [None, "2", "3"]
    assert sum(isinstance(a, Discard) for a in actions) == 2
    assert sum(isinstance(a, Sleep) for a in actions) == 2
    done = actions[-1]
    assert done.attempts == 3 and done.response.status_code == 200
    assert all(s.request.extensions["timeout"]["read"] <= 15 for s in sends)


def test_no_retry_when_the_deadline_is_shorter_than_the_fastest_endpoint() -> None:
    clock = FakeClock()
    rt = runtime(clock, timeout={"total": "350ms"})
    done = drive(request_flow(get(), rt), [httpx.Response(200)], clock, step_s=0.3)[-1]
    done.on_close(None)  # the body is read: the endpoint's estimate is 300ms
    actions = drive(request_flow(get(), rt), [httpx.Response(503)], clock, step_s=0.1)
    assert actions[-1].response.status_code == 503 and actions[-1].attempts == 1


def test_retry_after_past_the_deadline_gives_up_at_once() -> None:
    clock = FakeClock()
    rt = runtime(clock, timeout={"total": "5s"})
    reply = httpx.Response(503, headers={"Retry-After": "10"})
    actions = drive(request_flow(get(), rt), [reply], clock)
    assert isinstance(actions[-1], Done) and actions[-1].attempts == 1
    reply = httpx.Response(429, headers={"Retry-After": "2"})
    rt2 = runtime(clock, retry={"on": ["429"]})
    actions = drive(request_flow(get(), rt2), [reply, httpx.Response(200)], clock)
    assert [a.seconds for a in actions if isinstance(a, Sleep)] == [2.0]


def test_a_timeout_at_the_deadline_is_deadline_exceeded() -> None:
    clock = FakeClock()
    rt = runtime(clock, timeout={"total": "1s"}, retry={"on": ["timeout"]})
    flow = request_flow(get(), rt)
    send = next(flow)
    assert send.request.extensions["timeout"]["read"] == pytest.approx(1.0)
    clock.advance(1.0)
    with pytest.raises(DeadlineExceeded) as info:
        flow.send(Outcome(error=httpx.ReadTimeout("timed out")))
    assert isinstance(info.value.__cause__, httpx.ReadTimeout)


def test_all_breakers_open_is_circuit_open() -> None:
    clock = FakeClock()
    rt = runtime(clock, retry={"attempts": 1}, breaker={"failures": 1, "reset": "10s"})
    for _ in range(3):
        drive(request_flow(get(), rt), [httpx.Response(500)], clock)
    with pytest.raises(CircuitOpen):
        next(request_flow(get(), rt))
    clock.advance(10)
    assert isinstance(next(request_flow(get(), rt)), Send)  # a probe


def test_a_pool_timeout_is_no_verdict_on_the_endpoint() -> None:
    clock = FakeClock()
    rt = runtime(clock, retry={"attempts": 1}, breaker={"failures": 1})
    request = httpx.Request("GET", "http://users/a", extensions={"timeout": {
        "connect": 5.0, "read": 5.0, "write": 5.0, "pool": 0.05}})  # the caller's own
    flow = request_flow(request, rt)
    send = next(flow)
    assert isinstance(send, Send)
    state = next(s for s in rt.balancer.states() if s.endpoint.key == send.endpoint.key)
    assert state.in_flight == 1
    clock.advance(0.5)  # a long wait for the pool: no latency sample
    with pytest.raises(httpx.PoolTimeout):
        flow.send(Outcome(error=httpx.PoolTimeout("no connection free")))
    assert state.in_flight == 0 and state.failures == 0 and state.requests == 0
    assert state.breaker is not None and state.breaker.status() == "closed"
    assert state.ewma.estimate(clock.now_ns()) < 0.5
