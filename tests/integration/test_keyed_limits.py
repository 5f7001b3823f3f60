"""`limits.key`: per-tenant (per-key) rate limits on real loopback backends through both
shells, and a per-tenant quota shared through a real redis-server by two processes,
measured within 10% of the configured total."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

import meshclient
from meshclient.policy import Policy
from meshclient.security.limitkey import Identity, identity
from meshclient.testing import Backend
from tests.servers.helpers import run_workers
from tests.servers.redis_server import RedisServer

ALONE = {"retry": {"attempts": 1}, "breaker": {"failures": 10000},
         "outlier": {"consecutive_failures": 0}}


def policy(address: str, **limits: Any) -> Policy:
    return Policy.from_dict({"services": {"svc": {"endpoints": [address], "limits": limits,
                                                  **ALONE}}})


def statuses(caller: Any, n: int, **kwargs: Any) -> list[Any]:
    out: list[Any] = []
    for _ in range(n):
        try:
            out.append(caller.get("http://svc/", **kwargs).status_code)
        except meshclient.RateLimited:
            out.append("limited")
    return out


def test_each_tenant_has_its_own_bucket(mesh) -> None:
    with Backend() as backend:
        caller = mesh(policy(backend.address, rate=0.01, burst=2, key="header:x-tenant",
                             adaptive_k=0))
        assert statuses(caller, 3, headers={"x-tenant": "acme"}) == [200, 200, "limited"]
        assert statuses(caller, 3, headers={"x-tenant": "globex"}) == [200, 200, "limited"]
        assert statuses(caller, 1, headers={"X-Tenant": "acme"}) == ["limited"]
        # no tenant: the keyed rate does not apply (Envoy skips a descriptor it cannot build)
        assert statuses(caller, 4) == [200] * 4
        assert backend.hits == 8


def test_route_key_buckets_by_path_for_a_service(mesh) -> None:
    with Backend() as backend:
        caller = mesh(policy(backend.address, rate=0.01, burst=1, key="route", adaptive_k=0))
        assert caller.get("http://svc/a").status_code == 200
        assert caller.get("http://svc/b").status_code == 200
        with pytest.raises(meshclient.RateLimited):
            caller.get("http://svc/a")


def test_principal_and_claim_keys_come_from_the_request_being_served(mesh) -> None:
    with Backend() as backend:
        caller = mesh(policy(backend.address, rate=0.01, burst=1, key="claim:org.id",
                             adaptive_k=0))
        token = identity.set(Identity("spiffe://t/a", {"org": {"id": "acme"}}))
        try:
            assert caller.get("http://svc/").status_code == 200
            with pytest.raises(meshclient.RateLimited):
                caller.get("http://svc/")
        finally:
            identity.reset(token)
        token = identity.set(Identity("spiffe://t/b", {"org": {"id": "globex"}}))
        try:
            assert caller.get("http://svc/").status_code == 200
        finally:
            identity.reset(token)


_WORKER = textwrap.dedent("""
    import sys, threading, time, httpx, meshclient
    from meshclient.policy import Policy
    address, url, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    policy = Policy.from_dict({"services": {"svc": {"endpoints": [address], "limits": {
        "rate": 10, "burst": 1, "max_wait": "1s", "redis": url, "adaptive_k": 0,
        "key": "header:x-tenant"}}}})
    ok = {"acme": 0, "globex": 0}
    with httpx.Client(transport=meshclient.MeshTransport(policy)) as client:
        started = time.time()
        end = time.monotonic() + seconds
        def loop(tenant):
            while time.monotonic() < end:
                try:
                    client.get("http://svc/", headers={"x-tenant": tenant}).raise_for_status()
                    ok[tenant] += 1
                except meshclient.RateLimited:
                    pass
        threads = [threading.Thread(target=loop, args=(t,)) for t in ok]
        for t in threads: t.start()
        for t in threads: t.join(60)
        print(ok["acme"], ok["globex"], started, time.time())
""")


@pytest.mark.slow
def test_two_processes_share_a_per_tenant_redis_quota() -> None:
    seconds = 3.0
    with RedisServer() as redis_server, Backend() as backend:
        rows = run_workers(_WORKER, backend.address, redis_server.url, str(seconds))
    span = max(float(row[3]) for row in rows) - min(float(row[2]) for row in rows)
    expected = 10 * span + 1  # one 10/s quota per tenant over the span, plus the burst
    for column, tenant in enumerate(("acme", "globex")):
        total = sum(int(row[column]) for row in rows)
        # two separate quotas (one per process) would allow about twice as much
        assert abs(total - expected) <= 0.1 * expected, (tenant, total, expected, rows)
        assert min(int(row[column]) for row in rows) > 0
