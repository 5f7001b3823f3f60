"""Hedged requests: a second attempt to another endpoint after a delay; first good wins.

The policies use round robin, so the slow endpoint is tried first on a known share of calls
(p2c-ewma would learn to avoid it, leaving nothing to hedge).
"""

from __future__ import annotations

import time

import pytest

from meshclient.testing import LoopbackCluster

pytestmark = pytest.mark.slow

RR = {"kind": "round-robin"}


def test_hedge_after_fixed_delay_wins(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, latency_ms=3000)
        caller = mesh(cluster.policy("users", balancer=RR, retry={"hedge": {"delay": "50ms"}}))
        for _ in range(4):
            started = time.monotonic()
            r = caller.get("http://users/a")
            assert r.status_code == 200 and r.json()["backend"] == "backend-1"
            assert time.monotonic() - started < 2.0  # the slow endpoint takes 3 s
        snap = caller.transport.snapshot()["services"]["users"]
        assert 2 <= snap["hedges"] <= 4  # the calls that went to the slow endpoint first
        assert cluster.hits()[1] == 4


def test_hedge_waits_for_a_good_answer(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, latency_ms=300)
        cluster.set(1, status=503)
        caller = mesh(cluster.policy("users", balancer=RR, retry={"hedge": {"delay": "30ms"},
                                                     "attempts": 2}))
        results = [caller.get("http://users/a") for _ in range(2)]
        assert [r.status_code for r in results] == [200, 200]


def test_hedge_at_a_percentile(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        caller = mesh(cluster.policy("users", balancer=RR, retry={"hedge": {"percentile": 90}}))
        for _ in range(30):  # history for the percentile
            caller.get("http://users/a")
        cluster.set(0, latency_ms=2500)
        started = time.monotonic()
        for _ in range(2):
            assert caller.get("http://users/a").status_code == 200
        assert time.monotonic() - started < 4.0  # at most one of the two waited 2.5 s
        assert caller.transport.snapshot()["services"]["users"]["hedges"] >= 1


def test_a_slow_post_arrives_once_and_a_keyed_one_may_be_hedged(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, latency_ms=300)
        cluster.set(1, latency_ms=300)
        caller = mesh(cluster.policy("users", balancer=RR, retry={"hedge": {"delay": "30ms"}}))
        for _ in range(4):
            assert caller.request("POST", "http://users/a", content=b"x").status_code == 200
        assert sum(cluster.hits()) == 4  # never sent twice
        assert caller.transport.snapshot()["services"]["users"]["hedges"] == 0
        cluster.reset_stats()
        r = caller.request("POST", "http://users/a", content=b"x",
                           headers={"Idempotency-Key": "k1"})
        assert r.status_code == 200
        assert caller.transport.snapshot()["services"]["users"]["hedges"] == 1
