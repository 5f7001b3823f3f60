"""The request core's discovery hook: a cold service yields `WaitForEndpoints` once; a warm
one never does. Driven as a generator, with a real file source."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from meshclient._core.actions import Send, WaitForEndpoints
from meshclient._core.flow import request_flow
from meshclient._runtime import Registry
from meshclient.policy import Policy
from tests.servers.helpers import wait_until


@pytest.mark.slow
def test_cold_service_waits_once_then_never(tmp_path: Path) -> None:
    path = tmp_path / "users.json"
    policy = Policy.from_dict({"services": {"users": {
        "discovery": f"file://{path}", "timeout": {"total": "2s"}}}})
    registry = Registry()
    try:
        runtime = registry.runtime(policy.resolved["users"])
        flow = request_flow(httpx.Request("GET", "http://users/"), runtime)
        action = next(flow)
        assert isinstance(action, WaitForEndpoints) and action.timeout_s == 2.0
        assert not action.waiter.wait(0.05)  # the file does not exist yet
        path.write_text(json.dumps(["127.0.0.2:80"]))
        assert action.waiter.wait(2.0)
        send = flow.send(None)
        assert isinstance(send, Send) and send.endpoint.key == "127.0.0.2:80"
        flow.close()
        took = []
        for _ in range(3):  # the best of three: a loaded machine may stall one
            start = time.perf_counter()
            warm = next(request_flow(httpx.Request("GET", "http://users/"), runtime))
            took.append(time.perf_counter() - start)
            assert isinstance(warm, Send)
        assert min(took) < 0.05, took
    finally:
        registry.close()


def test_static_service_never_waits() -> None:
    policy = Policy.from_dict({"services": {"users": {"endpoints": ["127.0.0.2:80"]}}})
    registry = Registry()
    runtime = registry.runtime(policy.resolved["users"])
    assert runtime.discovery is None
    assert isinstance(next(request_flow(httpx.Request("GET", "http://users/"), runtime)), Send)
    registry.close()


@pytest.mark.slow
def test_changed_discovery_source_replaces_the_cache(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps(["127.0.0.2:80"]))

    def policy(path: Path) -> Policy:
        return Policy.from_dict({"services": {"users": {"discovery": f"file://{path}"}}})

    registry = Registry()
    try:
        runtime = registry.runtime(policy(first).resolved["users"])
        assert runtime.feed.cache is not None and runtime.feed.cache.wait(2)
        old_cache = runtime.feed.cache
        registry.runtime(policy(second).resolved["users"])  # b.json does not exist yet
        assert runtime.feed.cache is not old_cache
        assert runtime.discovery is None  # old endpoints serve: no request waits
        assert [s.endpoint.key for s in runtime.balancer.states()] == ["127.0.0.2:80"]
        second.write_text(json.dumps(["127.0.0.3:80"]))
        wait_until(lambda: [s.endpoint.key for s in runtime.balancer.states()]
                   == ["127.0.0.3:80"])
    finally:
        registry.close()
