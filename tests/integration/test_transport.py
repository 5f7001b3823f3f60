"""The drop-in transport against real loopback backends, through both shells."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

import meshclient
from meshclient.policy import Policy, PolicyStore
from meshclient.testing import LoopbackCluster


def test_round_robin_with_logical_host(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"}))
    seen = []
    for _ in range(6):
        r = caller.get("http://users/v1/users/42")
        assert r.status_code == 200
        body = r.json()
        assert body["headers"]["Host"] == "users"
        assert body["path"] == "/v1/users/42"
        seen.append(body["backend"])
    assert sorted(seen) == sorted(["backend-0", "backend-1", "backend-2"] * 2)


def test_unknown_host_passes_through(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"))
    r = caller.get(cluster[1].url + "/direct")
    assert r.json()["backend"] == "backend-1"
    assert r.json()["headers"]["Host"] == cluster[1].address


def test_no_endpoints_is_a_connect_error(mesh) -> None:
    caller = mesh(Policy.from_dict({"services": {"empty": {}}}))
    with pytest.raises(httpx.ConnectError) as info:
        caller.get("http://empty/")
    assert isinstance(info.value, meshclient.NoEndpointsAvailable)


def test_streaming_both_directions(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"))
    assert caller.stream_lines("GET", "http://users/stream?chunks=3") == [
        "chunk-0", "chunk-1", "chunk-2"]

    def chunks():
        yield b"a" * 1000
        yield b"b" * 24

    if caller.kind == "async":
        async def achunks():
            for c in chunks():
                yield c
        r = caller.request("POST", "http://users/upload", content=achunks())
    else:
        r = caller.request("POST", "http://users/upload", content=chunks())
    assert r.json()["body_bytes"] == 1024


class _CountingStore(PolicyStore):
    """A store that counts reads of the current snapshot."""

    reads = 0

    def __getattribute__(self, name: str) -> Any:
        if name == "current":
            self.reads += 1
        return super().__getattribute__(name)


def test_a_request_reads_the_policy_once(mesh, cluster: LoopbackCluster) -> None:
    store = _CountingStore(cluster.policy("users"))
    caller = mesh(store)
    caller.get("http://users/")  # warm-up: the first request builds the service's state
    before = store.reads
    for _ in range(3):
        assert caller.get("http://users/v1").status_code == 200
    assert store.reads - before == 3  # one snapshot per request, shared by guard and flow


def test_an_in_memory_response_ends_its_measurement_at_once(mesh) -> None:
    """An inner transport may return a response already read (httpx never closes it
    again): the endpoint's in-flight count must still come back to zero."""
    inner = httpx.MockTransport(lambda request: httpx.Response(200, content=b"x" * 1024))
    caller = mesh(Policy.from_dict({"services": {"users": {"endpoints": ["127.0.0.2:9"]}}}),
                  inner=inner)
    for _ in range(3):
        assert caller.get("http://users/").content == b"x" * 1024
    (endpoint,) = caller.transport.snapshot()["services"]["users"]["endpoints"]
    assert endpoint["in_flight"] == 0 and endpoint["requests"] == 3


def test_every_mesh_response_says_where_it_came_from(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        cluster.set(0, status=503)
        caller = mesh(cluster.policy("users", balancer={"kind": "round-robin"},
                                     retry={"backoff": {"base": "1ms", "max": "2ms"}}))
        first = caller.get("http://users/a")  # backend 0 answers 503, retried on backend 1
        assert first.status_code == 200
        info = first.extensions["meshclient"]
        assert info == ("users", cluster.addresses[1], 2)
        assert (info.service, info.endpoint, info.attempts) == ("users", cluster.addresses[1], 2)
        with pytest.raises(AttributeError):
            info.attempts = 3  # immutable
        cluster.set(0, status=200)
        served = {caller.get("http://users/a").extensions["meshclient"] for _ in range(2)}
        assert {i.attempts for i in served} == {1}
        assert {i.endpoint for i in served} == set(cluster.addresses)


def test_the_final_error_names_the_service_attempts_and_endpoints(mesh) -> None:
    with LoopbackCluster(2) as cluster:
        caller = mesh(cluster.policy("users", retry={"backoff": {"base": "1ms", "max": "2ms"}}))
        addresses = cluster.addresses
        cluster.stop()
        with pytest.raises(httpx.ConnectError) as info:
            caller.get("http://users/a")
        if not hasattr(info.value, "add_note"):  # pragma: no cover - Python 3.10: no notes
            return
        notes = info.value.__notes__
        assert len(notes) == 1
        assert "'users'" in notes[0] and "3 attempts" in notes[0]  # retry.attempts
        assert all(a in notes[0] for a in addresses)
