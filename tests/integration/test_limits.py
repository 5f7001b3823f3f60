"""Client-side limits on real loopback backends, through both shells: measured rate, the
bulkhead, adaptive throttling, and a Redis quota shared by two processes."""

from __future__ import annotations

import contextlib
import functools
import logging
import textwrap
import time
from typing import Any

import anyio
import httpx
import pytest

import meshclient
from meshclient import _events
from meshclient.policy import Policy
from meshclient.testing import Backend
from tests.servers.caller import Caller
from tests.servers.concurrency import ConcurrencyServer
from tests.servers.helpers import run_threads, run_workers
from tests.servers.redis_server import RedisServer

#: Limits alone: no retries, breakers or ejection reacting to the backend's failures.
ALONE = {"retry": {"attempts": 1}, "breaker": {"failures": 10000},
         "outlier": {"consecutive_failures": 0}}


def policy(address: str, **limits: Any) -> Policy:
    return Policy.from_dict({"services": {"svc": {"endpoints": [address], "limits": limits,
                                                  **ALONE}}})


def together(caller: Caller, url: str, n: int) -> list[Any]:
    """Send `n` requests at once; each result is a status code or the exception raised."""
    if caller.kind == "sync":
        out: list[Any] = [None] * n

        def one(i: int) -> None:
            try:
                out[i] = caller.client.get(url).status_code
            except Exception as exc:
                out[i] = exc

        run_threads([functools.partial(one, i) for i in range(n)], 30)
        return out

    async def run(client: httpx.AsyncClient) -> list[Any]:
        results: list[Any] = [None] * n

        async def one(i: int) -> None:
            try:
                results[i] = (await client.get(url)).status_code
            except Exception as exc:
                results[i] = exc

        async with anyio.create_task_group() as tg:
            for i in range(n):
                tg.start_soon(one, i)
        return results

    return caller.call(run)  # type: ignore[no-any-return]


def finish_times(caller: Caller, url: str, workers: int, each: int) -> list[float]:
    """`workers` concurrent loops of `each` requests; the monotonic time each one finished."""
    times: list[float] = []
    if caller.kind == "sync":
        def loop() -> None:
            for _ in range(each):
                caller.client.get(url).raise_for_status()
                times.append(time.monotonic())

        run_threads([loop] * workers, 30)
        return sorted(times)

    async def run(client: httpx.AsyncClient) -> None:
        async def loop() -> None:
            for _ in range(each):
                (await client.get(url)).raise_for_status()
                times.append(time.monotonic())

        async with anyio.create_task_group() as tg:
            for _ in range(workers):
                tg.start_soon(loop)

    caller.call(run)
    return sorted(times)


@pytest.mark.slow
def test_measured_rate_within_ten_percent(mesh) -> None:
    with Backend() as backend:
        caller = mesh(policy(backend.address, rate=40, burst=1, max_wait="5s"))
        caller.get("http://svc/warm")  # spends the one burst token
        # 6 concurrent loops, so backend latency is not the bottleneck; the rate is taken
        # between the first and the last completion, so that latency cancels out.
        times = finish_times(caller, "http://svc/x", workers=6, each=8)
    assert len(times) == 48
    rate = (len(times) - 1) / (times[-1] - times[0])
    # Never more than 10% over the rate. Under it, a loaded machine (load 12 seen) may fail
    # to keep up with 40 requests a second itself, so the floor only catches a limiter that
    # throttles far below its rate.
    assert 30 <= rate <= 44, rate


def test_over_rate_without_wait_fails_fast(mesh) -> None:
    with Backend() as backend:
        caller = mesh(policy(backend.address, rate=1, burst=2))
        assert caller.get("http://svc/").status_code == 200
        assert caller.get("http://svc/").status_code == 200
        start = time.monotonic()
        with pytest.raises(httpx.TransportError) as info:
            caller.get("http://svc/")
        assert time.monotonic() - start < 0.5
        assert isinstance(info.value, meshclient.RateLimited)
        assert backend.hits == 2


@pytest.mark.slow
def test_bulkhead_caps_concurrency(mesh) -> None:
    with ConcurrencyServer(latency_s=0.1) as server:
        caller = mesh(policy(server.address, max_concurrent=3, max_wait="10s"))
        results = together(caller, "http://svc/", 12)
    assert results == [200] * 12
    assert server.max_in_flight == 3


@pytest.mark.slow
def test_bulkhead_without_wait_refuses_the_excess(mesh) -> None:
    with ConcurrencyServer(latency_s=0.3) as server:
        caller = mesh(policy(server.address, max_concurrent=2))
        results = together(caller, "http://svc/", 6)
    assert server.max_in_flight <= 2
    refused = [r for r in results if isinstance(r, meshclient.RateLimited)]
    assert results.count(200) == server.hits >= 2
    assert len(refused) == 6 - server.hits


def test_adaptive_throttling_cuts_requests_to_a_rejecting_backend(mesh) -> None:
    with Backend() as backend:
        backend.set(status=503)
        caller = mesh(policy(backend.address, adaptive_k=2))
        throttled = 0
        events: list[dict[str, Any]] = []
        unsubscribe = _events.subscribe(
            lambda kind, service, attrs: events.append(attrs) if kind == _events.RATE_LIMITED
            and service == "svc" else None)
        try:
            for _ in range(200):
                try:
                    assert caller.get("http://svc/").status_code == 503
                except meshclient.RateLimited:
                    throttled += 1
        finally:
            unsubscribe()
        assert backend.hits + throttled == 200
        assert events == [{"reason": "adaptive"}] * throttled
        assert backend.hits < 40, backend.hits  # SRE: p -> requests/(requests+1)


def test_adaptive_throttling_leaves_a_healthy_backend_alone(mesh) -> None:
    with Backend() as backend:
        caller = mesh(policy(backend.address, adaptive_k=2))
        for _ in range(30):
            assert caller.get("http://svc/").status_code == 200
        assert backend.hits == 30


_WORKER = textwrap.dedent("""
    import sys, time, httpx, meshclient
    from meshclient.policy import Policy
    address, url, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    policy = Policy.from_dict({"services": {"svc": {"endpoints": [address], "limits": {
        "rate": 25, "burst": 1, "max_wait": "200ms", "redis": url, "adaptive_k": 0}}}})
    ok = limited = 0
    with httpx.Client(transport=meshclient.MeshTransport(policy)) as client:
        started = time.time()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                client.get("http://svc/").raise_for_status()
                ok += 1
            except meshclient.RateLimited:
                limited += 1
        print(ok, limited, started, time.time())
""")


@pytest.mark.slow
def test_two_processes_share_a_redis_quota() -> None:
    seconds = 2.0
    with RedisServer() as redis_server, Backend() as backend:
        rows = run_workers(_WORKER, backend.address, redis_server.url, str(seconds))
    oks = [int(row[0]) for row in rows]
    # One quota of 25/s for both, over the span from the first worker's start to the last
    # one's end (start-up skew on a loaded machine widens it), plus the burst and a little.
    # Two separate quotas would allow twice as much.
    span = max(float(row[3]) for row in rows) - min(float(row[2]) for row in rows)
    assert sum(oks) == backend.hits
    assert sum(oks) <= 25 * span + 3, (oks, span)
    assert sum(oks) >= 25 * seconds * 0.5, (oks, span)
    assert min(oks) > 0


def test_stopping_redis_degrades_to_local_limits(mesh, caplog) -> None:
    caplog.set_level(logging.WARNING, "meshclient.security")
    with RedisServer() as redis_server, Backend() as backend:
        caller = mesh(policy(backend.address, rate=200, burst=5, max_wait="1s",
                             redis=redis_server.url))
        for _ in range(5):
            assert caller.get("http://svc/").status_code == 200
        redis_server.stop()
        for _ in range(15):
            assert caller.get("http://svc/").status_code == 200
        assert backend.hits == 20
    messages = [r.getMessage() for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(messages) == 1, messages
    assert "falling back to the local limit" in messages[0]


@pytest.mark.slow
def test_bulkhead_slot_freed_when_body_closes_or_call_fails(mesh) -> None:
    with Backend() as backend:
        caller = mesh(policy(backend.address, max_concurrent=1))
        for _ in range(3):  # streamed bodies: the slot is held until the body is read
            assert caller.stream_lines("GET", "http://svc/stream?chunks=2") == [
                "chunk-0", "chunk-1"]
        for _ in range(3):
            with pytest.raises(httpx.TransportError):
                caller.get("http://svc/?reset=1")
        assert caller.get("http://svc/").status_code == 200


def test_inbound_deadline_caps_max_wait(mesh) -> None:
    from meshclient.context import Inbound, inbound_context

    with Backend() as backend:
        caller = mesh(policy(backend.address, rate=1, burst=1, max_wait="10s"))
        assert caller.get("http://svc/").status_code == 200
        now = time.monotonic_ns()
        if caller.kind == "sync":  # the inbound context is per thread/task: set it where we call
            with inbound_context(Inbound(deadline_ns=now + 100_000_000)):
                start = time.monotonic()
                with pytest.raises(meshclient.RateLimited):
                    caller.get("http://svc/")
        else:
            async def call(client: httpx.AsyncClient) -> None:
                with inbound_context(Inbound(deadline_ns=now + 100_000_000)):
                    await client.get("http://svc/")

            start = time.monotonic()
            with pytest.raises(meshclient.RateLimited):
                caller.call(call)
        assert time.monotonic() - start < 0.5


@pytest.mark.slow
def test_adaptive_throttling_recovers_when_the_backend_does(mesh) -> None:
    with Backend() as backend:
        backend.set(status=503)
        caller = mesh(policy(backend.address, adaptive_window="1s"))
        for _ in range(50):
            with contextlib.suppress(meshclient.RateLimited):
                caller.get("http://svc/")
        assert backend.hits < 25
        backend.heal()
        time.sleep(1.1)  # the scenario: real time passes; the window slides past the rejections
        assert [caller.get("http://svc/").status_code for _ in range(10)] == [200] * 10
