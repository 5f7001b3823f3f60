"""etcd discovery under bad values and an outage, against a real etcd through both shells:
a bad value is skipped, reported once and shown in the status without blocking later
updates; after etcd comes back a new endpoint is used within seconds (reconnect backoff
capped at 2 s, re-list on reconnect)."""

from __future__ import annotations

import json
import logging
import time

import pytest

from meshclient import Policy
from meshclient.testing import LoopbackCluster
from tests.servers.etcd import EtcdServer
from tests.servers.helpers import backends_of, until


@pytest.fixture
def etcd_server(etcd_module_server: EtcdServer) -> EtcdServer:
    """The module's one etcd, running and emptied before each test (tests/servers/etcd.py)."""
    return etcd_module_server.emptied()


#: Values that are not endpoints: nested too deep to decode, not UTF-8, junk, wrong shape.
BAD = {"/mesh/users/deep": b"[" * 100_000, "/mesh/users/binary": b"\xff\xfe\x00junk",
       "/mesh/users/junk": b"not json at all", "/mesh/users/shape": b'{"address": 5}'}


def put(etcd: EtcdServer, key: str, value: bytes) -> None:
    client = etcd.client()
    try:
        client.put(key, value)
    finally:
        client.close()


def address(cluster: LoopbackCluster, i: int) -> bytes:
    return json.dumps({"address": cluster[i].address}).encode()


def policy(etcd: EtcdServer, **discovery: str) -> Policy:
    return Policy.from_dict({"services": {"users": {
        "discovery": {"url": etcd.url("/mesh/users"), "timeout": "500ms", **discovery},
        "timeout": {"total": "3s"}, "balancer": {"kind": "round-robin"}}}})


@pytest.mark.slow
def test_bad_values_are_skipped_reported_once_and_never_block(
        mesh, etcd_server: EtcdServer, cluster: LoopbackCluster,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="meshclient.discovery")
    put(etcd_server, "/mesh/users/a", address(cluster, 0))
    put(etcd_server, "/mesh/users/deep", BAD["/mesh/users/deep"])  # there before the first read
    caller = mesh(policy(etcd_server))
    assert backends_of(caller, 3) == {"backend-0"}
    for key, value in BAD.items():  # and written while watched
        put(etcd_server, key, value)
    put(etcd_server, "/mesh/users/b", address(cluster, 1))
    assert until(lambda: backends_of(caller, 4) == {"backend-0", "backend-1"}, 3)
    status = caller.transport.snapshot()["services"]["users"]["discovery"]
    assert sorted(status["skipped"]) == sorted(BAD)
    assert status["skipped_total"] == len(BAD) + 1  # "deep" at two revisions
    assert all(len(reason) <= 120 for reason in status["skipped"].values())
    assert "nested too deeply" in status["skipped"]["/mesh/users/deep"]
    assert "not UTF-8" in status["skipped"]["/mesh/users/binary"]
    lines = [r.getMessage() for r in caplog.records if "ignoring etcd key" in r.getMessage()]
    assert len(lines) == len(BAD) + 1, lines  # once per key and revision
    put(etcd_server, "/mesh/users/junk", address(cluster, 2))  # fixed: used, no longer listed
    assert until(lambda: "backend-2" in backends_of(caller, 6), 3)
    status = caller.transport.snapshot()["services"]["users"]["discovery"]
    assert "/mesh/users/junk" not in status["skipped"]


@pytest.mark.slow
# The sync shell only: the watch, its failures and its reconnect backoff run on the discovery
# thread, the same for both shells, and the scenario waits seconds of real time; both shells
# reading discovered endpoints is covered in test_discovery_etcd.py.
@pytest.mark.parametrize("shell", ["sync"])
def test_a_new_endpoint_is_used_within_seconds_of_etcd_coming_back(
        mesh, etcd_server: EtcdServer, cluster: LoopbackCluster) -> None:
    put(etcd_server, "/mesh/users/a", address(cluster, 0))
    caller = mesh(policy(etcd_server))  # default TTLs: backoff capped for a watch, not 30 s
    assert backends_of(caller, 2) == {"backend-0"}
    cache = caller.transport.registry.runtime(caller.store.current.resolved["users"]).feed.cache
    etcd_server.stop()
    # six failed reconnects: uncapped, the next wait would be 8-16 s
    assert until(lambda: cache.failures >= 6 and backends_of(caller, 1) == {"backend-0"}, 15)
    etcd_server.start()
    back = time.monotonic()
    put(etcd_server, "/mesh/users/b", address(cluster, 1))
    assert until(lambda: "backend-1" in backends_of(caller, 4), 6)
    assert time.monotonic() - back < 4.0
