"""Live policy from real control endpoints: nginx (ETag polling), a long-poll server, etcd.

Requests go through both shells (`mesh` fixture) to real backends: `users` lives on
backend-0 in policy v1 and on backend-1 in v2, so the backend that answers shows which
policy version a request used.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from meshclient.policy import PolicyStore
from meshclient.testing import LoopbackCluster
from tests.servers.etcd import EtcdServer
from tests.servers.helpers import wait_until
from tests.servers.longpoll import LongPollServer
from tests.servers.nginx import TOKEN, NginxServer

INTERVAL = 0.2


def doc(cluster: LoopbackCluster, version: str, i: int, **users: object) -> str:
    return json.dumps({"version": version, "services": {
        "users": {"endpoints": [cluster[i].address], **users},
        "users-v2": {"endpoints": [cluster[1].address]}}})


@pytest.fixture
def store() -> PolicyStore:
    s = PolicyStore()
    yield s
    s.close()


def backend_of(caller) -> str:
    r = caller.get("http://users/")
    assert r.status_code == 200
    return str(r.json()["backend"])


@pytest.mark.slow
def test_nginx_edit_takes_effect_within_one_interval(mesh, cluster, nginx_server: NginxServer,
                                                     store: PolicyStore, caplog) -> None:
    caplog.set_level(logging.INFO, logger="meshclient.control")
    nginx_server.publish("mesh.json", doc(cluster, "v1", 0))
    refresher = store.watch(nginx_server.url("mesh.json"), interval_s=INTERVAL, wait=5)
    caller = mesh(store)
    assert store.current.version == "v1"
    assert backend_of(caller) == "backend-0"
    took = []
    for n, i in enumerate((1, 0, 1), start=2):  # best of three: a loaded machine may stall one
        nginx_server.publish("mesh.json", doc(cluster, f"v{n}", i))
        took.append(wait_until(lambda i=i: backend_of(caller) == f"backend-{i}"))
    assert min(took) < INTERVAL * 1.2 + 0.5, took  # one jittered interval, plus scheduling
    # counted just after the swap the last request saw
    wait_until(lambda: refresher.stats.applied == 4, what="four policies applied")
    swap = [r.getMessage() for r in caplog.records if "'v2' applied" in r.getMessage()]
    assert swap and "users(endpoints)" in swap[0] and "(was 'v1')" in swap[0]


def test_unchanged_polls_are_304s(cluster, nginx_server: NginxServer, store) -> None:
    nginx_server.publish("mesh.json", doc(cluster, "v1", 0))
    refresher = store.watch(nginx_server.url("mesh.json"), interval_s=0.05, wait=5)
    wait_until(lambda: refresher.stats.not_modified >= 5)
    lines = [line for line in nginx_server.access_log() if "/mesh.json" in line]
    assert lines[0].startswith("GET /mesh.json 200")
    assert all(" 304 " in line for line in lines[1:]), lines
    assert all(not line.endswith('""') for line in lines[1:])  # each sent If-None-Match
    assert refresher.stats.applied == 1 and refresher.stats.unchanged == 0


@pytest.mark.slow
def test_broken_edit_keeps_last_good_and_reports(mesh, cluster, nginx_server, store,
                                                 caplog) -> None:
    nginx_server.publish("mesh.json", doc(cluster, "v1", 0))
    refresher = store.watch(nginx_server.url("mesh.json"), interval_s=0.05, wait=5)
    caller = mesh(store)
    caplog.set_level(logging.ERROR, logger="meshclient.control")

    def logged() -> int:
        return sum("rejected" in r.getMessage() for r in caplog.records)

    # The refresher thread counts a rejection, records its errors, then logs it: the log
    # line is the last of the three, so the test waits for it before reading the others.
    nginx_server.publish("mesh.json", doc(cluster, "v2", 1, routes=[
        {"to": [{"service": "users", "weight": 1}, {"service": "users-v3", "weight": 1}]}]))
    wait_until(lambda: logged() == 1, what="the first rejection logged")
    assert refresher.stats.rejected == 1
    assert refresher.last_errors == (
        "services.users.routes[0].to[1].service names no service: 'users-v3'",)
    seen = refresher.stats.not_modified
    wait_until(lambda: refresher.stats.not_modified >= seen + 3)  # the file is not re-read
    assert store.current.version == "v1"
    assert backend_of(caller) == "backend-0"
    nginx_server.publish("mesh.json", "{not json")
    wait_until(lambda: logged() == 2, what="the second rejection logged")
    assert refresher.stats.rejected == 2
    assert "invalid JSON" in refresher.last_errors[0]
    seen = refresher.stats.not_modified
    wait_until(lambda: refresher.stats.not_modified >= seen + 3)
    assert (logged(), refresher.stats.rejected) == (2, 2)  # once per document, not per poll
    nginx_server.publish("mesh.json", doc(cluster, "v3", 1))
    wait_until(lambda: store.current.version == "v3")
    assert refresher.last_errors == ()


def test_nginx_stopped_requests_unaffected_and_backoff(mesh, cluster, nginx_server,
                                                       store) -> None:
    nginx_server.publish("mesh.json", doc(cluster, "v1", 0))
    refresher = store.watch(nginx_server.url("mesh.json"), interval_s=0.05, wait=5)
    caller = mesh(store)
    nginx_server.stop()
    wait_until(lambda: refresher.stats.errors >= 2)
    for _ in range(20):
        assert backend_of(caller) == "backend-0"
    assert refresher.schedule.failures >= 2
    nginx_server.start()
    nginx_server.publish("mesh.json", doc(cluster, "v2", 1))
    wait_until(lambda: store.current.version == "v2")
    assert refresher.schedule.failures == 0


def test_disk_cache_restores_after_restart_without_endpoint(mesh, cluster, nginx_server,
                                                            tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "policy.json"
    nginx_server.publish("mesh.json", doc(cluster, "v2", 1))
    first = PolicyStore()
    first.watch(nginx_server.url("mesh.json"), interval_s=INTERVAL, cache=str(cache), wait=5)
    assert first.current.version == "v2"
    first.close()
    assert json.loads(cache.read_text())["version"] == "v2"
    nginx_server.stop()
    restarted = PolicyStore()
    try:
        refresher = restarted.watch(nginx_server.url("mesh.json"), interval_s=INTERVAL,
                                    cache=str(cache))
        assert restarted.current.version == "v2"  # before any fetch
        assert backend_of(mesh(restarted)) == "backend-1"
        wait_until(lambda: refresher.stats.errors >= 1)
        assert restarted.current.version == "v2"
    finally:
        restarted.close()


def test_bearer_token(cluster, nginx_server, store) -> None:
    nginx_server.publish("secure/mesh.json", doc(cluster, "v1", 0))
    other = PolicyStore()
    try:
        denied = other.watch(nginx_server.url("secure/mesh.json"), interval_s=INTERVAL, wait=5)
        assert denied.stats.errors >= 1 and other.current.version == ""
    finally:
        other.close()
    store.watch(nginx_server.url("secure/mesh.json"), interval_s=INTERVAL, token=TOKEN,
                wait=5)
    assert store.current.version == "v1"


def test_oversized_body_refused(cluster, nginx_server, store) -> None:
    big = json.dumps({"version": "big", "services": {}, "_": "x" * (1 << 20)})
    nginx_server.publish("mesh.json", big)
    refresher = store.watch(nginx_server.url("mesh.json"), interval_s=INTERVAL, wait=5)
    assert refresher.stats.errors >= 1 and refresher.stats.applied == 0
    assert store.current.version == ""


@pytest.mark.slow
def test_long_poll_applies_changes_as_they_happen(mesh, cluster,
                                                  longpoll_server: LongPollServer,
                                                  store) -> None:
    longpoll_server.set(doc(cluster, "v1", 0))
    refresher = store.watch(longpoll_server.url, interval_s=30, long_poll_wait_s=0.5, wait=5)
    caller = mesh(store)
    assert backend_of(caller) == "backend-0"
    wait_until(lambda: refresher.schedule.long_polling and longpoll_server.parked == 1)
    before = longpoll_server.requests
    longpoll_server.set(doc(cluster, "v2", 1))
    took = wait_until(lambda: backend_of(caller) == "backend-1")
    assert took < 5.0, took  # the 30 s interval plays no part
    wait_until(lambda: refresher.stats.unchanged >= 1)  # a wait that expires unchanged
    assert refresher.stats.applied == 2  # is not parsed again
    assert longpoll_server.requests - before <= 5  # held, not spinning


@pytest.mark.slow
def test_etcd_put_takes_effect_under_a_second(mesh, cluster, etcd_server: EtcdServer,
                                              store, caplog) -> None:
    etcd = etcd_server.client()
    try:
        etcd.put("/mesh/policy", doc(cluster, "v1", 0).encode())
        refresher = store.watch(etcd_server.url("/mesh/policy"), wait=5)
        caller = mesh(store)
        assert backend_of(caller) == "backend-0"
        took = []
        for n, i in enumerate((1, 0, 1), start=2):  # best of three: a loaded machine may
            etcd.put("/mesh/policy", doc(cluster, f"v{n}", i).encode())  # stall one
            took.append(wait_until(lambda i=i: backend_of(caller) == f"backend-{i}"))
        assert min(took) < 1.0, took
        etcd.put("/mesh/policy", b'{"services": {"users": {"retry": {"attempts": 99}}}}')
        wait_until(lambda: refresher.stats.rejected == 1)
        caplog.set_level(logging.WARNING, logger="meshclient.control")
        etcd.delete("/mesh/policy")
        wait_until(lambda: any("was deleted" in r.getMessage() for r in caplog.records))
        assert store.current.version == "v4"
    finally:
        etcd.close()


def test_default_store_follows_control_url(monkeypatch, cluster, nginx_server,
                                           tmp_path: Path) -> None:
    import meshclient

    nginx_server.publish("mesh.json", doc(cluster, "v1", 0))
    monkeypatch.setenv("MESHCLIENT_CONTROL_URL", nginx_server.url("mesh.json"))
    monkeypatch.setenv("MESHCLIENT_CONTROL_INTERVAL", "100ms")
    monkeypatch.setenv("MESHCLIENT_POLICY_CACHE", str(tmp_path / "p.json"))
    store = meshclient.default_store()
    assert store.current.version == "v1"
    assert store.refresher is not None and store.watch(nginx_server.url("mesh.json")) is (
        store.refresher)
    with pytest.raises(meshclient.PolicyError, match="already watches"):
        store.watch(nginx_server.url("other.json"))
    nginx_server.publish("mesh.json", doc(cluster, "v2", 1))
    wait_until(lambda: store.current.version == "v2")
    assert (tmp_path / "p.json").exists()


def test_swap_keeps_endpoint_state_and_skips_equal_documents(mesh, cluster, store) -> None:
    from meshclient._runtime import registry_for
    from meshclient.policy.apply import Applier

    applier = Applier(store, "test")
    assert applier.apply(doc(cluster, "v1", 0).encode())
    caller = mesh(store)
    backend_of(caller)
    registry = registry_for(store)
    before = registry.runtime(store.current.resolved["users"]).balancer.states()
    assert applier.apply(doc(cluster, "v2", 0, fault={"delay": {"percent": 0,
                                                                "duration": "1s"}}).encode())
    backend_of(caller)
    after = registry.runtime(store.current.resolved["users"]).balancer.states()
    assert [id(s) for s in after] == [id(s) for s in before]  # same objects, same history
    generation = store.generation
    assert not applier.apply(doc(cluster, "v2", 0, fault={"delay": {"percent": 0,
                                                                    "duration": "1s"}}).encode())
    assert store.generation == generation and applier.stats.unchanged == 1


def test_tls_is_verified(cluster, nginx_tls_server) -> None:
    server, ca = nginx_tls_server
    server.publish("mesh.json", doc(cluster, "v1", 0))
    untrusted = PolicyStore()
    try:
        refresher = untrusted.watch(server.url("mesh.json"), interval_s=INTERVAL, wait=5)
        assert refresher.stats.errors >= 1 and untrusted.current.version == ""
    finally:
        untrusted.close()
    trusted = PolicyStore()
    try:
        trusted.watch(server.url("mesh.json"), interval_s=INTERVAL, verify=ca, wait=5)
        assert trusted.current.version == "v1"
    finally:
        trusted.close()
