"""httpx traffic routed by xDS resources from the test ADS server (the same server and
resource shapes gRPC's own client is checked against), through both shells."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

pytest.importorskip("grpc")
pytest.importorskip("envoy.service.discovery.v3.ads_pb2_grpc")

from meshclient._runtime import Registry
from meshclient.testing import SeededRng
from tests.servers.ads import LISTENER, ROUTE
from tests.servers.caller import Caller
from tests.servers.helpers import until
from tests.servers.xds_resources import listener, route, route_config
from tests.servers.xds_world import TARGET, URL, XdsWorld, backend_of, tally


def test_weighted_split_80_20_within_4_percent(world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    world.split({"c-0": 80, "c-1": 20})
    store = world.store()
    # the split draws from the registry's generator: seeded, the 1,000 draws are the same
    # every run (the OS-seeded default would miss the 4% bound about one run in 600)
    store.attachment("registry", lambda: Registry(rng=SeededRng(20261203)))
    caller = mesh(store)
    counts = tally(caller, 1000)
    assert abs(counts["backend-0"] / 1000 - 0.8) <= 0.04, counts


def test_header_match_route(world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    world.split({"c-0": 1, "c-1": 1}, routes=[
        route(headers={"x-canary": "yes"}, cluster="c-1"),
        route(cluster="c-0")])
    caller = mesh(world.store())
    assert tally(caller, 20) == {"backend-0": 20}
    assert tally(caller, 20, headers={"x-canary": "yes"}) == {"backend-1": 20}


def test_live_change_to_0_100_in_effect_within_1s_of_the_push(
        world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    world.split({"c-0": 100, "c-1": 0})
    store = world.store()
    caller = mesh(store)
    assert tally(caller, 20) == {"backend-0": 20}
    world.server.set(ROUTE, [route_config("rc-" + TARGET, ["*"],
                                          [route(weights={"c-0": 0, "c-1": 100})])])
    pushed = time.monotonic()
    while backend_of(caller.get(URL + "/")) != "backend-1":
        assert time.monotonic() - pushed < 1.0, "the push was not in effect within 1 s"
    assert tally(caller, 20) == {"backend-1": 20}
    assert world.server.wait_for(lambda: world.server.acked(ROUTE))


def test_invalid_resource_is_nacked_and_the_last_good_config_serves(
        world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    from envoy.config.listener.v3 import listener_pb2

    world.split({"c-0": 100, "c-1": 0})
    store = world.store()
    caller = mesh(store)
    assert tally(caller, 10) == {"backend-0": 10}
    good = store.current.version
    world.server.set(LISTENER, [listener_pb2.Listener(name=TARGET)])  # no api_listener
    assert world.server.wait_for(lambda: bool(world.server.nacks))
    nack = world.server.nacks[-1]
    assert nack.type_url == LISTENER and "api_listener" in nack.error
    assert nack.version == "1"  # the NACK names the version still in force
    assert store.current.version == good
    assert tally(caller, 10) == {"backend-0": 10}
    status = store.xds.snapshot()["resources"]["lds"]
    assert status["nacks"] == 1 and "api_listener" in status["last_error"]
    # a valid listener again: ACKed, the error cleared
    world.server.set(LISTENER, [listener(TARGET, "rc-" + TARGET)])
    assert world.server.wait_for(lambda: world.server.acked(LISTENER))
    assert until(lambda: store.xds.snapshot()["resources"]["lds"]["last_error"] == "", 5)


def test_hosts_outside_the_patterns_are_untouched(world: XdsWorld,
                                                   mesh: Callable[..., Caller]) -> None:
    world.split({"c-0": 100})
    store = world.store()
    caller = mesh(store)
    direct = world.cluster[1]
    assert backend_of(caller.get(direct.url + "/")) == "backend-1"
    assert store.xds.snapshot()["listeners"] == []  # nothing was asked of the server
    assert not world.server.requests


def test_a_listener_the_server_does_not_have_passes_through(
        world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    world.split({"c-0": 100})
    store = world.store(hosts=("*.svc.cluster.local", "127.0.0.3"))
    caller = mesh(store)
    started = time.monotonic()
    assert backend_of(caller.get(world.cluster[1].url + "/")) == "backend-1"
    assert time.monotonic() - started < 4.0  # the server's answer, not the wait bound
    assert store.xds.snapshot()["absent"] == [world.cluster[1].address]
    assert backend_of(caller.get(world.cluster[1].url + "/")) == "backend-1"


def test_a_first_request_waits_at_most_the_bound_when_the_server_is_down(
        world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    world.server.stop()
    store = world.store(hosts=("*.svc.cluster.local", "127.0.0.3"), wait_s=0.5)
    caller = mesh(store)
    started = time.monotonic()
    assert backend_of(caller.get(world.cluster[1].url + "/")) == "backend-1"  # passed through
    waited = time.monotonic() - started
    assert 0.4 <= waited < 3.0, waited
    started = time.monotonic()
    assert backend_of(caller.get(world.cluster[1].url + "/")) == "backend-1"
    assert time.monotonic() - started < 0.4  # waited once, not on every request
