"""Which requests are retried, where, how often and how far apart: real loopback backends,
through both shells."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from meshclient import _events
from meshclient.context import ATTEMPT_HEADER, DEADLINE_HEADER, RETRIES_SPENT_HEADER, Inbound
from meshclient.policy import Policy
from meshclient.testing import LoopbackCluster
from tests.servers.helpers import request_inbound

FAST = {"backoff": {"base": "1ms", "max": "5ms"}}


def policy(cluster: LoopbackCluster, retry: dict[str, Any] | None = None,
           **extra: Any) -> Policy:
    # round robin: these tests count where each attempt lands, in rotation
    extra.setdefault("balancer", {"kind": "round-robin"})
    return cluster.policy("users", retry={**FAST, **(retry or {})}, **extra)


@pytest.fixture
def events() -> Any:
    seen: list[tuple[str, str, dict[str, Any]]] = []
    unsubscribe = _events.subscribe(lambda kind, service, attrs: seen.append(
        (kind, service, attrs)))
    yield seen
    unsubscribe()


def test_connect_error_is_retried_for_any_method(mesh, cluster: LoopbackCluster) -> None:
    cluster.stop(0)
    caller = mesh(policy(cluster))
    for _ in range(4):
        r = caller.request("POST", "http://users/orders", content=b"order")
        assert r.status_code == 200
        assert r.json()["body_bytes"] == 5


def test_reset_retried_for_idempotent_methods_only(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, reset=True)
        caller = mesh(policy(cluster))
        for _ in range(3):
            assert caller.get("http://users/a").json()["backend"] == "backend-1"
        cluster.reset_stats()
        with pytest.raises(httpx.TransportError):
            for _ in range(2):  # one of two lands on the resetting backend first
                caller.request("POST", "http://users/a", content=b"x")
        assert sum(cluster.hits()) <= 2
        r = [caller.request("POST", "http://users/a", content=b"x",
                            headers={"Idempotency-Key": f"k{i}"}) for i in range(2)]
        assert all(x.status_code == 200 for x in r)


def test_status_in_retry_on_is_retried_on_another_endpoint(mesh,
                                                            cluster: LoopbackCluster) -> None:
    for i in range(3):
        cluster.set(i, status=503)
    caller = mesh(policy(cluster))
    r = caller.get("http://users/a")
    assert r.status_code == 503  # the last real response, not a new error
    assert sorted(cluster.hits()) == [1, 1, 1]  # 3 attempts, 3 different endpoints
    assert r.headers[RETRIES_SPENT_HEADER] == "3"
    cluster.reset_stats()
    r = caller.request("POST", "http://users/a", content=b"x")
    assert r.status_code == 503 and sum(cluster.hits()) == 1  # POST: not idempotent
    assert RETRIES_SPENT_HEADER not in r.headers  # a layer above may still retry it


def test_attempt_and_deadline_headers(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, status=503)
        cluster.set(1, status=503)
        caller = mesh(policy(cluster, {"attempts": 2}, timeout={"total": "2s"}))
        caller.get("http://users/a")
        seen = sorted((int(h.get(ATTEMPT_HEADER, "1")), int(h[DEADLINE_HEADER]))
                      for b in cluster.backends for _, _, h, _ in b.requests)
        assert [a for a, _ in seen] == [1, 2]  # the first carries none: absent means 1
        assert sum(ATTEMPT_HEADER in h for b in cluster.backends for _, _, h, _ in b.requests) == 1
        assert all(1000 < ms <= 2000 for _, ms in seen)


def test_body_is_replayed_streaming_body_is_not(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, status=503)
        cluster.set(1, status=503)
        caller = mesh(policy(cluster, {"attempts": 2}))
        key = {"Idempotency-Key": "abc"}
        caller.request("POST", "http://users/a", content=b"y" * 1000, headers=key)
        assert [len(body) for b in cluster.backends for *_, body in b.requests] == [1000, 1000]

        cluster.reset_stats()
        caller.request("POST", "http://users/a", content=b"y" * (64 * 1024 + 1), headers=key)
        assert sum(cluster.hits()) == 1  # above the 64 KiB replay buffer

        cluster.reset_stats()
        if caller.kind == "sync":
            body: Any = iter([b"a" * 10, b"b" * 10])
        else:
            async def agen() -> Any:
                yield b"a" * 10
                yield b"b" * 10
            body = agen()
        r = caller.request("PUT", "http://users/a", content=body)
        assert r.status_code == 503 and sum(cluster.hits()) == 1  # a generator: never replayed


@pytest.mark.slow
def test_retry_after_is_honoured(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, status=503, retry_after=1)
        cluster.set(1, status=503, retry_after=1)
        caller = mesh(policy(cluster, {"attempts": 2}))
        started = time.monotonic()
        r = caller.get("http://users/a")
        assert r.status_code == 503 and sum(cluster.hits()) == 2
        assert time.monotonic() - started >= 0.95


def test_retry_after_past_the_deadline_gives_up_at_once(mesh,
                                                        cluster: LoopbackCluster) -> None:
    for i in range(3):
        cluster.set(i, status=503, retry_after=30)
    caller = mesh(policy(cluster, timeout={"total": "2s"}))
    started = time.monotonic()
    r = caller.get("http://users/a")
    assert r.status_code == 503 and sum(cluster.hits()) == 1
    assert time.monotonic() - started < 1.5  # not waiting out the 2 s deadline


def test_attempts_cap(mesh, cluster: LoopbackCluster, events) -> None:
    for i in range(3):
        cluster.set(i, status=502)
    caller = mesh(policy(cluster, {"attempts": 2}))
    assert caller.get("http://users/a").status_code == 502
    assert sum(cluster.hits()) == 2
    assert [k for k, *_ in events].count(_events.RETRY) == 1
    snap = caller.transport.snapshot()["services"]["users"]
    assert snap["retries"] == 1 and snap["attempts_exhausted"] == 1


def test_budget_exhaustion_returns_the_last_real_response(mesh, cluster: LoopbackCluster,
                                                          events) -> None:
    for i in range(3):
        cluster.set(i, status=503)
    budget = {"ratio": 0, "min_per_second": 1, "ttl": "1s"}  # one retry a second
    caller = mesh(policy(cluster, {"attempts": 3, "budget": budget}))
    first = caller.get("http://users/a")
    second = caller.get("http://users/a")
    assert first.status_code == second.status_code == 503
    assert sum(cluster.hits()) == 3  # 2 for the first (one retry), 1 for the second
    snap = caller.transport.snapshot()["services"]["users"]
    assert snap["budget_exhausted"] == 2 and snap["retries"] == 1
    assert snap["budget_balance"] == 0
    assert any(k == _events.BUDGET_EXHAUSTED and a["reason"] == "budget" for k, _, a in events)


def test_budget_is_shared_by_every_client_of_a_service(mesh, cluster: LoopbackCluster) -> None:
    for i in range(3):
        cluster.set(i, status=503)
    budget = {"ratio": 0, "min_per_second": 1, "ttl": "1s"}
    one = mesh(policy(cluster, {"attempts": 2, "budget": budget}))
    two = mesh(policy(cluster, {"attempts": 2, "budget": budget}))  # its own store
    one.get("http://users/a")
    cluster.reset_stats()
    two.get("http://users/a")
    assert sum(cluster.hits()) == 1  # the process-wide budget was spent by `one`


def test_one_layer_no_retry_below_a_retry(mesh, cluster: LoopbackCluster) -> None:
    for i in range(3):
        cluster.set(i, status=503)
    caller = mesh(policy(cluster))
    r = request_inbound(caller, Inbound(attempt=2), "GET", "http://users/a")
    assert r.status_code == 503 and sum(cluster.hits()) == 1
    assert RETRIES_SPENT_HEADER not in r.headers  # the layer above owns these retries
    cluster.reset_stats()
    handling = Inbound(attempt=1)
    r = request_inbound(caller, handling, "GET", "http://users/a")
    assert sum(cluster.hits()) == 3
    assert handling.retries_spent == 3  # the inbound middleware marks its failure answer


def test_one_layer_off_retries_below_a_retry(mesh, cluster: LoopbackCluster) -> None:
    for i in range(3):
        cluster.set(i, status=503)
    caller = mesh(policy(cluster, {"one_layer": False}))
    request_inbound(caller, Inbound(attempt=2), "GET", "http://users/a")
    assert sum(cluster.hits()) == 3


def test_inbound_deadline_becomes_the_outbound_deadline(mesh,
                                                        cluster: LoopbackCluster) -> None:
    from meshclient._clock import CLOCK

    caller = mesh(policy(cluster))
    value = Inbound(deadline_ns=CLOCK.now_ns() + 700_000_000)
    r = request_inbound(caller, value, "GET", "http://users/a")
    assert 0 < int(r.json()["headers"][DEADLINE_HEADER]) <= 700


def test_cancelled_during_backoff_frees_the_connection(cluster: LoopbackCluster) -> None:
    import anyio

    from tests.servers.caller import Caller

    for i in range(3):
        cluster.set(i, status=503, retry_after=2)
    caller = Caller("async", policy(cluster))
    try:
        async def run(client: httpx.AsyncClient) -> bool:
            with anyio.move_on_after(0.3) as scope:
                await client.get("http://users/a")
            return scope.cancelled_caught

        assert caller.call(run)  # cancelled while waiting out Retry-After
        pool = caller.transport.inner._pool  # httpcore's pool: no connection left busy
        assert not [c for c in pool.connections if not c.is_idle()]
    finally:
        caller.close()
