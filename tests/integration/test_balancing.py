"""Balancing, ejection and panic on real loopback backends, through both shells."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from meshclient import _events
from meshclient.policy import Policy
from meshclient.testing import LoopbackCluster
from tests.servers.helpers import wait_until


@pytest.fixture
def events() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    seen: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = _events.subscribe(lambda kind, svc, attrs: seen.append((kind, attrs)))
    yield seen
    unsubscribe()


def endpoint_snapshot(caller: Any, key: str) -> dict[str, Any]:
    services = caller.transport.snapshot()["services"]
    return next(e for e in services["users"]["endpoints"] if e["endpoint"] == key)


def call(caller: Any, n: int) -> tuple[list[str], int]:
    """n requests; the backends that answered and the number of failed calls."""
    backends, failures = [], 0
    for _ in range(n):
        try:
            r = caller.get("http://users/")
        except httpx.TransportError:
            failures += 1
            continue
        backends.append(r.json()["backend"])
    return backends, failures


@pytest.mark.slow
def test_p2c_ewma_avoids_a_backend_that_turns_slow(mesh, cluster: LoopbackCluster) -> None:
    def policy(kind: str) -> Policy:
        return Policy.from_dict({"services": {"users": {
            "endpoints": cluster.addresses[:2], "balancer": {"kind": kind}}}})

    caller = mesh(policy("round-robin"))
    cluster.set(0, latency_ms=30)
    call(caller, 4)  # both get a history: backend-1 is the cheaper one
    caller.store.replace(policy("p2c-ewma"))  # the swap keeps the history
    cluster.set(0, latency_ms=0)
    cluster.set(1, latency_ms=100)
    backends, failures = call(caller, 30)
    assert failures == 0
    assert backends[0] == "backend-1"  # it was the cheaper one ...
    # ... until one slow answer. Round robin or random would send it half; a stall of the
    # fast backend on a loaded machine may win it a few back, never a third.
    assert backends.count("backend-1") <= len(backends) // 3, backends
    snap = endpoint_snapshot(caller, cluster[1].address)
    assert snap["estimate_ms"] >= 50 and snap["health"] == "healthy"


@pytest.mark.slow
def test_a_killed_backend_is_ejected_and_returns(mesh, events) -> None:
    with LoopbackCluster(3) as cluster:
        outlier = {"consecutive_failures": 3, "ejection": "linear", "base_ejection": "1s",
                   "max_ejection": "2s"}
        caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"},
                                     retry={"attempts": 1},
                                     outlier=outlier))
        call(caller, 3)
        dead = cluster[0].address
        cluster.stop(0)
        _, failures = call(caller, 15)
        assert failures == 3  # within consecutive_failures attempts, then skipped
        snap = endpoint_snapshot(caller, dead)
        assert snap["ejected"] is True and snap["times_ejected"] == 1
        assert (_events.EJECTED, {"endpoint": dead, "until_s": 1.0}) in events

        cluster.start(0)  # same port
        wait_until(lambda: endpoint_snapshot(caller, dead)["ejected_until_s"] == 0)
        backends, failures = call(caller, 6)
        assert failures == 0 and "backend-0" in backends
        snap = endpoint_snapshot(caller, dead)
        assert snap["ejected"] is False and snap["health"] == "healthy"
        assert (_events.RETURNED, {"endpoint": dead}) in events


@pytest.mark.slow
def test_a_failed_probe_ejects_again_for_longer(mesh, events) -> None:
    with LoopbackCluster(3) as cluster:
        outlier = {"consecutive_failures": 2, "ejection": "linear", "base_ejection": "500ms",
                   "max_ejection": "5s"}
        caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"},
                                     retry={"attempts": 1},
                                     outlier=outlier))
        cluster.set(0, status=503)
        call(caller, 6)
        snap = endpoint_snapshot(caller, cluster[0].address)
        assert snap["times_ejected"] == 1
        key = cluster[0].address
        wait_until(lambda: endpoint_snapshot(caller, key)["ejected_until_s"] == 0)
        call(caller, 3)  # one of these is the probe; it gets a 503
        snap = endpoint_snapshot(caller, key)
        assert snap["times_ejected"] == 2 and snap["ejected"] is True
        assert 0 < snap["ejected_until_s"] <= 1.0
        # the length of each ejection as decided (the snapshot only shows what is left of it)
        lengths = [a["until_s"] for kind, a in events
                   if kind == _events.EJECTED and a["endpoint"] == key]
        assert lengths == [0.5, 1.0], lengths


@pytest.mark.slow
def test_panic_mode_engages_and_releases(mesh, events) -> None:
    with LoopbackCluster(4) as cluster:
        outlier = {"consecutive_failures": 1, "base_ejection": "600ms",
                   "max_ejection": "1s", "max_ejected_percent": 100}
        caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"},
                                     retry={"attempts": 1},
                                     outlier=outlier))
        for i in range(3):
            cluster.set(i, status=503)
        call(caller, 8)  # three ejections leave 1 of 4 available: below 50%
        snapshot = caller.transport.snapshot()["services"]["users"]
        assert snapshot["panic"] is True and snapshot["kind"] == "round-robin"
        backends, _ = call(caller, 8)
        assert len(set(backends)) > 1  # balancing over all, not just the healthy one

        cluster.heal()

        def released() -> bool:  # each probe returns one endpoint
            call(caller, 4)
            return caller.transport.snapshot()["services"]["users"]["panic"] is False

        wait_until(released, every_s=0.05)
        panic = [a["active"] for kind, a in events if kind == _events.PANIC]
        assert panic == [True, False]


def test_policy_swap_keeps_history(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"))
    call(caller, 9)
    before = endpoint_snapshot(caller, cluster[0].address)["requests"]
    caller.store.replace(cluster.policy("users", balancer={"kind": "random"}))
    call(caller, 1)
    after = caller.transport.snapshot()["services"]["users"]
    assert after["kind"] == "random"
    total = sum(e["requests"] for e in after["endpoints"])
    assert total == 10 and endpoint_snapshot(caller, cluster[0].address)["requests"] >= before


def test_zone_preference_from_the_environment(mesh, cluster: LoopbackCluster,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHCLIENT_ZONE", "east")
    zones = ["east", "west", "west"]
    policy = Policy.from_dict({"services": {"users": {"endpoints": [
        {"address": a, "zone": z} for a, z in zip(cluster.addresses, zones, strict=True)]}}})
    caller = mesh(policy)
    backends, _ = call(caller, 8)
    assert set(backends) == {"backend-0"}
    cluster.stop(0)  # the zone's only endpoint fails: spill to the other zone
    backends, failures = call(caller, 8)
    assert failures <= 5 and set(backends) <= {"backend-1", "backend-2"} and backends
