"""A full outage simulated through the request flow on a fake clock (Finagle-style: a
discrete-event run with a seeded RNG and a statistical assertion)."""

from __future__ import annotations

import httpx
import pytest

from meshclient._core.actions import Done, Outcome, Send, Sleep
from meshclient._core.flow import request_flow
from meshclient._runtime import Registry
from meshclient.policy import Policy
from meshclient.testing import FakeClock, SeededRng


@pytest.mark.slow
@pytest.mark.parametrize("rate", [20, 100])
def test_backend_load_per_request_is_bounded_by_the_budget(rate: int) -> None:
    clock = FakeClock()
    policy = Policy.from_dict({"services": {"users": {
        "endpoints": ["127.0.0.2:80", "127.0.0.3:80", "127.0.0.4:80"],
        "retry": {"attempts": 5}, "breaker": {"failures": 10_000}}}})
    rt = Registry(clock, SeededRng(11)).runtime(policy.resolved["users"])
    requests, sends = 0, 0
    seconds = 30
    start = clock.now_ns()
    for _ in range(rate * seconds):
        clock.advance(1 / rate)
        requests += 1
        flow = request_flow(httpx.Request("GET", "http://users/a"), rt)
        action = next(flow)
        while not isinstance(action, Done):
            if isinstance(action, Send):
                sends += 1
                clock.advance(0.0005)
                action = flow.send(Outcome(response=httpx.Response(503)))
            else:
                if isinstance(action, Sleep):
                    clock.advance(action.seconds)
                action = flow.send(None)
    # Finagle's bound: 1 + ratio + min_per_second / rate (defaults 0.2 and 10), at the rate
    # achieved (backoff sleeps stretch the sequential run beyond `seconds`).
    achieved = requests / ((clock.now_ns() - start) / 1e9)
    bound = 1 + 0.2 + 10 / achieved
    assert sends / requests <= bound * 1.02
    assert sends / requests == pytest.approx(bound, rel=0.05)
