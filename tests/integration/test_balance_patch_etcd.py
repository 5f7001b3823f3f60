"""A real etcd's watch hands the balancer its unchanged endpoints as the same objects, so a
put or a delete among many keys is a patch of the balancer's generation, not a rebuild."""

from __future__ import annotations

import json
from typing import Any

import pytest

from meshclient.balance import LoadBalancer, balancer
from meshclient.discovery import EndpointCache, ScheduleConfig
from meshclient.discovery.etcd import EtcdResolver
from meshclient.policy import BalancerPolicy, OutlierPolicy
from meshclient.testing import FakeClock, SeededRng
from tests.servers.etcd import EtcdServer
from tests.servers.helpers import until

pytestmark = pytest.mark.slow

FAST = ScheduleConfig(min_ttl_s=0.1, max_ttl_s=1, grace_s=0.5, backoff_base_s=0.05,
                      backoff_max_s=0.2)


@pytest.fixture
def etcd_server(etcd_module_server: EtcdServer) -> EtcdServer:
    return etcd_module_server.emptied()


def test_a_put_and_a_delete_among_many_keys_are_patches(
        etcd_server: EtcdServer, monkeypatch: pytest.MonkeyPatch) -> None:
    rebuilds = []
    full = balancer.rebuild

    def counted(*args: Any) -> Any:
        rebuilds.append(len(args[1]))
        return full(*args)

    monkeypatch.setattr(balancer, "rebuild", counted)
    client = etcd_server.client()
    for i in range(0, 120, 2):
        client.put(f"/mesh/users/k{i:03d}", json.dumps({"address": f"127.0.1.{i}:80"}).encode())
    lb = LoadBalancer("users", BalancerPolicy(kind="p2c-ewma"), OutlierPolicy(),
                      clock=FakeClock(), rng=SeededRng(1))
    cache = EndpointCache("users", EtcdResolver(etcd_server.url("/mesh/users"),
                                                etcd_server.address, "/mesh/users/"), FAST)
    cache.subscribe(lambda resolution: lb.update(resolution.endpoints))
    try:
        assert cache.wait(5)
        assert until(lambda: len(lb.states()) == 60, 5)
        before = {s.key: (s, s.endpoint) for s in lb.states()}
        client.put("/mesh/users/k051", json.dumps({"address": "127.0.1.51:80"}).encode())
        assert until(lambda: len(lb.states()) == 61, 5)
        client.delete("/mesh/users/k010")
        assert until(lambda: len(lb.states()) == 60, 5)
        for state in lb.states():  # survivors: their state and their very Endpoint
            if state.key in before:
                assert before[state.key] == (state, state.endpoint)
        assert "127.0.1.51:80" in lb._gen.index and "127.0.1.10:80" not in lb._gen.index
        assert rebuilds == [60]  # only the first answer was built in full
    finally:
        cache.close()
        client.close()
