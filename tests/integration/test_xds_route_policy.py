"""Route timeouts and retry policies, and EDS priorities, from xDS resources, through both
shells (gRFC A31, A44 and A27 describe what gRPC's client does with the same fields)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx
import pytest

pytest.importorskip("grpc")
pytest.importorskip("envoy.service.discovery.v3.ads_pb2_grpc")

from tests.servers.caller import Caller
from tests.servers.helpers import until
from tests.servers.xds_resources import route
from tests.servers.xds_world import URL, XdsWorld, tally


def test_route_retry_policy_retries_a_503ing_endpoint(world: XdsWorld,
                                                      mesh: Callable[..., Caller]) -> None:
    world.cluster.set(0, status=503)
    world.split({"c-0": 1}, endpoints={"c-0": world.endpoints(0, 1)},
                routes=[route(cluster="c-0", retry={"retry_on": "5xx", "num_retries": 2})])
    caller = mesh(world.store())
    statuses = [caller.get(URL + "/").status_code for _ in range(40)]
    assert statuses == [200] * 40
    assert world.cluster[0].hits > 0  # the failing endpoint was tried, and retried past


def test_without_a_retry_policy_a_503_is_the_answer(world: XdsWorld,
                                                    mesh: Callable[..., Caller]) -> None:
    world.cluster.set(0, status=503)
    world.split({"c-0": 1}, endpoints={"c-0": world.endpoints(0)},
                routes=[route(cluster="c-0")])
    caller = mesh(world.store())
    assert caller.get(URL + "/").status_code == 503


def test_route_timeout_bounds_the_call(world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    world.cluster.set(0, latency_ms=3000)
    world.split({"c-0": 1}, endpoints={"c-0": world.endpoints(0)},
                routes=[route(cluster="c-0", timeout_s=0.3)])
    caller = mesh(world.store())
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        caller.get(URL + "/")
    assert time.monotonic() - started < 2.5


def test_priority_failover(world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    world.split({"c-0": 1}, endpoints={"c-0": world.endpoints(0, priority=0)
                                        + world.endpoints(1, priority=1)})
    caller = mesh(world.store())
    assert tally(caller, 20) == {"backend-0": 20}  # priority 1 idles while 0 is healthy
    world.cluster.stop(0)
    # connect failures are retried on the next priority; none reaches the caller
    assert all(caller.get(URL + "/").status_code == 200 for _ in range(20))
    assert until(lambda: tally(caller, 10) == {"backend-1": 10}, 10, every_s=0.0)
