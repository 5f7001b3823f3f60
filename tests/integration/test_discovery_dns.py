"""DNS discovery against a real dnsmasq, through both shells: A and SRV records, priorities
and weights, a change picked up within the TTL, DNS down (stale endpoints keep serving)
and back (updates resume), and a warm request that never waits on a slow lookup."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import meshclient
from meshclient import Policy
from meshclient.discovery.build import build_resolver
from meshclient.discovery.dns import DnsResolver, SrvResolver
from meshclient.testing import Backend
from tests.servers.dns import DnsServer
from tests.servers.helpers import until
from tests.servers.ports import free_port


@pytest.fixture
def backends() -> Iterator[list[Backend]]:
    """Three backends on 127.0.0.2-4 sharing one port (A records carry no port)."""
    for _ in range(10):
        port = free_port("127.0.0.2")
        started: list[Backend] = []
        try:
            for i in range(3):
                started.append(Backend(f"127.0.0.{2 + i}", port, name=f"backend-{i}").start())
        except OSError:
            for b in started:
                b.stop()
            continue
        try:
            yield started
        finally:
            for b in started:
                b.stop()
        return
    pytest.fail("no port free on 127.0.0.2-4")


def policy(dns: DnsServer, url: str, lookup_timeout: str = "250ms", **extra: Any) -> Policy:
    discovery = {"url": url, "min_ttl": "200ms", "max_ttl": "1s", "grace": "1s",
                 "timeout": lookup_timeout, "nameservers": [dns.address]}
    # round robin: the tests assert exact spreads (the default P2C is random)
    return Policy.from_dict({"services": {"users": {"discovery": discovery,
                                                     "balancer": {"kind": "round-robin"},
                                                     "timeout": {"total": "2s"}, **extra}}})


def hits(caller: Any, n: int) -> list[str]:
    return [caller.get("http://users/").json()["backend"] for _ in range(n)]


@pytest.mark.slow
def test_a_records_feed_the_balancer(mesh, dns_server: DnsServer, backends) -> None:
    dns_server.set(a={"users.mesh.test": ["127.0.0.2", "127.0.0.3"]})
    caller = mesh(policy(dns_server, f"dns://users.mesh.test:{backends[0].port}"))
    assert sorted(hits(caller, 4)) == ["backend-0", "backend-0", "backend-1", "backend-1"]
    snapshot = caller.transport.registry.snapshot()["users"]
    assert {s["endpoint"] for s in snapshot["endpoints"]} == {
        f"127.0.0.{i}:{backends[0].port}" for i in (2, 3)}
    assert snapshot["discovery"]["ready"] and snapshot["discovery"]["ttl_s"] == 1


def test_srv_records_ports_priorities_weights_and_additional_section(
        dns_server: DnsServer) -> None:
    dns_server.set(a={"a.mesh.test": ["127.0.0.2"], "b.mesh.test": ["127.0.0.3"],
                      "c.mesh.test": ["127.0.0.4"]},
                   srv={"_http._tcp.users.mesh.test": [("a.mesh.test", 8001, 1, 30),
                                                       ("b.mesh.test", 8002, 1, 10),
                                                       ("c.mesh.test", 8003, 2, 0)]})
    resolver = SrvResolver("dns+srv://_http._tcp.users.mesh.test", "_http._tcp.users.mesh.test",
                           nameservers=(("127.0.0.1", dns_server.port),))
    answer = resolver.resolve()
    got = {(e.key, e.weight, e.priority, e.metadata["target"]) for e in answer.endpoints}
    assert got == {("127.0.0.2:8001", 30, 1, "a.mesh.test"),
                   ("127.0.0.3:8002", 10, 1, "b.mesh.test"),
                   ("127.0.0.4:8003", 1, 2, "c.mesh.test")}  # weight 0 counts as 1
    assert answer.ttl_s == dns_server.ttl


def test_srv_target_without_additional_record_is_looked_up(dns_server: DnsServer) -> None:
    # dnsmasq only adds additional records for names it holds: an SRV target it does not
    # hold as an A record is looked up separately (and found missing: skipped).
    dns_server.set(a={"a.mesh.test": ["127.0.0.2"]},
                   srv={"_http._tcp.users.mesh.test": [("a.mesh.test", 8001, 1, 1),
                                                       ("gone.mesh.test", 8002, 1, 1)]})
    resolver = SrvResolver("dns+srv://_http._tcp.users.mesh.test", "_http._tcp.users.mesh.test",
                           nameservers=(("127.0.0.1", dns_server.port),))
    assert [e.key for e in resolver.resolve().endpoints] == ["127.0.0.2:8001"]


def test_relative_name_goes_through_the_search_domains(dns_server: DnsServer,
                                                       tmp_path: Path) -> None:
    dns_server.set(a={"users.mesh.test": ["127.0.0.2"]})
    resolv_conf = tmp_path / "resolv.conf"
    resolv_conf.write_text("nameserver 127.0.0.1\nsearch other.mesh.test mesh.test\n")
    resolver = DnsResolver("dns://users:80", "users", 80, resolv_conf=str(resolv_conf),
                           nameservers=(("127.0.0.1", dns_server.port),))
    assert [e.key for e in resolver.resolve().endpoints] == ["127.0.0.2:80"]


def test_env_nameservers_are_used_when_the_policy_names_none(
        dns_server: DnsServer, monkeypatch: pytest.MonkeyPatch) -> None:
    dns_server.set(a={"users.mesh.test": ["127.0.0.3"]})
    monkeypatch.setenv("MESHCLIENT_DNS_NAMESERVERS", dns_server.address)
    p = Policy.from_dict({"services": {"users": {"discovery": "dns://users.mesh.test.:80"}}})
    resolver = build_resolver(p.resolved["users"].discovery)
    assert [e.key for e in resolver.resolve().endpoints] == ["127.0.0.3:80"]


def test_missing_name_is_an_empty_answer_not_an_error(dns_server: DnsServer) -> None:
    resolver = DnsResolver("dns://nope.mesh.test.:80", "nope.mesh.test.", 80,
                           nameservers=(("127.0.0.1", dns_server.port),))
    answer = resolver.resolve()
    assert answer.empty and not answer.exists


@pytest.mark.slow
def test_srv_priority_group_falls_over_on_failed_health_checks(mesh, dns_server: DnsServer,
                                                                backends) -> None:
    port = backends[0].port
    dns_server.set(a={"a.mesh.test": ["127.0.0.2"], "b.mesh.test": ["127.0.0.3"]},
                   srv={"_http._tcp.users.mesh.test": [("a.mesh.test", port, 1, 1),
                                                       ("b.mesh.test", port, 2, 1)]})
    caller = mesh(policy(dns_server, "dns+srv://_http._tcp.users.mesh.test",
                         health={"path": "/healthz", "interval": "100ms",
                                 "timeout": "100ms", "unhealthy_after": 1}))
    assert set(hits(caller, 3)) == {"backend-0"}  # priority 1 only
    backends[0].set(status=503)
    assert until(lambda: caller.transport.registry.snapshot()["users"]["priority"] == 2, 3,
                 every_s=0.05)
    assert set(hits(caller, 3)) == {"backend-1"}  # priority 2 while 1 is unhealthy
    backends[0].heal()  # (healed only now: a 100 ms health check could pass before the hits)
    # back once it passes
    assert until(lambda: set(hits(caller, 2)) == {"backend-0"}, 3, every_s=0.05)


@pytest.mark.slow
def test_record_change_is_picked_up_within_the_ttl(mesh, dns_server: DnsServer,
                                                   backends) -> None:
    dns_server.set(a={"users.mesh.test": ["127.0.0.2"]})
    caller = mesh(policy(dns_server, f"dns://users.mesh.test:{backends[0].port}"))
    assert set(hits(caller, 2)) == {"backend-0"}
    dns_server.set(a={"users.mesh.test": ["127.0.0.4"]})
    changed = time.monotonic()
    assert until(lambda: set(hits(caller, 2)) == {"backend-2"}, 3, every_s=0.05)
    # TTL 1 s (max_ttl 1 s): refreshed at 80% of it, plus one lookup and a restart of dnsmasq
    assert time.monotonic() - changed < 1.5
    assert backends[0].hits >= 2


@pytest.mark.slow
def test_dns_down_keeps_serving_last_endpoints_then_updates_resume(
        mesh, dns_server: DnsServer, backends) -> None:
    dns_server.set(a={"users.mesh.test": ["127.0.0.2", "127.0.0.3"]})
    caller = mesh(policy(dns_server, f"dns://users.mesh.test:{backends[0].port}"))
    assert set(hits(caller, 4)) == {"backend-0", "backend-1"}
    cache = caller.transport.registry.runtime(caller.store.current.resolved["users"]).feed.cache
    dns_server.stop()
    end = time.monotonic() + 5
    failed = 0  # requests keep succeeding through failed lookups (one refresh, one retry)
    while time.monotonic() < end and failed < 2:
        assert caller.get("http://users/").status_code == 200
        failed = cache.failures
    assert failed >= 2 and cache.last_error is not None
    dns_server.a = {"users.mesh.test": ["127.0.0.4"]}
    dns_server.start()
    assert until(lambda: set(hits(caller, 2)) == {"backend-2"}, 5, every_s=0.05)
    assert cache.last_error is None


@pytest.mark.slow
def test_warm_request_never_waits_on_a_hung_lookup(mesh, dns_server: DnsServer,
                                                    backends) -> None:
    dns_server.set(a={"users.mesh.test": ["127.0.0.2"]})
    p = Policy.from_dict({"services": {"users": {
        "discovery": {"url": f"dns://users.mesh.test:{backends[0].port}", "min_ttl": "200ms",
                      "max_ttl": "1s", "grace": "5s", "timeout": "3s",
                      "nameservers": [dns_server.address]},
        "timeout": {"total": "5s"}}}})
    caller = mesh(p)
    hits(caller, 3)  # warm
    dns_server.pause()  # port bound, no answers: each lookup hangs for its 3 s timeout
    try:
        latencies: list[float] = []
        end = time.monotonic() + 1.2
        while time.monotonic() < end or len(latencies) < 5:
            latencies.append(_timed(caller))
    finally:
        dns_server.resume()
    # A lookup started in this 1.2 s window hangs until 3 s after it began, so a request
    # that waited on one would take 1.8 s or more; one that did not waits on nothing (the
    # bound leaves room for a loaded machine).
    assert max(latencies) < 1.0, latencies


def _timed(caller: Any) -> float:
    start = time.perf_counter()
    assert caller.get("http://users/").status_code == 200
    return time.perf_counter() - start


@pytest.mark.slow
def test_first_request_waits_bounded_by_its_deadline(mesh, dns_server: DnsServer) -> None:
    dns_server.pause()
    try:
        p = Policy.from_dict({"services": {"users": {
            "discovery": {"url": "dns://users.mesh.test:80", "timeout": "400ms",
                          "nameservers": [dns_server.address]},
            "timeout": {"total": "300ms"}}}})
        caller = mesh(p)
        start = time.monotonic()
        with pytest.raises(httpx.ConnectError) as info:
            caller.get("http://users/")
        elapsed = time.monotonic() - start
    finally:
        dns_server.resume()
    assert isinstance(info.value, meshclient.NoEndpointsAvailable)
    assert "has not answered" in str(info.value)
    assert 0.25 <= elapsed < 1.5
