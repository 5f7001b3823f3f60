"""Hedges in the flow, driven by hand on a fake clock: who may be hedged, and how the
secondary attempt is measured."""

from __future__ import annotations

from typing import Any

import httpx

from meshclient._core.actions import Done, Hedge, HedgeOutcome, Outcome, Send
from meshclient._core.flow import request_flow
from meshclient._runtime import Registry, ServiceRuntime
from meshclient.policy import Policy
from meshclient.testing import FakeClock, SeededRng

ENDPOINTS = ["127.0.0.2:80", "127.0.0.3:80"]
HEDGE = {"retry": {"hedge": {"delay": "50ms"}}, "balancer": {"kind": "round-robin"}}


def runtime(clock: FakeClock, **service: Any) -> ServiceRuntime:
    policy = Policy.from_dict({"services": {"users": {"endpoints": ENDPOINTS, **service}}})
    return Registry(clock, SeededRng(3)).runtime(policy.resolved["users"])


def test_a_post_is_never_hedged() -> None:
    rt = runtime(FakeClock(), **HEDGE)
    flow = request_flow(httpx.Request("POST", "http://users/a", content=b"x"), rt)
    assert isinstance(next(flow), Send)  # sent once, not raced


def test_a_post_with_an_idempotency_key_or_a_get_is_hedged() -> None:
    rt = runtime(FakeClock(), **HEDGE)
    keyed = httpx.Request("POST", "http://users/a", content=b"x",
                          headers={"Idempotency-Key": "k1"})
    assert isinstance(next(request_flow(keyed, rt)), Hedge)
    assert isinstance(next(request_flow(httpx.Request("GET", "http://users/a"), rt)), Hedge)


def test_a_method_outside_retry_methods_is_not_hedged() -> None:
    rt = runtime(FakeClock(), **{**HEDGE, "retry": {"hedge": {"delay": "50ms"},
                                                    "methods": ["GET"]}})
    put = httpx.Request("PUT", "http://users/a", content=b"x")
    assert isinstance(next(request_flow(put, rt)), Send)


def test_the_secondary_is_measured_from_when_it_was_sent() -> None:
    clock = FakeClock()
    rt = runtime(clock, **HEDGE)
    flow = request_flow(httpx.Request("GET", "http://users/a"), rt)
    hedge = next(flow)
    assert isinstance(hedge, Hedge)
    states = {s.endpoint.key: s for s in rt.balancer.states()}
    second = states[hedge.secondary.endpoint.key]
    clock.advance(1.0)  # the primary is slow
    assert second.in_flight == 0
    hedge.on_secondary()  # the shell sends the secondary now
    assert second.in_flight == 1  # in flight while it races
    clock.advance(0.01)
    reply = HedgeOutcome(1, Outcome(httpx.Response(200)), None, True)
    done = flow.send(reply)
    assert isinstance(done, Done) and done.on_close is not None
    done.on_close(None)
    assert second.in_flight == 0
    # ~10 ms, not the 1.01 s since the primary started
    assert second.ewma.estimate(clock.now_ns()) < 0.1
