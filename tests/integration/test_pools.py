"""A connection pool per endpoint, through both shells, against real loopback backends:
connections land in the endpoint's own pool, an endpoint removed has its pool closed once
its in-flight request is done, `limits` hold per endpoint, and a proxy given to
`meshclient.Client` still carries the mesh's requests."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpcore
import httpx
import pytest

import meshclient
from meshclient.testing import LoopbackCluster

WAIT_S = 10.0


def _wait(cond: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)  # a bounded poll for a condition


def _origin(address: str) -> httpcore.Origin:
    host, port = address.rsplit(":", 1)
    return httpcore.Origin(b"http", host.encode(), int(port))


def test_each_endpoint_has_its_own_pool(mesh: Any, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"}))
    for _ in range(6):
        assert caller.get("http://users/").status_code == 200
    pools = caller.transport.pools
    assert sorted(pools.pools) == sorted(cluster.addresses)
    for key in pools.pools:
        (transport,) = pools.transports(key)  # one shard: one call at a time
        connections = transport._pool.connections
        assert len(connections) == 1  # sequential calls reuse one connection
        assert all(c.can_handle_request(_origin(key)) for c in connections)
    assert caller.transport.inner._pool.connections == []  # the shared pool: other hosts
    snap = caller.transport.snapshot()
    assert snap["pools"] == {key: {"connections": 1, "idle": 1, "waiting": 0}
                             for key in cluster.addresses}
    endpoints = snap["services"]["users"]["endpoints"]
    assert [e["connections"] for e in endpoints] == [1, 1, 1]


def test_pass_through_hosts_use_the_shared_pool(mesh: Any, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"))
    assert caller.get(cluster[1].url + "/direct").status_code == 200
    assert caller.transport.pools.pools == {}
    assert len(caller.transport.inner._pool.connections) == 1


def test_a_given_inner_does_all_the_io(mesh: Any, cluster: LoopbackCluster,
                                       shell: str) -> None:
    inner = httpx.HTTPTransport() if shell == "sync" else httpx.AsyncHTTPTransport()
    caller = mesh(cluster.policy("users"), inner=inner)
    assert caller.get("http://users/").status_code == 200
    assert caller.transport.pools is None and len(inner._pool.connections) == 1


def test_a_removed_endpoint_has_its_pool_closed_after_its_call(
        mesh: Any, cluster: LoopbackCluster) -> None:
    three = cluster.policy("users", balancer={"kind": "round-robin"})
    caller = mesh(three)
    for _ in range(3):
        caller.get("http://users/")
    pools = caller.transport.pools
    (gone,) = pools.transports(cluster[2].address)
    # a slow call in flight on the endpoint about to go
    answers: list[int] = []
    cluster.set(2, latency_ms=400)
    slow = threading.Thread(target=lambda: answers.append(_slow_call(caller)))
    slow.start()
    _wait(lambda: not all(c.is_idle() for c in gone._pool.connections), "the slow call")
    caller.store.replace(cluster.policy(
        "users", balancer={"kind": "round-robin"},
        endpoints=[{"address": a} for a in cluster.addresses[:2]]))
    assert caller.get("http://users/").status_code == 200  # retires the pool
    assert cluster[2].address not in pools.pools and gone in pools.retiring
    slow.join(WAIT_S)
    assert answers == [200]
    caller.get("http://users/")  # nothing in flight on it now: closed
    assert pools.retiring == [] and gone._pool.connections == []
    assert sorted(pools.pools) == sorted(cluster.addresses[:2])


def _slow_call(caller: Any) -> int:
    """Calls until one lands on backend 2 (round robin: within three), which is slow."""
    for _ in range(3):
        r = caller.get("http://users/")
        if r.json()["backend"] == "backend-2":
            return int(r.status_code)
    return 0


def test_limits_hold_per_endpoint(mesh: Any, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"}),
                  limits=httpx.Limits(max_connections=2, max_keepalive_connections=2))
    seen = {"max": 0}
    statuses: list[int] = []
    lock = threading.Lock()

    def call() -> None:
        r = caller.get("http://users/?delay_ms=100")
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=call) for _ in range(12)]
    for t in threads:
        t.start()
    while any(t.is_alive() for t in threads):
        for stats in caller.transport.pools.stats().values():
            seen["max"] = max(seen["max"], stats["connections"])
        time.sleep(0.005)  # samples while the calls run; the threads bound the loop
    for t in threads:
        t.join(WAIT_S)
    assert statuses == [200] * 12
    stats = caller.transport.pools.stats()
    assert len(stats) == 3 and seen["max"] <= 2
    assert all(s["connections"] <= 2 for s in stats.values())


class _ForwardProxy(BaseHTTPRequestHandler):
    """A forward HTTP proxy for absolute-form GETs, counting what it forwarded."""

    hits: list[str] = []

    def do_GET(self) -> None:
        type(self).hits.append(self.path)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "connection")}
        r = httpx.get(self.path, headers=headers)
        body = r.content
        self.send_response(r.status_code)
        self.send_header("content-type", r.headers.get("content-type", "text/plain"))
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def proxy() -> Iterator[str]:
    _ForwardProxy.hits = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ForwardProxy)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01},
                              daemon=True)  # notices shutdown() in 10 ms, not 0.5 s
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(WAIT_S)


def test_a_proxy_given_to_the_client_carries_mesh_requests(
        shell: str, cluster: LoopbackCluster, proxy: str) -> None:
    policy = cluster.policy("users", balancer={"kind": "round-robin"})
    if shell == "sync":
        with meshclient.Client(policy=policy, proxy=proxy) as client:
            backends = {client.get("http://users/x").json()["backend"] for _ in range(3)}
    else:
        import anyio

        async def run() -> set[str]:
            async with meshclient.AsyncClient(policy=policy, proxy=proxy) as client:
                return {(await client.get("http://users/x")).json()["backend"]
                        for _ in range(3)}

        backends = anyio.run(run)
    assert backends == {"backend-0", "backend-1", "backend-2"}
    assert sorted(_ForwardProxy.hits) == sorted(f"{b.url}/x" for b in cluster)


def test_status_shows_each_endpoints_pool(mesh: Any, cluster: LoopbackCluster) -> None:
    from meshclient._cli.status import render

    caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"}))
    for _ in range(3):
        caller.get("http://users/")
    services = caller.transport.registry.snapshot()
    text = render({"pid": 1, "registries": [{"policy": "v1", "generation": 1,
                                             "services": services}]})
    head, *rows = [line.split() for line in text.splitlines()[3:7]]
    assert "connections" in head and "waiting" in head
    col = head.index("connections")
    assert [row[col] for row in rows] == ["1", "1", "1"]


def _in_flight(caller: Any, key: str) -> int:
    return sum(len(t._pool._requests) for t in caller.transport.pools.transports(key))


def _concurrent_calls(caller: Any, count: int, delay_ms: int) -> list[threading.Thread]:
    statuses: list[int] = []

    def call() -> None:
        statuses.append(caller.get(f"http://users/?delay_ms={delay_ms}").status_code)

    threads = [threading.Thread(target=call) for _ in range(count)]
    for t in threads:
        t.start()
    threads[0].statuses = statuses  # type: ignore[attr-defined]
    return threads


def test_an_endpoints_pool_is_sharded_under_concurrency(
        mesh: Any, cluster: LoopbackCluster) -> None:
    """20 calls at once to one endpoint: no httpcore pool holds more than `SHARD`
    connections, none of the calls waits for a connection, and status sums the shards."""
    from meshclient.transport._pools import SHARD

    one = cluster.policy("users", endpoints=[{"address": cluster[0].address}])
    caller = mesh(one, limits=httpx.Limits(max_connections=24, max_keepalive_connections=24))
    key = cluster[0].address
    caller.get("http://users/")
    assert len(caller.transport.pools.transports(key)) == 1  # one call: one shard
    threads = _concurrent_calls(caller, 20, 3000)
    _wait(lambda: _in_flight(caller, key) == 20, "20 calls in flight")
    shards = caller.transport.pools.transports(key)
    held = [len(t._pool.connections) for t in shards]
    stats = caller.transport.pools.stats()[key]
    assert len(shards) == 3 and max(held) <= SHARD, held
    # every call has a connection (threads may rarely race for a shard's last slot, and
    # one of them waits for that shard's next free connection)
    assert sum(held) + stats["waiting"] == 20 and stats["waiting"] <= 2, (held, stats)
    assert caller.transport.snapshot()["pools"][key]["connections"] == sum(held)
    for t in threads:
        t.join(WAIT_S)
    assert threads[0].statuses == [200] * 20  # type: ignore[attr-defined]


def test_sharded_limits_still_add_up_to_the_endpoints(
        mesh: Any, cluster: LoopbackCluster) -> None:
    """`max_connections=12` over shards: 20 calls at once hold at most 12 connections to
    the endpoint, the rest wait, and every call is answered."""
    one = cluster.policy("users", endpoints=[{"address": cluster[0].address}])
    caller = mesh(one, limits=httpx.Limits(max_connections=12, max_keepalive_connections=12))
    key = cluster[0].address
    threads = _concurrent_calls(caller, 20, 3000)
    _wait(lambda: _in_flight(caller, key) == 20, "20 calls in flight or waiting")
    stats = caller.transport.pools.stats()[key]
    assert stats["connections"] == 12 and stats["waiting"] == 8
    assert len(caller.transport.pools.transports(key)) == 2
    for t in threads:
        t.join(WAIT_S)
    assert threads[0].statuses == [200] * 20  # type: ignore[attr-defined]
