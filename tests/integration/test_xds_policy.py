"""The source-precedence rule (xDS for what it sets, the local policy for what xDS leaves
unset), a local policy replaced while xDS is on, and the events xDS reports."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("grpc")
pytest.importorskip("envoy.service.discovery.v3.ads_pb2_grpc")

from envoy.config.listener.v3 import listener_pb2

from meshclient import _events
from meshclient.policy import Policy
from meshclient.xds.merge import compose
from tests.servers.ads import LISTENER
from tests.servers.caller import Caller
from tests.servers.xds_world import HOST, XdsWorld, tally


def test_compose_takes_xds_for_what_it_sets_and_local_for_the_rest() -> None:
    local = Policy.from_dict({"version": "v7", "services": {
        "users": {"endpoints": ["127.0.0.9:1"], "breaker": {"failures": 2},
                  "retry": {"attempts": 4, "on": ["503"]}},
        "search": {"endpoints": ["127.0.0.9:2"]}}})
    policy, document = compose(local, {"services": {
        "users": {"endpoints": ["127.0.0.2:80"], "retry": {"attempts": 2}},
        "orders": {"endpoints": ["127.0.0.3:80"]}}}, "xds:lds=1")
    users = policy.resolved["users"]
    assert [e.address for e in users.endpoints] == ["127.0.0.2:80"]  # xDS sets: xDS wins
    assert users.retry.attempts == 2 and users.retry.on == ("503",)  # unset by xDS: local
    assert users.breaker.failures == 2
    assert set(policy.services) == {"users", "search", "orders"}
    assert policy.version == "v7+xds:lds=1" and document["version"] == policy.version


def test_local_sections_stay_on_an_xds_service_and_survive_a_local_replace(
        world: XdsWorld, mesh: Callable[..., Caller]) -> None:
    world.split({"c-0": 100})
    local = Policy.from_dict({"version": "local-1", "services": {
        "c-0": {"breaker": {"failures": 9}}}})
    store = world.store(local)
    caller = mesh(store)
    assert tally(caller, 5) == {"backend-0": 5}
    assert store.current.resolved["c-0"].breaker.failures == 9
    assert HOST in store.current.resolved
    # the local policy changes (a control endpoint, a test): xDS is composed over it again
    store.replace(Policy.from_dict({"version": "local-2", "services": {
        "c-0": {"breaker": {"failures": 3}}}}))
    current = store.current
    assert current.version.startswith("local-2+xds:")
    assert current.resolved["c-0"].breaker.failures == 3 and HOST in current.resolved
    assert tally(caller, 5) == {"backend-0": 5}


def test_updates_and_nacks_are_reported_as_events(world: XdsWorld,
                                                  mesh: Callable[..., Caller]) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = _events.subscribe(lambda kind, _service, attrs: seen.append((kind, attrs)))
    try:
        world.split({"c-0": 100})
        caller = mesh(world.store())
        assert tally(caller, 3) == {"backend-0": 3}
        world.server.set(LISTENER, [listener_pb2.Listener(name="users.default.svc."
                                                          "cluster.local:8080")])
        assert world.server.wait_for(lambda: bool(world.server.nacks))
        assert world.server.wait_for(lambda: any(k == _events.XDS_NACK for k, _ in seen))
    finally:
        unsubscribe()
    kinds = {k for k, _ in seen}
    assert {_events.XDS_UPDATE, _events.XDS_CONNECTION} <= kinds
    updates = {a["type"] for k, a in seen if k == _events.XDS_UPDATE}
    assert updates == {"lds", "rds", "cds", "eds"}
    nack = next(a for k, a in seen if k == _events.XDS_NACK)
    assert nack["type"] == "lds" and "api_listener" in nack["error"]
