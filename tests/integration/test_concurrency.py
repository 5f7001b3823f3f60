"""Many threads (sync) / many tasks (async) through one transport; close() releases it all."""

from __future__ import annotations

import threading
from collections import Counter

import anyio
import httpx
import pytest

import meshclient
from meshclient.testing import LoopbackCluster
from tests.servers.helpers import run_threads, wait_until

WORKERS = 64
PER_WORKER = 5
#: Keep every connection alive: with fewer keep-alive slots than workers, httpcore's pool
#: can close a surplus idle connection it has just handed to a waiting thread
#: (encode/httpcore#1110: ReadError "Bad file descriptor" with bare httpx too).
LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=100)
RR = {"kind": "round-robin"}  # the counter checks below expect exact shares


def _check_counters(transport: meshclient.MeshTransport | meshclient.AsyncMeshTransport,
                    cluster: LoopbackCluster, total: int) -> None:
    endpoints = transport.snapshot()["services"]["users"]["endpoints"]
    assert sum(e["requests"] for e in endpoints) == total
    assert all(e["in_flight"] == 0 for e in endpoints), endpoints
    assert all(e["failures"] == 0 for e in endpoints), endpoints
    assert sum(cluster.hits()) == total
    # round robin: every backend got its share (exactly, since picks are counted atomically)
    assert max(cluster.hits()) - min(cluster.hits()) <= 1, cluster.hits()


def test_many_threads_one_transport(cluster: LoopbackCluster) -> None:
    transport = meshclient.MeshTransport(cluster.policy("users", balancer=RR), limits=LIMITS)
    backends: Counter[str] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()
    with httpx.Client(transport=transport) as client:
        def work() -> None:
            try:
                for _ in range(PER_WORKER):
                    r = client.get("http://users/bytes?size=512")
                    assert r.status_code == 200 and len(r.content) == 512
                    with lock:
                        backends[r.headers["X-Backend"]] += 1
            except BaseException as exc:  # reported below
                errors.append(exc)

        run_threads([work] * WORKERS, 60)
        assert not errors, errors[:3]
        assert sum(backends.values()) == WORKERS * PER_WORKER
        _check_counters(transport, cluster, WORKERS * PER_WORKER)


@pytest.mark.slow
def test_many_tasks_one_transport(cluster: LoopbackCluster) -> None:
    transport = meshclient.AsyncMeshTransport(cluster.policy("users", balancer=RR), limits=LIMITS)
    backends: Counter[str] = Counter()

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport) as client:
            async def work() -> None:
                for _ in range(PER_WORKER):
                    r = await client.get("http://users/bytes?size=512")
                    assert r.status_code == 200 and len(r.content) == 512
                    backends[r.headers["X-Backend"]] += 1

            with anyio.fail_after(60):
                async with anyio.create_task_group() as tg:
                    for _ in range(WORKERS):
                        tg.start_soon(work)
            _check_counters(transport, cluster, WORKERS * PER_WORKER)

    anyio.run(main)
    assert sum(backends.values()) == WORKERS * PER_WORKER


def _open_server_connections(cluster: LoopbackCluster) -> int:
    return sum(len(b._connections) for b in cluster.backends)


def test_close_releases_connections(cluster: LoopbackCluster) -> None:
    transport = meshclient.MeshTransport(cluster.policy("users", balancer=RR))
    client = httpx.Client(transport=transport)
    for _ in range(6):
        client.get("http://users/")
    with client.stream("GET", "http://users/stream?chunks=2") as r:
        r.read()
    assert _open_server_connections(cluster) >= 3  # keep-alive: one per backend at least
    client.close()
    assert not transport.inner._pool.connections  # type: ignore[attr-defined]
    wait_until(lambda: _open_server_connections(cluster) == 0)
    endpoints = transport.snapshot()["services"]["users"]["endpoints"]
    assert all(e["in_flight"] == 0 for e in endpoints)


def test_aclose_releases_connections(cluster: LoopbackCluster) -> None:
    transport = meshclient.AsyncMeshTransport(cluster.policy("users"))

    async def main() -> None:
        client = httpx.AsyncClient(transport=transport)
        for _ in range(6):
            await client.get("http://users/")
        async with client.stream("GET", "http://users/stream?chunks=2") as r:
            await r.aread()
        await client.aclose()

    anyio.run(main)
    assert not transport.inner._pool.connections  # type: ignore[attr-defined]
    wait_until(lambda: _open_server_connections(cluster) == 0)


def test_context_managers_close(cluster: LoopbackCluster) -> None:
    with meshclient.MeshTransport(cluster.policy("users")) as transport, \
            httpx.Client(transport=transport) as client:
        client.get("http://users/")
    wait_until(lambda: _open_server_connections(cluster) == 0)

    async def main() -> None:
        async with meshclient.AsyncMeshTransport(cluster.policy("users")) as t, \
                httpx.AsyncClient(transport=t) as client:
            await client.get("http://users/")

    anyio.run(main)
    wait_until(lambda: _open_server_connections(cluster) == 0)


def test_unread_stream_close_ends_the_attempt(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"))

    def read_headers_only(client):  # type: ignore[no-untyped-def]
        with client.stream("GET", "http://users/stream?chunks=3"):
            pass

    async def aread_headers_only(client):  # type: ignore[no-untyped-def]
        async with client.stream("GET", "http://users/stream?chunks=3"):
            pass

    caller.call(read_headers_only if caller.kind == "sync" else aread_headers_only)
    endpoints = caller.transport.snapshot()["services"]["users"]["endpoints"]
    assert sum(e["requests"] for e in endpoints) == 1
    assert all(e["in_flight"] == 0 for e in endpoints)


def test_meshclient_clients(cluster: LoopbackCluster) -> None:
    with meshclient.Client(policy=cluster.policy("users")) as client:
        assert client.get("http://users/").json()["headers"]["Host"] == "users"

    async def main() -> None:
        async with meshclient.AsyncClient(policy=cluster.policy("users")) as client:
            r = await client.get("http://users/")
            assert r.json()["headers"]["Host"] == "users"

    anyio.run(main)
