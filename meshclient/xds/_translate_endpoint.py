"""EDS: a `ClusterLoadAssignment` -> meshclient endpoint documents (gRFC A27).

Each LB endpoint of a locality becomes `{"address", "weight", "zone", "priority"}`:
`load_balancing_weight` (default 1) is the weight, the locality's `zone` the zone, its
`priority` the priority group. As in gRPC, only endpoints whose `health_status` is
UNKNOWN or HEALTHY are used, a locality whose `load_balancing_weight` is 0 or unset is
left out, and priorities must run from 0 without gaps. Locality weights, `drop_overloads`
and endpoint host names are not used.
"""

from __future__ import annotations

from typing import Any

from envoy.config.core.v3 import health_check_pb2
from envoy.config.endpoint.v3 import endpoint_pb2

from ..policy import EndpointSpec
from ._translate_common import Where, check

USABLE = (health_check_pb2.UNKNOWN, health_check_pb2.HEALTHY)
MAX_WEIGHT = 65535


def _address(where: Where, lb: Any) -> str:
    sa = lb.endpoint.address.socket_address
    if not lb.endpoint.address.HasField("socket_address") or not sa.address:
        raise where.at("endpoint.address.socket_address").error("an address is required")
    if sa.WhichOneof("port_specifier") != "port_value" or not 0 < sa.port_value < 65536:
        raise where.at("endpoint.address.socket_address.port_value").error(
            f"must be a port between 1 and 65535: {sa.port_value}")
    host = f"[{sa.address}]" if ":" in sa.address else sa.address
    return f"{host}:{sa.port_value}"


def endpoint_documents(name: str, msg: endpoint_pb2.ClusterLoadAssignment,
                       ) -> list[dict[str, Any]]:
    """The usable endpoints of `msg`; raises PolicyError naming the resource and field."""
    out: list[dict[str, Any]] = []
    priorities: set[int] = set()
    for i, loc in enumerate(msg.endpoints):
        where = Where("cluster_load_assignment", name, f"endpoints[{i}]")
        if not loc.HasField("load_balancing_weight") or loc.load_balancing_weight.value == 0:
            continue
        priorities.add(loc.priority)
        for j, lb in enumerate(loc.lb_endpoints):
            here = where.at("lb_endpoints").at(j)
            address = _address(here, lb)
            weight = lb.load_balancing_weight.value if lb.HasField("load_balancing_weight") else 1
            if not 1 <= weight <= MAX_WEIGHT:
                raise here.at("load_balancing_weight").error(
                    f"must be between 1 and {MAX_WEIGHT}: {weight}")
            if lb.health_status not in USABLE:
                continue
            doc: dict[str, Any] = {"address": address, "weight": weight,
                                   "priority": loc.priority}
            if loc.locality.zone:
                doc["zone"] = loc.locality.zone
            meta = {k: v for k, v in (("region", loc.locality.region),
                                      ("sub_zone", loc.locality.sub_zone)) if v}
            if meta:
                doc["metadata"] = meta
            check(here, EndpointSpec, doc)
            out.append(doc)
    if priorities and sorted(priorities) != list(range(len(priorities))):
        raise Where("cluster_load_assignment", name, "endpoints").error(
            f"priorities must run from 0 without gaps: {sorted(priorities)}")
    if any(p > 65535 for p in priorities):
        raise Where("cluster_load_assignment", name, "endpoints").error(
            "priorities must be at most 65535")
    return out
