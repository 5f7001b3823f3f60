"""The xDS bootstrap parser and the xDS environment settings: gRPC's fields accepted, bad
values refused naming the field and the value, any input either parsed or refused with
`PolicyError` (property tests)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from meshclient.errors import PolicyError
from meshclient.policy import settings_from_env
from meshclient.xds.bootstrap import parse_bootstrap, read_bootstrap
from meshclient.xds.hosts import HostPatterns, listener_name

ISTIO = {  # the shape istio-agent writes for proxyless gRPC
    "xds_servers": [{"server_uri": "unix:///etc/istio/proxy/XDS",
                     "channel_creds": [{"type": "insecure"}],
                     "server_features": ["xds_v3"]}],
    "node": {"id": "sidecar~10.0.0.1~app-1.default~default.svc.cluster.local",
             "metadata": {"GENERATOR": "grpc", "INSTANCE_IPS": "10.0.0.1"},
             "locality": {"region": "r", "zone": "z"}},
    "certificate_providers": {"default": {"plugin_name": "file_watcher", "config": {}}},
    "server_listener_resource_name_template": "xds.istio.io/grpc/lds/inbound/%s",
}


def _with(**server: Any) -> dict[str, Any]:
    doc = json.loads(json.dumps(ISTIO))
    doc["xds_servers"][0].update(server)
    return doc


def test_the_bootstrap_istio_agent_writes_parses() -> None:
    b = parse_bootstrap(json.dumps(ISTIO))
    assert b.server_uri == "unix:///etc/istio/proxy/XDS" and b.channel_creds == "insecure"
    assert b.server_features == ("xds_v3",) and not b.ignore_resource_deletion
    assert b.node.id.startswith("sidecar~") and b.node.metadata["GENERATOR"] == "grpc"
    assert b.node.locality == {"region": "r", "zone": "z"}


@pytest.mark.parametrize("uri", ["istiod.istio-system.svc:15010", "127.0.0.1:1",
                                 "[::1]:15010", "dns:///istiod:15012", "unix:/tmp/xds"])
def test_server_uris_accepted(uri: str) -> None:
    assert parse_bootstrap(json.dumps(_with(server_uri=uri))).server_uri == uri


def test_tls_creds_config_names_pem_files() -> None:
    doc = _with(channel_creds=[{"type": "tls", "config": {
        "ca_certificate_file": "/ca.pem", "certificate_file": "/c.pem",
        "private_key_file": "/k.pem"}}])
    b = parse_bootstrap(json.dumps(doc))
    assert b.channel_creds == "tls" and b.tls_files["ca_certificate_file"] == "/ca.pem"
    bad = _with(channel_creds=[{"type": "tls", "config": {"certificate_file": "/c.pem"}}])
    with pytest.raises(PolicyError, match=r"channel_creds\[0\]\.config needs certificate_file"):
        parse_bootstrap(json.dumps(bad))


def test_the_first_supported_channel_creds_win() -> None:
    doc = _with(channel_creds=[{"type": "spiffe"}, {"type": "tls"}, {"type": "insecure"}])
    assert parse_bootstrap(json.dumps(doc)).channel_creds == "tls"


@pytest.mark.parametrize(("doc", "field", "value"), [
    (_with(server_uri="istiod"), "xds_servers[0].server_uri", "'istiod'"),
    (_with(server_uri="host:99999"), "xds_servers[0].server_uri", "'host:99999'"),
    (_with(server_uri=""), "xds_servers[0].server_uri", "''"),
    (_with(channel_creds=[{"type": "spiffe"}]), "xds_servers[0].channel_creds", "['spiffe']"),
    (_with(channel_creds=[]), "xds_servers[0].channel_creds", "[]"),
    (_with(server_features="xds_v3"), "xds_servers[0].server_features", "'xds_v3'"),
    ({"xds_servers": []}, "xds_servers", "[]"),
    ({**ISTIO, "node": {"id": 7}}, "node.id", "7"),
    ({**ISTIO, "node": {"locality": {"planet": "x"}}}, "node.locality.planet", "'planet'"),
    ({**ISTIO, "node": {"metadata": []}}, "node.metadata", "[]"),
])
def test_bad_fields_are_named_with_their_value(doc: dict[str, Any], field: str,
                                               value: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_bootstrap(json.dumps(doc), origin="GRPC_XDS_BOOTSTRAP")
    assert field in str(info.value) and value in str(info.value)
    assert str(info.value).startswith("GRPC_XDS_BOOTSTRAP")


def test_not_json_and_unreadable_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="not valid JSON"):
        parse_bootstrap("{nope")
    with pytest.raises(PolicyError, match=r"GRPC_XDS_BOOTSTRAP: bootstrap file .* cannot be read"):
        read_bootstrap(("GRPC_XDS_BOOTSTRAP", str(tmp_path / "missing.json")))
    path = tmp_path / "b.json"
    path.write_text(json.dumps(ISTIO))
    assert read_bootstrap(("GRPC_XDS_BOOTSTRAP", str(path))).node.id == ISTIO["node"]["id"]
    inline = read_bootstrap(("GRPC_XDS_BOOTSTRAP_CONFIG", json.dumps(ISTIO)))
    assert inline.origin == "GRPC_XDS_BOOTSTRAP_CONFIG"


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=12)
_server = st.fixed_dictionaries({}, optional={
    "server_uri": st.sampled_from(["a:1", "unix:///x", "", "a", "[::1]:80", "a:0"]) | _json,
    "channel_creds": st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["insecure", "tls", "google_default", "x"])}), max_size=3)
    | _json,
    "server_features": st.lists(st.text(max_size=5), max_size=2) | _json})
_doc = st.fixed_dictionaries({"xds_servers": st.lists(_server, max_size=2) | _json},
                             optional={"node": _json, "other": _json})


@settings(max_examples=300, deadline=None)
@given(_doc | _json)
def test_any_document_parses_or_is_refused_with_policy_error(doc: Any) -> None:
    try:
        b = parse_bootstrap(json.dumps(doc))
    except PolicyError as exc:
        assert str(exc).startswith("bootstrap")
        return
    assert b.channel_creds in ("insecure", "tls", "google_default")
    assert b.server_uri == doc["xds_servers"][0]["server_uri"]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=64) | st.text(max_size=64))
def test_any_bytes_parse_or_are_refused(text: bytes | str) -> None:
    with contextlib.suppress(PolicyError):
        parse_bootstrap(text)


def test_env_settings_pick_the_bootstrap_in_order_and_the_host_patterns() -> None:
    env = {"GRPC_XDS_BOOTSTRAP_CONFIG": "{}", "GRPC_XDS_BOOTSTRAP": "/b.json"}
    assert settings_from_env(env).xds_bootstrap == ("GRPC_XDS_BOOTSTRAP", "/b.json")
    env["MESHCLIENT_XDS_BOOTSTRAP"] = "/m.json"
    assert settings_from_env(env).xds_bootstrap == ("MESHCLIENT_XDS_BOOTSTRAP", "/m.json")
    assert settings_from_env({"GRPC_XDS_BOOTSTRAP_CONFIG": "{}"}).xds_bootstrap == (
        "GRPC_XDS_BOOTSTRAP_CONFIG", "{}")
    s = settings_from_env({})
    assert s.xds_bootstrap is None and s.xds_hosts == ("*.svc.cluster.local", "*.svc")
    s = settings_from_env({"MESHCLIENT_XDS_HOSTS": "*.mesh, API.internal",
                           "MESHCLIENT_XDS_WAIT": "250ms"})
    assert s.xds_hosts == ("*.mesh", "api.internal") and s.xds_wait == 0.25
    with pytest.raises(PolicyError, match=r"MESHCLIENT_XDS_HOSTS .*'a/b'"):
        settings_from_env({"MESHCLIENT_XDS_HOSTS": "a/b"})
    with pytest.raises(PolicyError, match="MESHCLIENT_XDS_WAIT"):
        settings_from_env({"MESHCLIENT_XDS_WAIT": "soon"})


def test_host_patterns_and_listener_names() -> None:
    p = HostPatterns(("*.svc.cluster.local", "*.svc"))
    assert p.matches("users.default.svc.cluster.local") and p.matches("Users.Default.SVC")
    assert not p.matches("example.com") and not p.matches("svc.cluster.local.evil.com")
    assert listener_name("Users.default.svc", None, "http") == "users.default.svc:80"
    assert listener_name("users.default.svc", None, "https") == "users.default.svc:443"
    assert listener_name("users.default.svc", 8080, "http") == "users.default.svc:8080"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_hosts_value_parses_or_is_refused_naming_the_variable(value: str) -> None:
    try:
        hosts = settings_from_env({"MESHCLIENT_XDS_HOSTS": value}).xds_hosts
    except PolicyError as exc:
        assert str(exc).startswith("MESHCLIENT_XDS_HOSTS")
        return
    assert hosts and all(h == h.strip().lower() and h for h in hosts)
    HostPatterns(hosts).matches("users.default.svc.cluster.local")  # compiles and runs


def test_certificate_providers_are_read_and_reach_cluster_validation() -> None:
    """Istio's proxyless clusters name a certificate provider instance; the bootstrap's
    `file_watcher` files are what a cluster's TLS then uses (no NACK)."""
    from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
    from envoy.service.discovery.v3 import discovery_pb2

    from meshclient.xds.protocol import AdsProtocol
    from meshclient.xds.resources import CLUSTER
    from tests.unit.xds_build import cluster, pack

    doc = json.loads(json.dumps(ISTIO))
    doc["certificate_providers"]["default"]["config"] = {
        "certificate_file": "/var/lib/istio/data/cert-chain.pem",
        "private_key_file": "/var/lib/istio/data/key.pem",
        "ca_certificate_file": "/var/lib/istio/data/root-cert.pem"}
    b = parse_bootstrap(json.dumps(doc))
    assert b.certificate_providers["default"]["config"]["private_key_file"].endswith("key.pem")

    ctx = tls_pb2.UpstreamTlsContext()
    ctx.common_tls_context.tls_certificate_provider_instance.instance_name = "default"
    c = cluster()
    c.transport_socket.name = "envoy.transport_sockets.tls"
    c.transport_socket.typed_config.CopyFrom(pack(ctx))
    response = discovery_pb2.DiscoveryResponse(version_info="1", nonce="n1", type_url=CLUSTER)
    response.resources.add().CopyFrom(pack(c))

    AdsProtocol(None, False, b.certificate_providers).receive(response)  # accepted
    with pytest.raises(PolicyError, match="certificate provider 'default'"):
        AdsProtocol(None, False, {}).receive(response)  # without them: NACK, named


@pytest.mark.parametrize(("providers", "field"), [
    ([], "certificate_providers"),
    ({"default": "x"}, "certificate_providers.default"),
    ({"default": {"config": {}}}, "certificate_providers.default.plugin_name"),
    ({"default": {"plugin_name": "file_watcher", "config": []}},
     "certificate_providers.default.config"),
    ({"default": {"plugin_name": "file_watcher", "config": {"certificate_file": 7}}},
     "certificate_providers.default.config.certificate_file"),
])
def test_bad_certificate_providers_are_named(providers: Any, field: str) -> None:
    doc = json.loads(json.dumps(ISTIO))
    doc["certificate_providers"] = providers
    with pytest.raises(PolicyError, match=field.replace(".", r"\.")):
        parse_bootstrap(json.dumps(doc))
