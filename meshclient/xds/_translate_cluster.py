"""CDS: a `Cluster` -> a meshclient service section (balancer, outlier, limits, tls).

- Discovery: `EDS` (its `eds_config` must be `ads` or `self`; the assignment is named by
  `eds_cluster_config.service_name`, else the cluster name), `STATIC` with an inline
  `load_assignment`, or `LOGICAL_DNS` / `STRICT_DNS` with one host name and port, which
  becomes meshclient's `dns://host:port` discovery (gRFC A27's logical DNS cluster);
  other types (original destination, aggregate) are refused.
- `lb_policy`: ROUND_ROBIN -> `round-robin`, LEAST_REQUEST -> `p2c-least-request`
  (Envoy's default two choices), RANDOM -> `random`; others are refused.
  `load_balancing_policy`, when set, wins: its first policy meshclient knows is used
  (round_robin, least_request, random, wrr_locality's endpoint picking policy, or a
  `TypedStruct` whose `type_url` is `meshclient.p2c_ewma`, meshclient's own P2C over
  peak-EWMA), and none known is an error (gRFC A52).
- `outlier_detection` -> `outlier` (consecutive 5xx, ejection times and share, with
  Envoy's defaults); absent: the local policy's outlier settings.
- `circuit_breakers.thresholds` (DEFAULT priority) `max_requests` -> `limits.max_concurrent`.
- `common_lb_config.healthy_panic_threshold` -> `balancer.panic_threshold`.
- `transport_socket` with `UpstreamTlsContext` -> `tls` (see `_translate_tls.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import base_pb2
from envoy.extensions.load_balancing_policies.wrr_locality.v3 import wrr_locality_pb2

from ..policy import BalancerPolicy, DiscoveryPolicy, OutlierPolicy, TlsPolicy
from ._translate_common import Where, check, seconds, type_name, unpack
from ._translate_endpoint import endpoint_documents
from ._translate_tls import tls_document

C = cluster_pb2.Cluster
LB_POLICIES = {C.ROUND_ROBIN: "round-robin", C.LEAST_REQUEST: "p2c-least-request",
               C.RANDOM: "random"}
_POLICY_TYPES = {
    "envoy.extensions.load_balancing_policies.round_robin.v3.RoundRobin": "round-robin",
    "envoy.extensions.load_balancing_policies.least_request.v3.LeastRequest":
        "p2c-least-request",
    "envoy.extensions.load_balancing_policies.random.v3.Random": "random",
    "meshclient.p2c_ewma": "p2c-ewma",
}
WRR_LOCALITY = "envoy.extensions.load_balancing_policies.wrr_locality.v3.WrrLocality"


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    eds_name: str | None  # the ClusterLoadAssignment to subscribe to (None: STATIC)
    section: dict[str, Any]  # service sections: balancer, outlier, limits, tls, endpoints


def _enum(enum: Any, value: int) -> str:
    try:
        return str(enum.Name(value))
    except ValueError:  # a value this version of the protos does not know
        return str(value)


def _dns(where: Where, msg: cluster_pb2.Cluster) -> str:
    """A DNS cluster's one host name and port, as meshclient's `dns://` discovery."""
    found = [lb for loc in msg.load_assignment.endpoints for lb in loc.lb_endpoints]
    if len(found) != 1:
        raise where.error(f"a DNS cluster needs exactly one endpoint, not {len(found)}")
    sa = found[0].endpoint.address.socket_address
    if not sa.address or not 0 < sa.port_value < 65536:
        raise where.error(f"needs a host name and a port between 1 and 65535: "
                          f"{sa.address!r}:{sa.port_value}")
    url = f"dns://{sa.address}:{sa.port_value}"
    check(where, DiscoveryPolicy, {"url": url})
    return url


def _policy_list(where: Where, policy: Any, depth: int = 0) -> str:
    for i, p in enumerate(policy.policies):
        config = p.typed_extension_config.typed_config
        kind = type_name(config)
        if kind in _POLICY_TYPES:
            return _POLICY_TYPES[kind]
        if kind == WRR_LOCALITY and depth < 4:
            inner = unpack(where.at(i), config, wrr_locality_pb2.WrrLocality)
            return _policy_list(where.at(i).at("endpoint_picking_policy"),
                                inner.endpoint_picking_policy, depth + 1)
    raise where.error("names no load balancing policy meshclient supports "
                      f"({', '.join(_POLICY_TYPES)})")


def _outlier(where: Where, o: Any) -> dict[str, Any]:
    def u32(name: str, default: int) -> int:
        return int(getattr(o, name).value) if o.HasField(name) else default

    consecutive = u32("consecutive_5xx", 5) if u32("enforcing_consecutive_5xx", 100) else 0
    base = seconds(where.at("base_ejection_time"), o.base_ejection_time) if o.HasField(
        "base_ejection_time") else 30.0
    if base <= 0:
        raise where.at("base_ejection_time").error("must be greater than 0")
    if o.HasField("max_ejection_time"):
        ceiling = seconds(where.at("max_ejection_time"), o.max_ejection_time)
        if ceiling < base:
            raise where.at("max_ejection_time").error(
                f"must not be less than base_ejection_time ({base:g}s): {ceiling:g}s")
    else:
        ceiling = max(300.0, base)  # Envoy: 300 s or base_ejection_time, the larger
    percent = u32("max_ejection_percent", 10)
    if percent > 100:
        raise where.at("max_ejection_percent").error(f"must be at most 100: {percent}")
    return {"consecutive_failures": min(consecutive, 10_000), "base_ejection": base,
            "max_ejection": ceiling, "max_ejected_percent": percent}


def parse_cluster(name: str, msg: cluster_pb2.Cluster, providers: Any = None,
                  check_tls: bool = True) -> ClusterInfo:
    """The service section of `msg`; raises PolicyError naming the resource and field."""
    where = Where("cluster", name)
    kind = msg.WhichOneof("cluster_discovery_type")
    eds_name: str | None = None
    section: dict[str, Any] = {}
    if kind == "type" and msg.type == C.EDS:
        source = msg.eds_cluster_config.eds_config
        if source.WhichOneof("config_source_specifier") not in ("ads", "self"):
            raise where.at("eds_cluster_config.eds_config").error(
                "must be ads or self (the xDS server's own stream)")
        eds_name = msg.eds_cluster_config.service_name or msg.name
    elif kind == "type" and msg.type == C.STATIC:
        section["endpoints"] = endpoint_documents(name, msg.load_assignment)
    elif kind == "type" and msg.type in (C.LOGICAL_DNS, C.STRICT_DNS):
        section["discovery"] = _dns(where.at("load_assignment"), msg)
    else:
        shown = _enum(C.DiscoveryType, msg.type) if kind == "type" else kind
        raise where.at("type").error(f"must be EDS, STATIC, LOGICAL_DNS or STRICT_DNS, not "
                                     f"{shown}")
    balancer: dict[str, Any] = {}
    if msg.HasField("load_balancing_policy"):
        balancer["kind"] = _policy_list(where.at("load_balancing_policy.policies"),
                                        msg.load_balancing_policy)
    elif msg.lb_policy in LB_POLICIES:
        balancer["kind"] = LB_POLICIES[msg.lb_policy]
    else:
        raise where.at("lb_policy").error(
            f"{_enum(C.LbPolicy, msg.lb_policy)} is not supported (ROUND_ROBIN, LEAST_REQUEST "
            "or RANDOM, or load_balancing_policy)")
    common = msg.common_lb_config
    if msg.HasField("common_lb_config") and common.HasField("healthy_panic_threshold"):
        value = common.healthy_panic_threshold.value
        if not 0 <= value <= 100:
            raise where.at("common_lb_config.healthy_panic_threshold").error(
                f"must be between 0 and 100: {value:g}")
        balancer["panic_threshold"] = value
    check(where, BalancerPolicy, balancer)
    section["balancer"] = balancer
    if msg.HasField("outlier_detection"):
        section["outlier"] = _outlier(where.at("outlier_detection"), msg.outlier_detection)
        check(where.at("outlier_detection"), OutlierPolicy, section["outlier"])
    for i, t in enumerate(msg.circuit_breakers.thresholds):
        if t.priority == base_pb2.DEFAULT and t.HasField("max_requests"):
            value = t.max_requests.value
            if not 1 <= value <= 1_000_000:
                raise where.at("circuit_breakers.thresholds").at(i).at("max_requests").error(
                    f"must be between 1 and 1000000: {value}")
            section["limits"] = {"max_concurrent": value}
            break
    if check_tls and msg.HasField("transport_socket"):
        tls = tls_document(where.at("transport_socket"), msg.transport_socket, providers)
        if tls is not None:
            check(where.at("transport_socket"), TlsPolicy, tls)
            section["tls"] = tls
            section["scheme"] = "https"
    return ClusterInfo(eds_name, section)
