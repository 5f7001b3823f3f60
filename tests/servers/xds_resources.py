"""Builders of the v3 xDS resources the tests serve (the shapes istiod sends proxyless
clients): an API listener with an HttpConnectionManager naming its route configuration
over ADS, route configurations, EDS clusters and cluster load assignments."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import address_pb2, base_pb2, config_source_pb2, health_check_pb2
from envoy.config.endpoint.v3 import endpoint_components_pb2, endpoint_pb2
from envoy.config.listener.v3 import api_listener_pb2, listener_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)
from google.protobuf import any_pb2, duration_pb2, wrappers_pb2

HEALTHY = health_check_pb2.HEALTHY
UNHEALTHY = health_check_pb2.UNHEALTHY


def _ads() -> Any:
    return config_source_pb2.ConfigSource(
        ads=config_source_pb2.AggregatedConfigSource(),
        resource_api_version=config_source_pb2.V3)


def _any(msg: Any) -> Any:
    out = any_pb2.Any()
    out.Pack(msg)
    return out


def listener(name: str, route_config: str) -> Any:
    """An API listener whose routes come from RDS `route_config`."""
    hcm = hcm_pb2.HttpConnectionManager(
        rds=hcm_pb2.Rds(config_source=_ads(), route_config_name=route_config),
        http_filters=[hcm_pb2.HttpFilter(name="envoy.filters.http.router",
                                         typed_config=_any(router_pb2.Router()))])
    return listener_pb2.Listener(
        name=name, api_listener=api_listener_pb2.ApiListener(api_listener=_any(hcm)))


def duration(seconds: float) -> Any:
    whole = int(seconds)
    return duration_pb2.Duration(seconds=whole, nanos=round((seconds - whole) * 1e9))


def route(*, prefix: str = "/", cluster: str | None = None,
          weights: dict[str, int] | None = None, headers: dict[str, str] | None = None,
          timeout_s: float | None = None, retry: dict[str, Any] | None = None) -> Any:
    """One route: a prefix (and exact header matches) to a cluster or weighted clusters."""
    match = route_components_pb2.RouteMatch(prefix=prefix)
    for header, value in (headers or {}).items():
        match.headers.append(route_components_pb2.HeaderMatcher(name=header,
                                                                exact_match=value))
    action = route_components_pb2.RouteAction()
    if weights is not None:
        action.weighted_clusters.CopyFrom(route_components_pb2.WeightedCluster(clusters=[
            route_components_pb2.WeightedCluster.ClusterWeight(
                name=name, weight=wrappers_pb2.UInt32Value(value=w))
            for name, w in weights.items()]))
    else:
        action.cluster = cluster or ""
    if timeout_s is not None:
        action.timeout.CopyFrom(duration(timeout_s))
    if retry is not None:
        policy = route_components_pb2.RetryPolicy(
            retry_on=retry.get("retry_on", "5xx"),
            num_retries=wrappers_pb2.UInt32Value(value=retry.get("num_retries", 1)))
        if "per_try_timeout_s" in retry:
            policy.per_try_timeout.CopyFrom(duration(retry["per_try_timeout_s"]))
        action.retry_policy.CopyFrom(policy)
    return route_components_pb2.Route(match=match, route=action)


def route_config(name: str, domains: list[str], routes: list[Any]) -> Any:
    return route_pb2.RouteConfiguration(name=name, virtual_hosts=[
        route_components_pb2.VirtualHost(name=f"{name}-vh", domains=domains, routes=routes)])


def cluster(name: str, *, eds_name: str | None = None, lb: str = "ROUND_ROBIN") -> Any:
    return cluster_pb2.Cluster(
        name=name, type=cluster_pb2.Cluster.EDS,
        eds_cluster_config=cluster_pb2.Cluster.EdsClusterConfig(
            eds_config=_ads(), service_name=eds_name or name),
        lb_policy=getattr(cluster_pb2.Cluster, lb))


def assignment(name: str, endpoints: list[dict[str, Any]]) -> Any:
    """`endpoints`: dicts with `address` ("host:port"), optional `health`, `weight`,
    `priority`, `zone`; grouped into one locality per (zone, priority)."""
    groups: dict[tuple[str, int], list[Any]] = {}
    for ep in endpoints:
        host, port = ep["address"].rsplit(":", 1)
        lb_endpoint = endpoint_components_pb2.LbEndpoint(
            endpoint=endpoint_components_pb2.Endpoint(address=address_pb2.Address(
                socket_address=address_pb2.SocketAddress(address=host,
                                                         port_value=int(port)))),
            health_status=ep.get("health", HEALTHY))
        if "weight" in ep:
            lb_endpoint.load_balancing_weight.value = ep["weight"]
        groups.setdefault((ep.get("zone", "zone-a"), ep.get("priority", 0)), []).append(
            lb_endpoint)
    return endpoint_pb2.ClusterLoadAssignment(cluster_name=name, endpoints=[
        endpoint_components_pb2.LocalityLbEndpoints(
            locality=base_pb2.Locality(region="test", zone=zone), lb_endpoints=eps,
            load_balancing_weight=wrappers_pb2.UInt32Value(value=1), priority=priority)
        for (zone, priority), eps in sorted(groups.items(), key=lambda kv: kv[0][1])])


def serve_split(server: Any, listener_name: str, weights: dict[str, int],
                endpoints: dict[str, list[dict[str, Any]]], *, domains: list[str] | None = None,
                routes: list[Any] | None = None) -> None:
    """Serve a listener -> one route config -> weighted clusters -> their endpoints."""
    from tests.servers.ads import CLUSTER, ENDPOINT, LISTENER, ROUTE

    server.set(ENDPOINT, [assignment(name, eps) for name, eps in endpoints.items()])
    server.set(CLUSTER, [cluster(name) for name in endpoints])
    server.set(ROUTE, [route_config("rc-" + listener_name, domains or ["*"],
                                    routes or [route(weights=weights)])])
    server.set(LISTENER, [listener(listener_name, "rc-" + listener_name)])
