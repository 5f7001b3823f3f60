"""The xDS bootstrap, read as gRPC reads it (gRFC A27), so a pod set up for proxyless gRPC
works unchanged.

Where it comes from (first set wins): `MESHCLIENT_XDS_BOOTSTRAP` (a path, or the JSON
inline when it starts with `{`), `GRPC_XDS_BOOTSTRAP` (a path), `GRPC_XDS_BOOTSTRAP_CONFIG`
(the JSON inline). What is used:

* `xds_servers[0].server_uri`: `host:port`, `[v6]:port`, `dns:///host:port` or
  `unix:///path` (istio-agent's `unix:///etc/istio/proxy/XDS`);
* `xds_servers[0].channel_creds`: the first supported type of the list (`insecure`, `tls`,
  `google_default`), as gRPC does; none supported is an error. A `tls` entry's `config` may
  name PEM files (`ca_certificate_file`, `certificate_file`, `private_key_file`, gRFC A65);
  without them the system roots are used;
* `xds_servers[0].server_features`: `xds_v3`, `ignore_resource_deletion` (a listener or
  cluster missing from an answer is kept rather than removed);
* `node`: `id`, `cluster`, `metadata` (an object), `locality` (`region`, `zone`,
  `sub_zone`).

* `certificate_providers`: name -> `{plugin_name, config}`; a cluster's TLS context that
  names a provider instance (as Istio's proxyless clusters do) takes its files from the
  `file_watcher` plugin's `certificate_file`, `private_key_file` and `ca_certificate_file`
  (istio-agent writes them under `/var/lib/istio/data`).

Other keys (`server_listener_resource_name_template`, `authorities` …) are accepted and
ignored. A bad bootstrap raises `PolicyError` naming the field and value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..errors import PolicyError

#: Channel credential types meshclient can use, in gRPC's names.
CREDS = ("insecure", "tls", "google_default")
MAX_BOOTSTRAP_BYTES = 1 << 20
_HOST_PORT = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.\-_]+):([0-9]{1,5})$")


@dataclass(frozen=True, slots=True)
class Node:
    """The `node` the client announces (Envoy's `config.core.v3.Node`)."""

    id: str = ""
    cluster: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)
    locality: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Bootstrap:
    """A validated bootstrap: the management server and this node."""

    server_uri: str
    channel_creds: str
    server_features: tuple[str, ...]
    node: Node
    origin: str = "bootstrap"
    #: the `tls` credentials' PEM files by key (`ca_certificate_file`, …)
    tls_files: Mapping[str, str] = field(default_factory=dict)
    #: `certificate_providers`: instance name -> `{"plugin_name": …, "config": {…}}`
    certificate_providers: Mapping[str, Any] = field(default_factory=dict)

    @property
    def target(self) -> str:
        """The gRPC channel target (`unix:///path` and `dns:///…` are grpc's own)."""
        return self.server_uri

    @property
    def ignore_resource_deletion(self) -> bool:
        return "ignore_resource_deletion" in self.server_features


def _fail(origin: str, path: str, message: str, value: object) -> PolicyError:
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:119] + "…"
    return PolicyError(f"{origin}: {path} {message}: {shown}")


def _server_uri(origin: str, value: object) -> str:
    path = "xds_servers[0].server_uri"
    if not isinstance(value, str) or not value:
        raise _fail(origin, path, "must be a non-empty string", value)
    if value.startswith("unix:"):
        rest = value[len("unix:"):].lstrip("/")
        if not rest or any(c in value for c in "\r\n\0"):
            raise _fail(origin, path, "must name a socket path (unix:///path)", value)
        return value
    hostport = value[len("dns:///"):] if value.startswith("dns:///") else value
    match = _HOST_PORT.match(hostport)
    if match is None or not 0 < int(match.group(2)) < 65536:
        raise _fail(origin, path, "must be host:port, dns:///host:port or unix:///path", value)
    return value


_TLS_FILES = ("ca_certificate_file", "certificate_file", "private_key_file")


def _tls_files(origin: str, path: str, config: object) -> dict[str, str]:
    if config is None:
        return {}
    if not isinstance(config, Mapping):
        raise _fail(origin, f"{path}.config", "must be an object", config)
    out = {}
    for key in _TLS_FILES:
        value = config.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise _fail(origin, f"{path}.config.{key}", "must be a file path", value)
        if value:
            out[key] = value
    if ("certificate_file" in out) != ("private_key_file" in out):
        raise _fail(origin, f"{path}.config", "needs certificate_file and private_key_file "
                    "together", sorted(out))
    return out


def _creds(origin: str, value: object) -> tuple[str, dict[str, str]]:
    path = "xds_servers[0].channel_creds"
    if not isinstance(value, list) or not value:
        raise _fail(origin, path, "must be a non-empty list of {\"type\": …}", value)
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or not isinstance(item.get("type"), str):
            raise _fail(origin, f"{path}[{i}]", "must be an object with a string \"type\"", item)
        if item["type"] in CREDS:
            files = (_tls_files(origin, f"{path}[{i}]", item.get("config"))
                     if item["type"] == "tls" else {})
            return str(item["type"]), files
    types = [item["type"] for item in value]
    raise _fail(origin, path, f"has no supported type (supported: {', '.join(CREDS)})", types)


def _certificate_providers(origin: str, value: object) -> dict[str, Any]:
    """`certificate_providers`: each instance an object with a string `plugin_name` and an
    object `config` whose file names are strings."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(origin, "certificate_providers", "must be an object", value)
    out: dict[str, Any] = {}
    for name, instance in value.items():
        path = f"certificate_providers.{name}"
        if not isinstance(instance, Mapping):
            raise _fail(origin, path, "must be an object", instance)
        plugin = instance.get("plugin_name")
        if not isinstance(plugin, str) or not plugin:
            raise _fail(origin, f"{path}.plugin_name", "must be a non-empty string", plugin)
        config = instance.get("config", {})
        if not isinstance(config, Mapping):
            raise _fail(origin, f"{path}.config", "must be an object", config)
        for key in _TLS_FILES:
            if key in config and not (isinstance(config[key], str) and config[key]):
                raise _fail(origin, f"{path}.config.{key}", "must be a file path", config[key])
        out[str(name)] = {"plugin_name": plugin, "config": dict(config)}
    return out


def _strings(origin: str, path: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(origin, path, "must be a list of strings", value)
    return tuple(value)


def _node(origin: str, value: object) -> Node:
    if value is None:
        return Node()
    if not isinstance(value, Mapping):
        raise _fail(origin, "node", "must be an object", value)
    for key in ("id", "cluster"):
        if not isinstance(value.get(key, ""), str):
            raise _fail(origin, f"node.{key}", "must be a string", value[key])
    metadata = value.get("metadata", {})
    if not isinstance(metadata, Mapping):
        raise _fail(origin, "node.metadata", "must be an object", metadata)
    locality = value.get("locality", {})
    if not isinstance(locality, Mapping):
        raise _fail(origin, "node.locality", "must be an object", locality)
    for key, item in locality.items():
        if key not in ("region", "zone", "sub_zone"):
            raise _fail(origin, f"node.locality.{key}", "is not region, zone or sub_zone", key)
        if not isinstance(item, str):
            raise _fail(origin, f"node.locality.{key}", "must be a string", item)
    return Node(str(value.get("id", "")), str(value.get("cluster", "")), dict(metadata),
                dict(locality))


def parse_bootstrap(text: str | bytes, origin: str = "bootstrap") -> Bootstrap:
    """Validate a bootstrap document; raises `PolicyError` naming the field and value."""
    if len(text) > MAX_BOOTSTRAP_BYTES:
        raise PolicyError(f"{origin}: bootstrap is over {MAX_BOOTSTRAP_BYTES} bytes")
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise PolicyError(f"{origin}: bootstrap is not valid JSON: {exc}") from None
    if not isinstance(doc, Mapping):
        raise _fail(origin, "bootstrap", "must be a JSON object", type(doc).__name__)
    servers = doc.get("xds_servers")
    if not isinstance(servers, list) or not servers:
        raise _fail(origin, "xds_servers", "must be a non-empty list", servers)
    server = servers[0]
    if not isinstance(server, Mapping):
        raise _fail(origin, "xds_servers[0]", "must be an object", server)
    creds, tls_files = _creds(origin, server.get("channel_creds"))
    return Bootstrap(
        server_uri=_server_uri(origin, server.get("server_uri")),
        channel_creds=creds,
        tls_files=tls_files,
        server_features=_strings(origin, "xds_servers[0].server_features",
                                 server.get("server_features")),
        node=_node(origin, doc.get("node")),
        origin=origin,
        certificate_providers=_certificate_providers(origin, doc.get("certificate_providers")),
    )


def read_bootstrap(source: tuple[str, str]) -> Bootstrap:
    """`source` is (variable name, value) from the environment (`settings.xds_bootstrap`):
    a path, or the JSON itself (a `*_CONFIG` variable, or a value starting with `{`)."""
    name, value = source
    if name.endswith("_CONFIG") or value.lstrip().startswith("{"):
        return parse_bootstrap(value, origin=name)
    try:
        with open(value, "rb") as file:
            text = file.read(MAX_BOOTSTRAP_BYTES + 1)
    except OSError as exc:
        raise PolicyError(f"{name}: bootstrap file {value!r} cannot be read: "
                          f"{exc.strerror or exc}") from None
    return parse_bootstrap(text, origin=f"{name} ({value})")
