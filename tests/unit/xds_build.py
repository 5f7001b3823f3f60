"""Builders of real xDS v3 protos for the resource tests (no server: pure messages)."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2

from meshclient.xds import resources as R

HOST = "users.default.svc.cluster.local"
LISTENER_NAME = f"{HOST}:8080"
V1 = f"outbound|8080|v1|{HOST}"
V2 = f"outbound|8080|v2|{HOST}"


def pack(message: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def hcm(rds: str | None = "r1", *, fault: fault_pb2.HTTPFault | None = None,
        extra: list[tuple[str, Any, bool]] | None = None) -> hcm_pb2.HttpConnectionManager:
    h = hcm_pb2.HttpConnectionManager()
    if rds is not None:
        h.rds.route_config_name = rds
        h.rds.config_source.ads.SetInParent()
    for name, message, optional in extra or ():
        f = h.http_filters.add(name=name, is_optional=optional)
        f.typed_config.CopyFrom(pack(message))
    if fault is not None:
        h.http_filters.add(name="envoy.filters.http.fault").typed_config.CopyFrom(pack(fault))
    h.http_filters.add(name="router").typed_config.CopyFrom(pack(router_pb2.Router()))
    return h


def listener(name: str = LISTENER_NAME, manager: Any = None) -> listener_pb2.Listener:
    out = listener_pb2.Listener(name=name)
    out.api_listener.api_listener.CopyFrom(pack(manager if manager is not None else hcm()))
    return out


def route_config(name: str = "r1", domains: tuple[str, ...] = (LISTENER_NAME,),
                 cluster: str = V1) -> route_pb2.RouteConfiguration:
    out = route_pb2.RouteConfiguration(name=name)
    vh = out.virtual_hosts.add(name="vh", domains=list(domains))
    r = vh.routes.add()
    r.match.prefix = "/"
    r.route.cluster = cluster
    return out


def cluster(name: str = V1, **fields: Any) -> cluster_pb2.Cluster:
    out = cluster_pb2.Cluster(name=name, type=cluster_pb2.Cluster.EDS, **fields)
    out.eds_cluster_config.eds_config.ads.SetInParent()
    return out


def assignment(name: str = V1, endpoints: tuple[tuple[str, int], ...] = (("127.0.0.2", 8001),),
               *, zone: str = "", priority: int = 0, locality_weight: int = 1,
               ) -> endpoint_pb2.ClusterLoadAssignment:
    out = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    loc = out.endpoints.add(priority=priority)
    loc.locality.zone = zone
    loc.load_balancing_weight.value = locality_weight
    for host, port in endpoints:
        e = loc.lb_endpoints.add()
        e.endpoint.address.socket_address.address = host
        e.endpoint.address.socket_address.port_value = port
    return out


def state(*messages: Any) -> R.XdsState:
    """An XdsState holding `messages`, each decoded and validated as the client does."""
    out = R.XdsState()
    for message in messages:
        type_url, table = {
            listener_pb2.Listener: (R.LISTENER, out.listeners),
            route_pb2.RouteConfiguration: (R.ROUTE, out.routes),
            cluster_pb2.Cluster: (R.CLUSTER, out.clusters),
            endpoint_pb2.ClusterLoadAssignment: (R.ENDPOINT, out.endpoints),
        }[type(message)]
        name, decoded = R.decode(type_url, pack(message))
        R.validate(type_url, decoded)
        table[name] = decoded
    return out


def world(rc: route_pb2.RouteConfiguration | None = None, *clusters: Any) -> R.XdsState:
    """Listener + routes + the clusters given (default: V1 with one endpoint)."""
    parts = clusters or (cluster(), assignment())
    return state(listener(), rc if rc is not None else route_config(), *parts)
