"""The control refresher under hostile input and hostile endpoints, against real servers:
documents that make the parser raise (nginx and etcd), endpoints that drip their headers or
body, an endless body, a bug inside an iteration. The refresher must stay alive, keep the
last good policy, report what it rejected briefly, apply the next good document, and stop
promptly on `close()`."""

from __future__ import annotations

import json
import logging
import time

import pytest

from meshclient.control import RefreshThread
from meshclient.control.http import HttpSource
from meshclient.control.refresh import FetchPlan
from meshclient.policy import PolicyStore
from tests.servers.drip import DripServer
from tests.servers.etcd import EtcdServer
from tests.servers.helpers import until
from tests.servers.nginx import NginxServer

#: Documents a parser may raise anything on (a validator bug, a recursion error).
HOSTILE = [b'{"authorization":{"rules":[{}]}}', b"[" * 100_000]


def good(version: str) -> str:
    return json.dumps({"version": version, "services": {"users": {
        "endpoints": ["127.0.0.2:8080"]}}})


@pytest.fixture
def store() -> PolicyStore:
    s = PolicyStore()
    yield s
    s.close()


def _check_rejected(refresher: RefreshThread, count: int) -> None:
    assert until(lambda: refresher.stats.rejected >= count, 5), refresher.stats
    assert refresher.alive
    (error,) = refresher.last_errors
    assert len(error) < 400 and "[[[[[[[[[[[[[[[[[[[[[[" not in error, error


def test_nginx_hostile_documents_are_rejected_and_a_good_one_applies(
        nginx_server: NginxServer, store: PolicyStore) -> None:
    nginx_server.publish("mesh.json", good("v1"))
    refresher = store.watch(nginx_server.url("mesh.json"), interval_s=0.05, wait=5)
    assert store.current.version == "v1"
    for i, document in enumerate(HOSTILE, 1):
        nginx_server.publish("mesh.json", document.decode())
        _check_rejected(refresher, i)
        assert store.current.version == "v1"
    nginx_server.publish("mesh.json", good("v2"))
    assert until(lambda: store.current.version == "v2", 5)
    assert refresher.last_errors == () and refresher.alive


@pytest.mark.slow
def test_etcd_hostile_documents_are_rejected_and_a_good_one_applies(
        etcd_server: EtcdServer, store: PolicyStore) -> None:
    etcd = etcd_server.client()
    try:
        etcd.put("/mesh/policy", good("v1").encode())
        refresher = store.watch(etcd_server.url("/mesh/policy"), wait=5)
        assert store.current.version == "v1"
        for i, document in enumerate(HOSTILE, 1):
            etcd.put("/mesh/policy", document)
            _check_rejected(refresher, i)
        etcd.put("/mesh/policy", good("v2").encode())
        assert until(lambda: store.current.version == "v2", 5)
        assert refresher.alive
    finally:
        etcd.close()


class _Buggy(HttpSource):
    """A real fetch followed, the first `n` times, by a bug of the refresher's own."""

    def __init__(self, url: str, n: int) -> None:
        super().__init__(url)
        self.left = n

    def fetch(self, plan: FetchPlan):  # type: ignore[no-untyped-def]
        fetched = super().fetch(plan)
        if self.left > 0:
            self.left -= 1
            raise RuntimeError("a bug in the refresher")
        return fetched


def test_a_bug_in_an_iteration_is_logged_once_counted_and_survived(
        nginx_server: NginxServer, store: PolicyStore, caplog: pytest.LogCaptureFixture
        ) -> None:
    caplog.set_level(logging.ERROR, logger="meshclient.control")
    nginx_server.publish("mesh.json", good("v1"))
    refresher = RefreshThread(store, nginx_server.url("mesh.json"), interval_s=0.05)
    refresher._source = _Buggy(refresher.url, 3)  # the fake port: a source that raises
    refresher.start()
    try:
        assert until(lambda: store.current.version == "v1", 10)
        assert refresher.stats.unexpected == 3 and refresher.alive
        lines = [r for r in caplog.records if "unexpected error" in r.getMessage()]
        assert len(lines) == 1  # once per distinct error, not per loop
    finally:
        refresher.close()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["headers", "body"])
def test_a_dripping_endpoint_is_cut_off_and_the_next_fetch_applies(mode: str,
                                                                   store: PolicyStore) -> None:
    with DripServer(good("v2"), mode, every_s=1.0) as server:
        refresher = store.watch(server.url, interval_s=0.1, timeout_s=1.0)
        started = time.monotonic()
        assert until(lambda: store.current.version == "v2", 6), refresher.stats
        assert refresher.stats.errors == 1  # the dripping answer, cut at its deadline
        assert time.monotonic() - started < 6


def test_an_endless_body_is_refused_past_the_limit(store: PolicyStore) -> None:
    with DripServer(good("v2"), "endless", max_bytes=1000) as server:
        refresher = store.watch(server.url, interval_s=0.1, timeout_s=30)
        assert until(lambda: store.current.version == "v2", 10), refresher.stats
        assert refresher.stats.errors == 1


def test_close_stops_a_refresher_stuck_on_a_dripping_endpoint(store: PolicyStore) -> None:
    with DripServer(good("v2"), "body", every_s=0.5, max_bytes=200) as server:
        refresher = store.watch(server.url, interval_s=0.1, timeout_s=60)
        assert until(lambda: server.requests == 1, 5)
        started = time.monotonic()
        refresher.close(timeout=3)
        assert not refresher.alive
        assert time.monotonic() - started < 3
        assert store.current.version == ""
