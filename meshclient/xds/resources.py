"""xDS v3 resources: decode, validate, follow references, and translate into a policy.

The four resource types of state-of-the-world ADS (Listener, RouteConfiguration, Cluster,
ClusterLoadAssignment) are read as gRPC's xDS client reads them (gRFCs A27, A28, A31, A44,
A50); docs/xds-reference.md lists every field honoured and every one ignored.

- `decode(type_url, any)` -> (resource name, message); `validate(type_url, message)` raises
  `PolicyError` naming the resource and the field: the client NACKs with that text.
- `references(type_url, message)` -> the resources it needs next.
- `translate(state, wanted)` -> `{"services": {...}}`, a policy fragment. The service for a
  listener's host is named as the caller says; it has the routes of the best-matching
  virtual host (matched on the listener name, `host:port`, then on the host alone) and the
  listener's fault filter. Every cluster becomes a service (`_translate_names.py`) with its
  endpoints; a route with its own deadline or retry policy goes to a copy of its cluster's
  service carrying them, since meshclient applies those per destination service.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from google.protobuf import any_pb2
from google.protobuf.message import Message

from ..errors import PolicyError
from ._translate_common import PREFIX, Where, unpack
from ._translate_route import VirtualHostInfo, parse_route_config

LISTENER = PREFIX + listener_pb2.Listener.DESCRIPTOR.full_name
ROUTE = PREFIX + route_pb2.RouteConfiguration.DESCRIPTOR.full_name
CLUSTER = PREFIX + cluster_pb2.Cluster.DESCRIPTOR.full_name
ENDPOINT = PREFIX + endpoint_pb2.ClusterLoadAssignment.DESCRIPTOR.full_name
_RESOURCE = PREFIX + "envoy.service.discovery.v3.Resource"

_CLASSES: dict[str, type[Message]] = {
    LISTENER: listener_pb2.Listener, ROUTE: route_pb2.RouteConfiguration,
    CLUSTER: cluster_pb2.Cluster, ENDPOINT: endpoint_pb2.ClusterLoadAssignment,
}
_KINDS = {LISTENER: "listener", ROUTE: "route_config", CLUSTER: "cluster",
          ENDPOINT: "cluster_load_assignment"}


def _name(msg: Any) -> str:
    return str(msg.cluster_name if isinstance(msg, endpoint_pb2.ClusterLoadAssignment)
               else msg.name)


def _check_type(type_url: str) -> type[Message]:
    cls = _CLASSES.get(type_url)
    if cls is None:
        raise PolicyError(f"type_url is not a supported xDS resource type: {type_url!r}")
    return cls


def decode(type_url: str, any_msg: any_pb2.Any) -> tuple[str, Message]:
    """(resource name, decoded message) of one resource of a DiscoveryResponse."""
    cls = _check_type(type_url)
    if any_msg.type_url == _RESOURCE:  # the xDS `Resource` wrapper
        from envoy.service.discovery.v3 import discovery_pb2

        wrapper = unpack(Where(_KINDS[type_url], "?"), any_msg, discovery_pb2.Resource)
        any_msg = wrapper.resource
    msg = unpack(Where(_KINDS[type_url], "?", "resource"), any_msg, cls)
    name = _name(msg)
    if not name:
        raise PolicyError(f"{_KINDS[type_url]} without a name")
    return name, msg


def validate(type_url: str, msg: Any, providers: Mapping[str, Any] | None = None) -> None:
    """Raise `PolicyError` (naming resource and field) when `msg` cannot be applied.
    `providers`: the bootstrap's `certificate_providers`, which a cluster's TLS may name."""
    _check_type(type_url)
    name = _name(msg)
    if type_url == LISTENER:
        from ._translate_listener import parse_listener

        info = parse_listener(name, msg)
        if info is not None and info.inline is not None:
            parse_route_config(name, info.inline, kind="listener")
    elif type_url == ROUTE:
        parse_route_config(name, msg)
    elif type_url == CLUSTER:
        from ._translate_cluster import parse_cluster

        parse_cluster(name, msg, providers)
    else:
        from ._translate_endpoint import endpoint_documents

        endpoint_documents(name, msg)


def _route_clusters(hosts: tuple[VirtualHostInfo, ...]) -> set[str]:
    out: set[str] = set()
    for vh in hosts:
        for r in vh.routes:
            out.update(c for c, _ in r.clusters)
            if r.mirror is not None:
                out.add(r.mirror[0])
    return out


def references(type_url: str, msg: Any) -> set[tuple[str, str]]:
    """(type_url, name) of the resources `msg` needs next; raises PolicyError if invalid."""
    _check_type(type_url)
    name = _name(msg)
    if type_url == LISTENER:
        from ._translate_listener import parse_listener

        info = parse_listener(name, msg)
        if info is None:
            return set()
        if info.rds_name is not None:
            return {(ROUTE, info.rds_name)}
        assert info.inline is not None
        return {(CLUSTER, c) for c in _route_clusters(
            parse_route_config(name, info.inline, kind="listener"))}
    if type_url == ROUTE:
        return {(CLUSTER, c) for c in _route_clusters(parse_route_config(name, msg))}
    if type_url == CLUSTER:
        from ._translate_cluster import parse_cluster

        eds = parse_cluster(name, msg, None, check_tls=False).eds_name
        return {(ENDPOINT, eds)} if eds is not None else set()
    return set()


@dataclass
class XdsState:
    """The last good resource of each name, per type (name -> message)."""

    listeners: dict[str, Any] = field(default_factory=dict)
    routes: dict[str, Any] = field(default_factory=dict)
    clusters: dict[str, Any] = field(default_factory=dict)
    endpoints: dict[str, Any] = field(default_factory=dict)


def translate(state: XdsState, wanted_listeners: Mapping[str, str],
              providers: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The policy fragment `{"services": {...}}` for the listeners in `wanted_listeners`
    (listener name `host:port` -> service name). A listener not in `state`, or whose route
    configuration has not arrived, gives no service (the caller decides: wait or pass
    through). `providers`: the bootstrap's `certificate_providers`."""
    from ._translate_build import build

    return build(state, wanted_listeners, providers)


__all__ = ["CLUSTER", "ENDPOINT", "LISTENER", "ROUTE", "XdsState", "decode", "references",
           "translate", "validate"]
