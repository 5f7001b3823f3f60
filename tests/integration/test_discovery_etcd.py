"""etcd discovery and registration against a real etcd, through both shells: endpoints
appear and disappear within a second of a put, a delete or a lease expiry; a registration
is seen by a second client; etcd down -> the client keeps serving; back -> the watch resumes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import meshclient
from meshclient import Policy
from meshclient.discovery import EndpointCache, RegistrationError, ScheduleConfig
from meshclient.discovery.etcd import EtcdResolver
from meshclient.testing import LoopbackCluster
from tests.servers.etcd import EtcdServer
from tests.servers.helpers import backends_of, until

pytestmark = pytest.mark.slow


@pytest.fixture
def etcd_server(etcd_module_server: EtcdServer) -> EtcdServer:
    """The module's one etcd, running and emptied before each test (tests/servers/etcd.py)."""
    return etcd_module_server.emptied()


FAST = ScheduleConfig(min_ttl_s=0.1, max_ttl_s=1, grace_s=0.5, backoff_base_s=0.05,
                      backoff_max_s=0.2)


def put(etcd: EtcdServer, key: str, address: str, lease: int = 0, **extra: Any) -> None:
    client = etcd.client()
    try:
        client.put(key, json.dumps({"address": address, **extra}).encode(), lease=lease)
    finally:
        client.close()


def policy(etcd: EtcdServer) -> Policy:
    return Policy.from_dict({"services": {"users": {
        "discovery": {"url": etcd.url("/mesh/users"), "grace": "500ms", "timeout": "500ms",
                      "min_ttl": "100ms", "max_ttl": "1s"},
        "timeout": {"total": "3s"}, "balancer": {"kind": "round-robin"}}}})


def test_endpoints_follow_puts_and_deletes_within_a_second(
        mesh, etcd_server: EtcdServer, cluster: LoopbackCluster) -> None:
    put(etcd_server, "/mesh/users/a", cluster[0].address, zone="z1")
    caller = mesh(policy(etcd_server))
    assert backends_of(caller, 3) == {"backend-0"}
    put(etcd_server, "/mesh/users/b", cluster[1].address)
    start = time.monotonic()
    assert until(lambda: backends_of(caller, 2) == {"backend-0", "backend-1"}, 1.0)
    client = etcd_server.client()
    client.delete("/mesh/users/a")
    client.close()
    assert until(lambda: backends_of(caller, 2) == {"backend-1"}, 1.0)
    assert time.monotonic() - start < 2.0
    state = caller.transport.registry.snapshot()["users"]["endpoints"]
    assert [s["endpoint"] for s in state] == [cluster[1].address]


def test_lease_expiry_removes_the_endpoint_within_a_second(etcd_server: EtcdServer,
                                                           cluster: LoopbackCluster) -> None:
    client = etcd_server.client()
    put(etcd_server, "/mesh/users/a", cluster[0].address)
    lease = client.grant(2)
    put(etcd_server, "/mesh/users/b", cluster[1].address, lease=lease)
    cache = EndpointCache("users", EtcdResolver(etcd_server.url("/mesh/users"),
                                                etcd_server.address, "/mesh/users/"), FAST)
    try:
        assert cache.wait(3)
        assert cache.resolution is not None and len(cache.resolution.endpoints) == 2
        assert until(lambda: client.get("/mesh/users/b")[1] is None, 10)  # etcd expired it
        expired = time.monotonic()
        assert until(lambda: [e.key for e in cache.resolution.endpoints]  # type: ignore[union-attr]
                     == [cluster[0].address], 1.0)
        assert time.monotonic() - expired < 1.0
    finally:
        cache.close()
        client.close()


def test_registration_is_seen_by_a_second_client_and_removed_on_exit(
        etcd_server: EtcdServer) -> None:
    resolver = EtcdResolver(etcd_server.url("/mesh/users"), etcd_server.address, "/mesh/users/")
    try:
        with meshclient.register("users", "127.0.0.9:8080", registry=etcd_server.url("/mesh"),
                                 ttl=2, zone="z1", metadata={"version": "2"}) as reg:
            (endpoint,) = resolver.resolve().endpoints
            assert (endpoint.key, endpoint.zone, dict(endpoint.metadata)) == (
                "127.0.0.9:8080", "z1", {"version": "2"})
            time.sleep(2.5)  # the scenario: longer than the lease; kept alive in the background
            assert [e.key for e in resolver.resolve().endpoints] == ["127.0.0.9:8080"]
            assert reg.renewals >= 2
        assert resolver.resolve().empty  # revoked on exit, at once
        plain = meshclient.register("users", "127.0.0.9:8081", registry=etcd_server.url("/mesh"))
        assert [e.key for e in resolver.resolve().endpoints] == ["127.0.0.9:8081"]
        plain.close()
        assert resolver.resolve().empty
    finally:
        resolver.close()


def test_registration_errors_are_clear(etcd_server: EtcdServer) -> None:
    with pytest.raises(ValueError, match="must be host:port"):
        meshclient.register("users", "nope", registry=etcd_server.url("/mesh"))
    with pytest.raises(ValueError, match="etcd://"):
        meshclient.register("users", "127.0.0.1:80", registry="dns://x:53")
    etcd_server.stop()
    with pytest.raises(RegistrationError, match="cannot register users"):
        meshclient.register("users", "127.0.0.1:80", registry=etcd_server.url("/mesh"))


def test_etcd_down_keeps_serving_and_the_watch_resumes(
        mesh, etcd_server: EtcdServer, cluster: LoopbackCluster) -> None:
    put(etcd_server, "/mesh/users/a", cluster[0].address)
    put(etcd_server, "/mesh/users/b", cluster[1].address)
    caller = mesh(policy(etcd_server))
    assert backends_of(caller, 4) == {"backend-0", "backend-1"}
    cache = caller.transport.registry.runtime(caller.store.current.resolved["users"]).feed.cache
    etcd_server.stop()
    end = time.monotonic() + 5
    failed = 0  # requests keep succeeding through failed watches and re-reads
    while time.monotonic() < end and failed < 2:
        assert caller.get("http://users/").status_code == 200
        failed = cache.failures
    assert failed >= 2 and cache.last_error is not None
    etcd_server.start()
    put(etcd_server, "/mesh/users/c", cluster[2].address)
    assert until(lambda: "backend-2" in backends_of(caller, 3), 5)
    client = etcd_server.client()
    client.delete("/mesh/users/a")
    client.close()
    assert until(lambda: backends_of(caller, 4) == {"backend-1", "backend-2"}, 2)  # watching


def test_bad_value_is_skipped_not_fatal(etcd_server: EtcdServer,
                                        caplog: pytest.LogCaptureFixture) -> None:
    client = etcd_server.client()
    client.put("/mesh/users/a", b"127.0.0.2:80")
    client.put("/mesh/users/b", b'{"address": "not an address"}')
    client.close()
    resolver = EtcdResolver(etcd_server.url("/mesh/users"), etcd_server.address, "/mesh/users/")
    try:
        assert [e.key for e in resolver.resolve().endpoints] == ["127.0.0.2:80"]
    finally:
        resolver.close()
    assert "etcd key /mesh/users/b" in caplog.text


def test_a_process_that_never_closes_exits_promptly_and_deregisters(
        etcd_server: EtcdServer, tmp_path: Path) -> None:
    endpoints = tmp_path / "users.json"
    endpoints.write_text('["127.0.0.2:9"]')
    script = f"""
import meshclient
policy = meshclient.Policy.from_dict({{"services": {{"users": {{
    "discovery": "file://{endpoints}", "health": {{"interval": "1s", "timeout": "100ms"}}}}}}}})
transport = meshclient.MeshTransport(policy)
transport.registry.runtime(policy.resolved["users"]).feed.cache.wait(5)
meshclient.register("users", "127.0.0.9:80", registry="{etcd_server.url('/mesh')}", ttl=60)
print("registered", flush=True)
"""  # no close() anywhere: exit must stop the threads and revoke the 60 s lease
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=30, cwd=Path(__file__).parents[2])
    assert done.stdout == "registered\n", done.stderr
    assert time.monotonic() - start < 10
    client = etcd_server.client()
    try:
        assert client.get_prefix("/mesh/")[1] == []
    finally:
        client.close()
