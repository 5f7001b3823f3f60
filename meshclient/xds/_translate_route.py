"""RDS: a `RouteConfiguration` read into virtual hosts and routes (gRFC A28, A31, A44).

Routes keep their order. A route's action becomes: its destination clusters with weights
(`cluster`, `weighted_clusters`), a sticky header (the first `hash_policy` on a header),
a mirror (the first `request_mirror_policies` entry naming a cluster), a deadline (the
smallest non-zero of `timeout`, `max_stream_duration.max_stream_duration` and the
listener's `max_stream_duration`), a retry policy (the route's, else the virtual host's)
and a fault (`typed_per_filter_config` of the fault filter: the route's, else the virtual
host's). A route that cannot be evaluated by a client (see `_match.py`), or whose action
names clusters through a header or a plugin, is skipped, as gRPC does. A redirect, a
`direct_response` or another non-forwarding action keeps its place but has no
destination: its requests fail (`NoEndpointsAvailable`), as gRPC fails them with
UNAVAILABLE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.config.route.v3 import route_components_pb2 as rc
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2

from ..policy import HEADER_NAME, FaultPolicy, RouteMatch
from ._match import route_match
from ._translate_common import Where, check, fraction_percent, seconds, type_name, unpack
from ._translate_fault import FAULT, fault_document
from ._translate_retry import retry_document
from ._translate_vhost import check_domain

#: Weights above this are scaled down together (meshclient's weight ceiling).
MAX_WEIGHT = 1_000_000
NON_FORWARDING_STATUS = 503


@dataclass(frozen=True, slots=True)
class RouteInfo:
    """One route, in meshclient's terms; clusters are still xDS cluster names."""

    name: str | None
    match: dict[str, Any]
    clusters: tuple[tuple[str, int], ...]  # (cluster, weight); empty: abort_status
    hash_on: str | None = None
    mirror: tuple[str, float] | None = None  # (cluster, percent)
    fault: dict[str, Any] | None = None
    timeout: float | None = None  # the route's deadline
    retry: dict[str, Any] | None = None
    per_try: float | None = None
    abort_status: int | None = None  # a non-forwarding action (its status, or 503)


@dataclass(frozen=True, slots=True)
class VirtualHostInfo:
    name: str
    domains: tuple[str, ...]
    routes: tuple[RouteInfo, ...]


def _fault(where: Where, configs: Any) -> dict[str, Any] | None:
    for key in sorted(configs):
        value = configs[key]
        if type_name(value) == FAULT:
            fault = fault_document(where.at(key), unpack(where.at(key), value,
                                                         fault_pb2.HTTPFault))
            if fault is not None:
                check(where.at(key), FaultPolicy, fault)
            return fault
    return None


def _clusters(where: Where, action: rc.RouteAction) -> tuple[tuple[str, int], ...] | None:
    kind = action.WhichOneof("cluster_specifier")
    if kind == "cluster":
        if not action.cluster:
            raise where.at("cluster").error("must not be empty")
        return ((action.cluster, 1),)
    if kind != "weighted_clusters":
        return None  # cluster_header, cluster_specifier_plugin…: skipped, as gRPC does
    here = where.at("weighted_clusters.clusters")
    pairs: list[tuple[str, int]] = []
    for i, c in enumerate(action.weighted_clusters.clusters):
        if not c.name:
            raise here.at(i).at("name").error("must not be empty")
        pairs.append((c.name, c.weight.value if c.HasField("weight") else 0))
    total = sum(w for _, w in pairs)
    if total <= 0 or total > 0xFFFFFFFF:
        raise here.error(f"weights must add up to between 1 and {0xFFFFFFFF}: {total}")
    top = max(w for _, w in pairs)
    if top > MAX_WEIGHT:
        scale = -(-top // MAX_WEIGHT)
        pairs = [(n, w // scale) for n, w in pairs]
    merged: dict[str, int] = {}
    for n, w in pairs:  # a cluster named twice gets the sum of its weights
        merged[n] = min(MAX_WEIGHT, merged.get(n, 0) + w)
    if not any(merged.values()):
        raise here.error("weights must not all be 0")
    return tuple(merged.items())


def _action(where: Where, r: rc.Route, vh: rc.VirtualHost, listener_msd: float | None,
            match: dict[str, Any]) -> RouteInfo | None:
    name = r.name or None
    fault = _fault(where.at("typed_per_filter_config"), r.typed_per_filter_config)
    if fault is None:
        fault = _fault(Where(where.kind, where.name, "virtual_host.typed_per_filter_config"),
                       vh.typed_per_filter_config)
    kind = r.WhichOneof("action")
    if kind == "direct_response":
        status = r.direct_response.status
        if not 200 <= status <= 599:
            raise where.at("direct_response.status").error(
                f"must be between 200 and 599: {status}")
        return RouteInfo(name, match, (), fault=fault, abort_status=status)
    if kind != "route":
        return RouteInfo(name, match, (), fault=fault, abort_status=NON_FORWARDING_STATUS)
    here = where.at("route")
    a = r.route
    clusters = _clusters(here, a)
    if clusters is None:
        return None
    deadlines = [listener_msd] if listener_msd else []
    if a.HasField("timeout"):
        deadlines.append(seconds(here.at("timeout"), a.timeout))
    if a.HasField("max_stream_duration") and a.max_stream_duration.HasField(
            "max_stream_duration"):
        deadlines.append(seconds(here.at("max_stream_duration.max_stream_duration"),
                                 a.max_stream_duration.max_stream_duration))
    timeout = min((d for d in deadlines if d > 0), default=None)
    retry, per_try = None, None
    if a.HasField("retry_policy"):
        retry, per_try = retry_document(here.at("retry_policy"), a.retry_policy)
    elif vh.HasField("retry_policy"):
        retry, per_try = retry_document(Where(where.kind, where.name,
                                              "virtual_host.retry_policy"), vh.retry_policy)
    hash_on = next((h.header.header_name.lower() for h in a.hash_policy
                    if h.WhichOneof("policy_specifier") == "header"), None)
    if hash_on is not None and not HEADER_NAME.fullmatch(hash_on):
        raise here.at("hash_policy").error(f"header_name is not a valid header name: "
                                           f"{hash_on!r}")
    mirror = None
    for i, m in enumerate(a.request_mirror_policies):
        if m.cluster:
            percent = 100.0
            if m.HasField("runtime_fraction"):
                percent = fraction_percent(here.at("request_mirror_policies").at(i).at(
                    "runtime_fraction.default_value"), m.runtime_fraction.default_value)
            mirror = (m.cluster, percent)
            break
    return RouteInfo(name, match, clusters, hash_on, mirror, fault, timeout, retry, per_try)


def parse_route_config(name: str, msg: route_pb2.RouteConfiguration,
                       listener_msd: float | None = None,
                       kind: str = "route_config") -> tuple[VirtualHostInfo, ...]:
    """The virtual hosts of `msg`; raises PolicyError naming the resource and field."""
    hosts = []
    for i, vh in enumerate(msg.virtual_hosts):
        here = Where(kind, name, f"virtual_hosts[{i}]")
        if not vh.domains:
            raise here.at("domains").error("must not be empty")
        for j, domain in enumerate(vh.domains):
            check_domain(here.at("domains").at(j), domain)
        routes = []
        for k, r in enumerate(vh.routes):
            at = here.at("routes").at(k)
            match = route_match(at.at("match"), r.match)
            if match is None:
                continue
            check(at.at("match"), RouteMatch, match)
            info = _action(at, r, vh, listener_msd, match)
            if info is not None:
                routes.append(info)
        hosts.append(VirtualHostInfo(vh.name, tuple(d.lower() for d in vh.domains),
                                     tuple(routes)))
    return tuple(hosts)
