"""Circuit breakers on real loopback backends, through both shells."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

import meshclient
from meshclient.policy import Policy
from meshclient.testing import LoopbackCluster
from tests.servers.helpers import concurrent, redis_server, wait_until

NO_RETRY = {"attempts": 1}


def policy(cluster: LoopbackCluster, **breaker: Any) -> Policy:
    return cluster.policy("users", retry=NO_RETRY, balancer={"kind": "round-robin"},
                          breaker={"failures": 2, "reset": "1s", **breaker})
# 1 s, not less: the checks made while a breaker is open must not outlast `reset` even when
# a loaded machine stalls the test between two lines


def breakers(caller: Any) -> list[str]:
    snap = caller.transport.snapshot()["services"]["users"]
    return [e["breaker"] for e in snap["endpoints"]]


@pytest.mark.slow
def test_open_fail_fast_half_open_probe_close(mesh) -> None:
    with LoopbackCluster(1) as cluster:
        cluster.set(0, status=503)
        caller = mesh(policy(cluster))
        assert [caller.get("http://users/a").status_code for _ in range(2)] == [503, 503]
        assert breakers(caller) == ["open"]
        with pytest.raises(httpx.ConnectError) as info:
            caller.get("http://users/a")
        assert isinstance(info.value, meshclient.CircuitOpen)
        assert cluster.hits() == [2]  # failed fast: no traffic

        cluster.heal()
        wait_until(lambda: breakers(caller) == ["half-open"])  # after `reset`
        assert caller.get("http://users/a").status_code == 200  # the probe
        assert breakers(caller) == ["closed"]


@pytest.mark.slow
def test_failed_probe_reopens(mesh) -> None:
    with LoopbackCluster(1) as cluster:
        cluster.set(0, status=500)
        caller = mesh(policy(cluster))
        for _ in range(2):
            caller.get("http://users/a")
        wait_until(lambda: breakers(caller) == ["half-open"])  # after `reset`
        assert caller.get("http://users/a").status_code == 500  # probe fails
        assert breakers(caller) == ["open"]
        with pytest.raises(meshclient.CircuitOpen):
            caller.get("http://users/a")


@pytest.mark.slow
def test_half_open_admits_exactly_one_probe(mesh) -> None:
    with LoopbackCluster(1) as cluster:
        cluster.set(0, status=503)
        caller = mesh(policy(cluster))
        for _ in range(2):
            caller.get("http://users/a")
        cluster.heal()
        cluster.set(0, latency_ms=300)
        wait_until(lambda: breakers(caller) == ["half-open"])  # after `reset`
        cluster.reset_stats()
        results = concurrent(caller, 6, "GET", "http://users/a")
        ok = [r for r in results if isinstance(r, httpx.Response)]
        refused = [r for r in results if isinstance(r, meshclient.CircuitOpen)]
        assert len(ok) == 1 and len(refused) == 5
        assert cluster.hits() == [1]
        assert breakers(caller) == ["closed"]


def test_open_breaker_sends_traffic_elsewhere(mesh, cluster: LoopbackCluster) -> None:
    cluster.set(0, status=503)
    caller = mesh(cluster.policy("users", retry={"backoff": {"base": "1ms", "max": "2ms"}},
                                 balancer={"kind": "round-robin"},
                                 breaker={"failures": 2, "reset": "10s"}))
    for _ in range(9):
        assert caller.get("http://users/a").status_code == 200  # retried elsewhere
    assert breakers(caller)[0] == "open"
    assert cluster.hits()[0] == 2  # no traffic once open


@pytest.mark.slow
def test_concurrent_requests_are_not_serialised_by_the_breaker(mesh) -> None:
    with LoopbackCluster(1) as cluster:
        cluster.set(0, latency_ms=200)
        caller = mesh(policy(cluster))
        caller.get("http://users/warm")
        took = []
        for _ in range(3):  # the best of up to three: a loaded machine may stall one round
            started = time.monotonic()
            results = concurrent(caller, 16, "GET", "http://users/a")
            took.append(time.monotonic() - started)
            assert all(isinstance(r, httpx.Response) and r.status_code == 200 for r in results)
            if took[-1] < 1.6:
                break
        # serialised, 16 x 200 ms would take 3.2 s; half of that leaves room for scheduling
        assert min(took) < 1.6, took
        assert breakers(caller) == ["closed"]


def test_breaker_state_shared_through_redis(shell: str) -> None:
    from tests.servers.caller import Caller

    with redis_server() as url, LoopbackCluster(1) as cluster:
        cluster.set(0, status=503)
        pol = cluster.policy("users", retry=NO_RETRY,
                             breaker={"failures": 2, "reset": "10s", "storage": url})
        one, two = Caller(shell, pol), Caller(shell, Policy.from_dict(pol.to_dict()))
        try:
            for _ in range(2):
                assert one.get("http://users/a").status_code == 503
            with pytest.raises(meshclient.CircuitOpen):  # another registry: state from Redis
                two.get("http://users/a")
            assert breakers(two) == ["open"]
            assert cluster.hits() == [2]
        finally:
            one.close()
            two.close()


def test_unreachable_redis_falls_back_to_memory(mesh) -> None:
    from tests.servers.ports import free_port

    with LoopbackCluster(1) as cluster:
        url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
        caller = mesh(cluster.policy("users", breaker={"storage": url}))
        assert caller.get("http://users/a").status_code == 200
        assert breakers(caller) == ["closed"]


def test_a_pool_timeout_blames_no_endpoint(mesh) -> None:
    """A burst on a 2-connection pool: the pool timeouts are the caller's, so no breaker
    opens, no endpoint is ejected or marked failing, and the next requests go through."""
    with LoopbackCluster(2) as cluster:
        cluster.set(0, latency_ms=200)
        cluster.set(1, latency_ms=200)
        caller = mesh(policy(cluster), limits=httpx.Limits(max_connections=2))
        results = concurrent(caller, 40, "GET", "http://users/a",
                             timeout=httpx.Timeout(5.0, pool=0.05))
        timeouts = [r for r in results if isinstance(r, httpx.PoolTimeout)]
        assert timeouts, results  # the burst did overflow the pool
        assert all(isinstance(r, (httpx.Response, httpx.PoolTimeout)) for r in results), results
        assert breakers(caller) == ["closed", "closed"]
        snap = caller.transport.snapshot()["services"]["users"]
        assert [e["failures"] for e in snap["endpoints"]] == [0, 0]
        assert [e["ejected"] for e in snap["endpoints"]] == [False, False]
        assert [e["in_flight"] for e in snap["endpoints"]] == [0, 0]
        for _ in range(4):
            assert caller.get("http://users/a").status_code == 200
