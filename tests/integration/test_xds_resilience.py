"""xDS endpoints and the stream's resilience: EDS changes, the server going away and coming
back, a cold start from the policy cache, through both shells."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytest.importorskip("grpc")
pytest.importorskip("envoy.service.discovery.v3.ads_pb2_grpc")

from meshclient._cli.status import render_xds
from meshclient.policy import PolicyStore
from meshclient.xds import attach, parse_bootstrap
from tests.servers.ads import CLUSTER, ENDPOINT
from tests.servers.caller import Caller
from tests.servers.helpers import until
from tests.servers.xds_resources import UNHEALTHY, assignment
from tests.servers.xds_world import URL, XdsWorld, backend_of, tally


@pytest.fixture
def world() -> Iterator[XdsWorld]:
    w = XdsWorld(3)
    try:
        yield w
    finally:
        w.close()


def _until_only(caller: Caller, expected: set[str], timeout_s: float = 5.0) -> bool:
    """Bounded: until 30 requests in a row reach only `expected` (all of it)."""
    return until(lambda: set(tally(caller, 30)) == expected, timeout_s, every_s=0.0)


def _serving(caller: Caller, world: XdsWorld) -> set[str]:
    """After one request (the runtime follows the policy on use): the endpoints `c-0`'s
    balancer holds, by backend index."""
    backend_of(caller.get(URL + "/"))
    held = {e["endpoint"] for e in caller.transport.registry.snapshot()["c-0"]["endpoints"]}
    return {f"backend-{i}" for i in range(len(world.cluster))
            if world.cluster[i].address in held}


def test_eds_endpoint_added_removed_and_marked_unhealthy(
        world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    world.split({"c-0": 100})
    caller = mesh(world.store())
    assert tally(caller, 10) == {"backend-0": 10}
    world.server.set(ENDPOINT, [assignment("c-0", world.endpoints(0, 1))])
    assert until(lambda: _serving(caller, world) == {"backend-0", "backend-1"}, 5)
    world.server.set(ENDPOINT, [assignment("c-0", world.endpoints(1))])
    assert _until_only(caller, {"backend-1"})
    world.server.set(ENDPOINT, [assignment("c-0", world.endpoints(1, health=UNHEALTHY)
                                           + world.endpoints(2))])
    assert _until_only(caller, {"backend-2"})
    assert world.server.wait_for(lambda: world.server.acked(ENDPOINT))


def test_server_killed_and_restarted_without_a_failed_request(
        world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    world.split({"c-0": 100, "c-1": 0})
    store = world.store()
    caller = mesh(store)
    assert tally(caller, 10) == {"backend-0": 10}
    world.server.stop()
    assert until(lambda: store.xds.connection == "disconnected", 5)
    assert tally(caller, 50) == {"backend-0": 50}  # the last good state serves
    opened = world.server.streams_opened
    world.server.start()  # the same port: the client reconnects and subscribes again
    assert world.server.wait_for(lambda: world.server.streams_opened > opened)
    world.split({"c-0": 0, "c-1": 100})
    assert _until_only(caller, {"backend-1"})
    assert store.xds.snapshot()["connection"] == "connected"
    assert store.xds.connects >= 2


def test_cold_start_from_the_policy_cache_while_the_server_is_down(
        world: XdsWorld, mesh: Callable[..., Caller], tmp_path: Path) -> None:
    cache = str(tmp_path / "policy.json")
    world.split({"c-0": 100})
    first = mesh(world.store(cache=cache))
    assert tally(first, 5) == {"backend-0": 5}
    world.server.stop()
    store = PolicyStore()  # a restarted process: nothing but the cache
    attach(store, parse_bootstrap(json.dumps(world.server.bootstrap())), cache=cache,
           wait_s=5.0, backoff_base_s=0.05, backoff_max_s=0.2)
    world.stores.append(store)
    caller = mesh(store)
    assert tally(caller, 10) == {"backend-0": 10}
    assert store.xds.connection != "connected"


def test_status_shows_server_connection_versions_and_nacks(world: XdsWorld,
                                                           mesh: Callable[..., Caller]) -> None:
    from envoy.config.cluster.v3 import cluster_pb2

    world.split({"c-0": 100})
    store = world.store()
    caller = mesh(store)
    assert backend_of(caller.get(URL + "/")) == "backend-0"
    world.server.set(CLUSTER, [cluster_pb2.Cluster(name="c-0", type=cluster_pb2.Cluster.EDS)])
    world.server.wait_for(lambda: bool(world.server.nacks) or world.server.acked(CLUSTER))
    snap = store.xds.snapshot()
    assert snap["server"] == world.server.address and snap["connection"] == "connected"
    text = "\n".join(render_xds(snap))
    assert world.server.address in text and "lds  version 1" in text
    if world.server.nacks:  # the resource module may accept an EDS cluster without config
        assert "last NACK" in text
    from meshclient.server import admin

    served = [r["xds"] for r in admin.status()["registries"] if "xds" in r]
    assert any(x["server"] == world.server.address for x in served)


def test_tls_channel_creds_with_the_bootstraps_ca_file(tmp_path: Path,
                                                       mesh: Callable[..., Caller]) -> None:
    pytest.importorskip("cryptography")
    from tests.servers.ads import AdsServer
    from tests.servers.certs import CA
    from tests.servers.xds_resources import serve_split
    from tests.servers.xds_world import TARGET

    ca = CA()
    server = AdsServer(tls=ca.issue("localhost", dns=("localhost",))).start()
    world = XdsWorld(1)
    try:
        serve_split(server, TARGET, {"c-0": 1}, {"c-0": world.endpoints(0)})
        (tmp_path / "ca.pem").write_bytes(ca.pem)
        doc = server.bootstrap()
        doc["xds_servers"][0]["server_uri"] = f"localhost:{server.port}"
        doc["xds_servers"][0]["channel_creds"] = [
            {"type": "tls", "config": {"ca_certificate_file": str(tmp_path / "ca.pem")}}]
        store = PolicyStore()
        attach(store, parse_bootstrap(json.dumps(doc)), wait_s=5.0)
        world.stores.append(store)
        assert tally(mesh(store), 3) == {"backend-0": 3}
        assert server.acks
    finally:
        world.close()
        server.stop()
