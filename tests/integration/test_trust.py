"""The trust model against real servers: a policy served by a real control endpoint (nginx)
may not downgrade the app's https requests, read secrets off the local allowlist, or choose
who a server must prove to be; the local policy may."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshclient.policy import Policy, PolicyStore
from meshclient.policy.trust import SchemeDowngrade
from meshclient.testing import Backend
from tests.servers.helpers import wait_until
from tests.servers.nginx import NginxServer

INTERVAL = 0.2


@pytest.fixture
def attacker() -> Iterator[Backend]:
    with Backend(host="127.0.0.3") as backend:
        yield backend


def follow(store: PolicyStore, nginx: NginxServer, document: dict[str, Any]) -> Any:
    """Serve `document` and wait until the store's refresher has judged it."""
    nginx.publish("mesh.json", json.dumps(document))
    refresher = store.watch(nginx.url("mesh.json"), interval_s=INTERVAL, wait=5)
    wait_until(lambda: refresher.stats.applied + refresher.stats.rejected >= 1)
    return refresher


def test_remote_policy_cannot_turn_https_into_plain_http(mesh, nginx_server, attacker) -> None:
    with Backend(host="127.0.0.2") as local_backend:
        store = PolicyStore(Policy.from_dict({"services": {
            "plain": {"endpoints": [local_backend.address]}}}))  # declared http locally
        caller = mesh(store)
        follow(store, nginx_server, {"version": "evil", "services": {
            "api.example.test": {"endpoints": [attacker.address]},
            "plain": {"endpoints": [local_backend.address]}}})
        assert store.current.version == "evil"  # the policy itself is fine
        with pytest.raises(SchemeDowngrade, match=r"api\.example\.test") as info:
            caller.get("https://api.example.test/v1",
                       headers={"Authorization": "Bearer app-own-secret"})
        assert isinstance(info.value, httpx.TransportError)
        assert attacker.hits == 0  # nothing, least of all the Authorization header, left
        assert caller.get("http://api.example.test/").status_code == 200  # the app chose http
        assert caller.get("https://plain/").status_code == 200  # declared plaintext locally
        assert local_backend.hits == 1 and attacker.hits == 1


def test_remote_policy_cannot_flip_a_local_https_service(nginx_server, caplog) -> None:
    store = PolicyStore(Policy.from_dict({"services": {
        "secure": {"endpoints": ["127.0.0.2:8443"], "scheme": "https"}}}))
    try:
        refresher = follow(store, nginx_server, {"version": "evil", "services": {
            "secure": {"endpoints": ["127.0.0.3:80"], "scheme": "http"}}})
        assert refresher.stats.rejected == 1
        assert any(e.startswith("services.secure.scheme:") for e in refresher.last_errors)
        assert store.current.version == ""  # the local policy stays
    finally:
        store.close()


@pytest.mark.parametrize(("auth", "field"), [
    ({"bearer": {"token_env": "AWS_SECRET_ACCESS_KEY"}}, "auth.bearer.token_env"),
    ({"bearer": {"token_env": "MESHCLIENT_CONTROL_TOKEN"}}, "auth.bearer.token_env"),
    ({"bearer": {"token_file": "/etc/hostname"}}, "auth.bearer.token_file"),
    ({"oauth2": {"token_url": "http://127.0.0.3:1/t", "client_id": "c",
                 "client_secret_file": "/run/secrets/../../etc/hostname"}},
     "auth.oauth2.client_secret_file"),
])
def test_remote_policy_reads_only_allowed_secrets(nginx_server, monkeypatch, auth: dict[str, Any],
                                                  field: str) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-key")
    monkeypatch.setenv("MESHCLIENT_SECRET_ENV", "MESHCLIENT_*")  # still not the mesh's own
    store = PolicyStore()
    try:
        refresher = follow(store, nginx_server, {"services": {
            "x": {"endpoints": ["127.0.0.3:80"], "auth": auth}}})
        assert refresher.stats.rejected == 1 and refresher.stats.applied == 0
        assert any(e.startswith(f"services.x.{field}:") for e in refresher.last_errors)
    finally:
        store.close()


@pytest.mark.slow
def test_allowed_secrets_reach_their_service(mesh, nginx_server, monkeypatch, tmp_path: Path,
                                             attacker) -> None:
    monkeypatch.setenv("MESHCLIENT_SECRET_BILLING", "billing-token")
    monkeypatch.setenv("LOCAL_TOKEN", "local-token")
    monkeypatch.setenv("MESHCLIENT_SECRET_PATHS", str(tmp_path / "secrets"))
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "token").write_text("file-token\n")
    os.symlink("/etc/hostname", tmp_path / "secrets" / "escape")
    local = {"a": {"endpoints": [attacker.address],
                   "auth": {"bearer": {"token_env": "LOCAL_TOKEN"}}}}
    store = PolicyStore(Policy.from_dict({"services": local}))
    caller = mesh(store)
    refresher = follow(store, nginx_server, {"version": "v2", "services": {
        **local,  # a secret the local policy names may be named again
        "b": {"endpoints": [attacker.address],
              "auth": {"bearer": {"token_env": "MESHCLIENT_SECRET_BILLING"}}},
        "c": {"endpoints": [attacker.address],
              "auth": {"bearer": {"token_file": str(tmp_path / "secrets" / "token")}}}}})
    assert store.current.version == "v2", refresher.last_errors
    sent = {name: caller.get(f"http://{name}/").json()["headers"].get("authorization")
            for name in "abc"}
    assert sent == {"a": "Bearer local-token", "b": "Bearer billing-token",
                    "c": "Bearer file-token"}
    nginx_server.publish("mesh.json", json.dumps({"version": "v3", "services": {
        "d": {"endpoints": [attacker.address],
              "auth": {"bearer": {"token_file": str(tmp_path / "secrets" / "escape")}}}}}))
    wait_until(lambda: refresher.stats.rejected >= 1)
    assert "services.d.auth.bearer.token_file" in refresher.last_errors[0]  # symlink out
    assert store.current.version == "v2"


def test_remote_policy_cannot_choose_the_server_identity(nginx_server) -> None:
    store = PolicyStore(Policy.from_dict({"services": {"pay": {
        "endpoints": ["127.0.0.2:443"], "scheme": "https",
        "tls": {"server_name": "pay.internal"}}}}))
    try:
        refresher = follow(store, nginx_server, {"services": {
            "pay": {"endpoints": ["127.0.0.2:443"], "scheme": "https",
                    "tls": {"server_name": "pay.internal"}},  # the same: fine
            "api.example.test": {"endpoints": ["127.0.0.3:443"], "scheme": "https",
                                 "tls": {"server_name": "attacker.example"}}}})
        assert refresher.last_errors == (
            "services.api.example.test.tls.server_name: a remote policy may not choose who "
            "'api.example.test' must prove to be unless the local policy does the same: "
            "'attacker.example'",)
    finally:
        store.close()


def test_remote_split_keeps_the_requested_tls_name(nginx_server) -> None:
    from meshclient._core.address import address_request
    from meshclient.discovery.endpoint import Endpoint

    store = PolicyStore(Policy.from_dict({"services": {
        "users": {"endpoints": ["127.0.0.2:443"], "scheme": "https"},
        "users-canary": {"endpoints": ["127.0.0.2:444"], "scheme": "https"}}}))
    try:
        follow(store, nginx_server, {"version": "v2", "services": {
            "users": {"endpoints": ["127.0.0.2:443"], "scheme": "https"},
            "users-canary": {"endpoints": ["127.0.0.2:444"], "scheme": "https"},
            "evil.example": {"endpoints": ["127.0.0.3:443"], "scheme": "https"}}})
        assert store.current.version == "v2"
        request = httpx.Request("GET", "https://api.example.test/")
        services = store.current.resolved
        sent = address_request(request, services["evil.example"], Endpoint("127.0.0.3", 443))
        assert sent.extensions["sni_hostname"] == "api.example.test"  # not the remote's name
        canary = address_request(httpx.Request("GET", "https://users/"),
                                 services["users-canary"], Endpoint("127.0.0.2", 444))
        assert canary.extensions["sni_hostname"] == "users-canary"  # declared locally
    finally:
        store.close()


def test_plaintext_control_url_with_a_token_is_warned_once(nginx_server, monkeypatch,
                                                           caplog) -> None:
    caplog.set_level(logging.WARNING, logger="meshclient.security")
    nginx_server.publish("mesh.json", json.dumps({"services": {}}))
    url = nginx_server.url("mesh.json")
    assert url.startswith("http://")
    monkeypatch.setenv("MESHCLIENT_CONTROL_URL", url)
    monkeypatch.setenv("MESHCLIENT_CONTROL_TOKEN", "ctl-token")
    stores = [PolicyStore(), PolicyStore()]
    try:
        for store in stores:
            store.watch(url, interval_s=INTERVAL, token="ctl-token")
        warned = [r for r in caplog.records if "over plain http" in r.getMessage()]
        assert len(warned) == 1 and url in warned[0].getMessage()
        assert "ctl-token" not in caplog.text
    finally:
        for store in stores:
            store.close()


@pytest.mark.slow
@pytest.mark.parametrize("content", [
    '{"aws_secret_access_key": "SECRETVALUE123"}',  # a JSON object without endpoints
    '["SECRETVALUE123"]',                            # not host:port
    '[{"SECRETVALUE123": 1}]',                       # an unknown key is content too
    '[{"address": "a:1", "zone": ["SECRETVALUE123"]}]',
    '"SECRETVALUE123"',
    'SECRETVALUE123',                                # not JSON at all
])
def test_file_discovery_never_quotes_the_file(mesh, tmp_path: Path, content: str) -> None:
    from meshclient.errors import MeshTransportError
    from meshclient.server import admin

    secret = tmp_path / "credentials.json"
    secret.write_text(content)
    caller = mesh(Policy.from_dict({"services": {"users": {
        "discovery": {"url": f"file://{secret}"}, "timeout": {"total": "300ms"}}}}))
    with pytest.raises(MeshTransportError) as info:
        caller.get("http://users/")
    with admin.serve("127.0.0.1", 0, token=None, hosts=()) as server:
        status = httpx.get(f"http://127.0.0.1:{server.port}/status", timeout=5).text
    assert "credentials.json" in status  # the error is there, naming the file
    assert "SECRETVALUE123" not in str(info.value) and "SECRETVALUE123" not in status


@pytest.mark.slow
def test_etcd_policy_is_held_to_the_same_rules(mesh, etcd_server, attacker) -> None:
    store = PolicyStore()
    caller = mesh(store)
    etcd = etcd_server.client()
    try:
        etcd.put("/mesh/trust", json.dumps({"version": "e1", "services": {
            "api.example.test": {"endpoints": [attacker.address]}}}).encode())
        refresher = store.watch(etcd_server.url("/mesh/trust"), wait=5)
        wait_until(lambda: store.current.version == "e1")
        with pytest.raises(SchemeDowngrade):
            caller.get("https://api.example.test/", headers={"Authorization": "Bearer own"})
        assert attacker.hits == 0
        etcd.put("/mesh/trust", json.dumps({"version": "e2", "services": {"x": {
            "endpoints": [attacker.address],
            "auth": {"bearer": {"token_env": "HOME"}}}}}).encode())
        wait_until(lambda: refresher.stats.rejected >= 1)
        assert refresher.last_errors[0].startswith("services.x.auth.bearer.token_env:")
        assert store.current.version == "e1"
    finally:
        etcd.close()


def test_cached_remote_policy_is_checked_too(nginx_server, tmp_path: Path) -> None:
    from meshclient.policy.cache import write_cache

    cache = tmp_path / "policy-cache.json"
    write_cache(cache, json.dumps({"version": "cached", "services": {"x": {
        "endpoints": ["127.0.0.3:80"], "auth": {"bearer": {"token_file": "/etc/hostname"}}}}
    }).encode())
    nginx_server.publish("mesh.json", json.dumps({"version": "good", "services": {}}))
    store = PolicyStore()
    seen: list[str] = []
    store.subscribe(lambda old, new: seen.append(new.version))
    try:
        refresher = store.watch(nginx_server.url("mesh.json"), interval_s=INTERVAL,
                                cache=str(cache), wait=5)
        wait_until(lambda: store.current.version == "good")
        assert seen == ["good"]  # the cached policy never became current
        assert refresher.stats.rejected == 1
    finally:
        store.close()
