"""The etcd JSON-gateway client against a real etcd."""

from __future__ import annotations

import threading

import pytest

from meshclient._etcd import EtcdError, WatchBatch, parse_etcd_url, prefix_end
from tests.servers.etcd import EtcdServer
from tests.servers.helpers import wait_until


def test_parse_url_and_prefix_end() -> None:
    assert parse_etcd_url("etcd://127.0.0.1:2379/mesh/policy") == ("http://127.0.0.1:2379",
                                                                   "/mesh/policy")
    assert prefix_end("/svc/") == "/svc0"
    with pytest.raises(ValueError, match="etcd://host:port"):
        parse_etcd_url("http://x/")


@pytest.mark.slow
def test_kv_lease_and_watch(etcd_server: EtcdServer) -> None:
    etcd = etcd_server.client()
    try:
        rev = etcd.put("/svc/a", b"1")
        assert etcd.get("/svc/a")[1].value == b"1"  # type: ignore[union-attr]
        lease = etcd.grant(5)
        etcd.put("/svc/b", b"2", lease=lease)
        _, kvs = etcd.get_prefix("/svc/")
        assert sorted(kv.key for kv in kvs) == ["/svc/a", "/svc/b"]
        assert etcd.keepalive(lease) > 0

        stop = threading.Event()
        seen: list[WatchBatch] = []

        def watch() -> None:
            for batch in etcd.watch("/svc/", prefix=True, start_revision=rev + 1,
                                    should_stop=stop.is_set, idle_s=0.3):
                seen.append(batch)

        t = threading.Thread(target=watch, daemon=True)
        t.start()
        etcd.revoke(lease)   # deletes /svc/b
        etcd.put("/svc/c", b"3")
        try:
            wait_until(lambda: any(kv.key == "/svc/c" for b in seen for kv in b.puts))
        finally:
            stop.set()
        t.join(3)
        assert not t.is_alive()
        assert any("/svc/b" in b.deletes for b in seen)
        assert any(kv.key == "/svc/c" for b in seen for kv in b.puts)
        assert etcd.keepalive(lease) == 0
    finally:
        etcd.close()


@pytest.mark.slow
def test_unreachable_is_etcd_error(etcd_server: EtcdServer) -> None:
    etcd = etcd_server.client()
    etcd_server.stop()
    with pytest.raises(EtcdError, match="failed"):
        etcd.get("/x")
    etcd_server.start()
    assert etcd.get("/x")[1] is None
    etcd.close()
