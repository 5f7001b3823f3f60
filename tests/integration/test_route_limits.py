"""Per-route limits on real loopback backends, through both shells: a route's measured rate
while another route of the same service runs free, a route bulkhead, and route + service
limits applied together (route first, then the service)."""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import pytest

import meshclient
from meshclient.policy import Policy
from meshclient.testing import Backend
from tests.integration.test_limits import ALONE, finish_times, together
from tests.servers.concurrency import ConcurrencyServer


def policy(address: str, routes: list[dict[str, Any]], **svc: Any) -> Policy:
    return Policy.from_dict({"services": {"svc": {"endpoints": [address], "routes": routes,
                                                  **ALONE, **svc}}})


def prefix(path: str, **rule: Any) -> dict[str, Any]:
    return {"match": {"path": {"prefix": path}}, **rule}


@pytest.mark.slow
def test_route_rate_within_ten_percent_while_another_route_runs_free(mesh) -> None:
    with Backend() as backend:
        caller = mesh(policy(backend.address, [
            prefix("/limited", name="limited",
                   limits={"rate": 20, "burst": 1, "max_wait": "5s", "adaptive_k": 0}),
            prefix("/free", name="free")]))
        caller.get("http://svc/limited/warm")  # spends the one burst token
        free: list[float] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def free_loop() -> None:  # one caller thread on the unlimited route meanwhile
            while not stop.is_set() and len(free) < 2000:
                try:
                    caller.get("http://svc/free/x").raise_for_status()
                    free.append(time.monotonic())
                except Exception as exc:  # pragma: no cover - reported below
                    errors.append(exc)
                    return

        side = threading.Thread(target=free_loop)
        side.start()
        try:
            # 4 concurrent loops, so backend latency is not the bottleneck; the rate is the
            # slope of a least-squares line through the completion times, so latency cancels
            # out and one completion delayed by a loaded machine moves it little.
            times = finish_times(caller, "http://svc/limited/x", workers=4, each=12)
        finally:
            stop.set()
            side.join(30)
    assert errors == []
    assert len(times) == 48
    rate = statistics.linear_regression(times, range(len(times))).slope
    # never more than 10% over; the floor only catches a limiter throttling far below its
    # rate (a loaded machine may not keep up with the rate itself)
    assert 15 <= rate <= 22, rate
    during = [t for t in free if times[0] <= t <= times[-1]]
    free_rate = len(during) / (times[-1] - times[0])
    assert free_rate > 1.5 * 20, free_rate  # not held to the other route's limit


@pytest.mark.slow
def test_route_bulkhead_caps_only_its_route(mesh) -> None:
    with ConcurrencyServer(latency_s=0.1) as server:
        caller = mesh(policy(server.address, [
            prefix("/capped", limits={"max_concurrent": 2, "max_wait": "10s"})]))
        assert together(caller, "http://svc/capped", 8) == [200] * 8
        assert server.max_in_flight == 2
        server.max_in_flight = 0
        assert together(caller, "http://svc/other", 6) == [200] * 6
        assert server.max_in_flight > 2


@pytest.mark.slow
def test_route_and_service_concurrency_both_apply(mesh) -> None:
    with ConcurrencyServer(latency_s=0.1) as server:
        caller = mesh(policy(server.address, [
            prefix("/one", limits={"max_concurrent": 1, "max_wait": "10s"}),
            prefix("/three", limits={"max_concurrent": 3, "max_wait": "10s"})],
            limits={"max_concurrent": 2, "max_wait": "10s"}))
        assert together(caller, "http://svc/one", 5) == [200] * 5
        assert server.max_in_flight == 1  # the route is tighter
        server.max_in_flight = 0
        assert together(caller, "http://svc/three", 8) == [200] * 8
        assert server.max_in_flight == 2  # the service is tighter
        # every slot was given back: the service admits a full burst again
        server.max_in_flight = 0
        assert together(caller, "http://svc/other", 4) == [200] * 4
        assert server.max_in_flight == 2


def test_route_and_service_rates_both_apply(mesh) -> None:
    no_adaptive = {"adaptive_k": 0}
    with Backend() as backend:
        caller = mesh(policy(backend.address, [
            prefix("/r", name="r", limits={"rate": 0.1, "burst": 2, **no_adaptive})],
            limits={"rate": 0.1, "burst": 3, **no_adaptive}))
        assert caller.get("http://svc/r").status_code == 200  # route 1 left, service 2
        assert caller.get("http://svc/x").status_code == 200  # service 1 left
        assert caller.get("http://svc/x").status_code == 200  # service 0 left
        with pytest.raises(meshclient.RateLimited, match="service 'svc': rate limit") as info:
            caller.get("http://svc/r")  # the route admits, the service refuses...
        assert info.value.service == "svc"
        registry = caller.transport.security
        route_bucket = registry._routes[("svc", "r")].limiter.bucket
        assert route_bucket.tokens == pytest.approx(1, abs=0.1)  # ...and the token is back
        assert backend.hits == 3
        registry.guard(caller.store.current.resolved["svc"]).bucket.refund()  # one more
        assert caller.get("http://svc/r").status_code == 200  # the route's last token
        registry.guard(caller.store.current.resolved["svc"]).bucket.refund()
        with pytest.raises(meshclient.RateLimited, match="service 'svc' route 'r'"):
            caller.get("http://svc/r")  # now the route itself refuses
        assert caller.get("http://svc/x").status_code == 200  # the service still had one
        assert backend.hits == 5


def test_route_limiter_kept_across_a_policy_refresh(mesh) -> None:
    with Backend() as backend:
        routes = [prefix("/r", name="r", limits={"rate": 0.1, "burst": 1, "adaptive_k": 0})]
        caller = mesh(policy(backend.address, routes))
        assert caller.get("http://svc/r").status_code == 200
        caller.store.replace(policy(backend.address, routes, timeout={"total": "7s"}))
        with pytest.raises(meshclient.RateLimited):  # the spent bucket survived the update
            caller.get("http://svc/r")
        caller.store.replace(policy(backend.address, [
            prefix("/r", name="r", limits={"rate": 0.1, "burst": 2, "adaptive_k": 0})]))
        assert caller.get("http://svc/r").status_code == 200  # new section: a new bucket
        assert backend.hits == 2
