"""A forked worker (gunicorn, uWSGI) of a process following an xDS server opens its own
stream on first use and follows pushes made after the fork. Real `os.fork()`; the child
reports over a pipe and always leaves with `os._exit` within a bounded time."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

pytest.importorskip("grpc")
pytest.importorskip("envoy.service.discovery.v3.ads_pb2_grpc")

import meshclient
from tests.integration.test_fork import CHILD_S, _collect, _fork
from tests.servers.xds_world import URL, XdsWorld, backend_of


@pytest.fixture
def world() -> Iterator[XdsWorld]:
    w = XdsWorld(2)
    try:
        yield w
    finally:
        w.close()


def _child(store: meshclient.PolicyStore, client: httpx.Client) -> dict[str, Any]:
    deadline = time.monotonic() + CHILD_S
    seen: dict[str, Any] = {}
    while time.monotonic() < deadline:
        seen = {"backend": backend_of(client.get(URL + "/")),
                "connection": store.xds.connection}
        if seen["backend"] == "backend-1":
            break
        time.sleep(0.05)  # polls until the push shows or the deadline; the parent asserts
    return seen


def test_a_forked_child_opens_its_own_stream_and_follows_pushes(world: XdsWorld) -> None:
    world.split({"c-0": 100, "c-1": 0})
    store = world.store()
    client = httpx.Client(transport=meshclient.MeshTransport(store))
    try:
        assert backend_of(client.get(URL + "/")) == "backend-0"
        opened = world.server.streams_opened
        forked = _fork(lambda: _child(store, client))
        assert world.server.wait_for(lambda: world.server.streams_opened > opened)
        world.split({"c-0": 0, "c-1": 100})
        seen = _collect(forked)
        assert seen == {"backend": "backend-1", "connection": "connected"}, seen
    finally:
        client.close()
