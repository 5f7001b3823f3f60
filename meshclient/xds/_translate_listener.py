"""LDS: a client-side (API) listener and its `HttpConnectionManager`, read as gRPC's xDS
client reads it (gRFC A27, A39).

- The route configuration comes from RDS (`rds`, whose config source must be `ads` or
  `self`) or inline (`route_config`); `scoped_routes` is refused.
- HTTP filters: the router must be the last filter, and there must be one; the fault filter
  becomes the service's fault injection; any other filter is ignored when `is_optional`,
  and refused (NACK) when required, since meshclient cannot apply it.
- `common_http_protocol_options.max_stream_duration` is the default deadline of the
  listener's routes (gRFC A31).

A listener with an address and no API listener is a server-side listener: accepted, and
not used by a client.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2 as hcm_pb2,
)

from ..policy import FaultPolicy
from ._translate_common import Where, check, seconds, type_name, unpack
from ._translate_fault import FAULT, fault_document

HCM = hcm_pb2.HttpConnectionManager.DESCRIPTOR.full_name
ROUTER = router_pb2.Router.DESCRIPTOR.full_name


@dataclass(frozen=True, slots=True)
class ListenerInfo:
    """What a client takes from one listener."""

    rds_name: str | None  # the RouteConfiguration to subscribe to, or None when inline
    inline: route_pb2.RouteConfiguration | None
    fault: dict[str, Any] | None  # FaultPolicy document of the fault filter
    max_stream_duration: float | None  # default deadline of the routes (0: none)


def _config_source(where: Where, source: Any) -> None:
    if source.WhichOneof("config_source_specifier") not in ("ads", "self"):
        raise where.error("must be ads or self (the xDS server's own stream)")


def _filters(where: Where, hcm: hcm_pb2.HttpConnectionManager) -> dict[str, Any] | None:
    fault: dict[str, Any] | None = None
    seen: set[str] = set()
    last = len(hcm.http_filters) - 1
    if last < 0:
        raise where.error("the router filter is required (no http_filters)")
    for i, f in enumerate(hcm.http_filters):
        here = where.at(i)
        if not f.name:
            raise here.at("name").error("must not be empty")
        if f.name in seen:
            raise here.at("name").error(f"duplicate filter name: {f.name!r}")
        seen.add(f.name)
        if not f.HasField("typed_config"):
            if f.is_optional:
                continue
            raise here.error(f"filter {f.name!r} needs typed_config (config_discovery is "
                             "not supported)")
        kind = type_name(f.typed_config)
        if kind == ROUTER:
            if i != last:
                raise here.error("the router filter must be the last filter")
            continue
        if i == last:
            raise here.error(f"the last filter must be the router, not {kind!r}")
        if kind == FAULT:
            if not f.disabled:
                fault = fault_document(here.at("typed_config"),
                                       unpack(here.at("typed_config"), f.typed_config,
                                              fault_pb2.HTTPFault))
                if fault is not None:
                    check(here.at("typed_config"), FaultPolicy, fault)
            continue
        if not f.is_optional:
            raise here.error(f"filter {f.name!r} of type {kind!r} is not supported and not "
                             "optional")
    return fault


def parse_listener(name: str, msg: listener_pb2.Listener) -> ListenerInfo | None:
    """The client view of `msg`, None for a server-side listener; raises PolicyError."""
    where = Where("listener", name)
    if not msg.HasField("api_listener") or not msg.api_listener.HasField("api_listener"):
        if msg.HasField("address"):
            return None
        raise where.error("api_listener is required (neither api_listener nor address set)")
    here = where.at("api_listener.api_listener")
    hcm = unpack(here, msg.api_listener.api_listener, hcm_pb2.HttpConnectionManager)
    kind = hcm.WhichOneof("route_specifier")
    rds_name: str | None = None
    inline: route_pb2.RouteConfiguration | None = None
    if kind == "rds":
        _config_source(here.at("rds.config_source"), hcm.rds.config_source)
        if not hcm.rds.route_config_name:
            raise here.at("rds.route_config_name").error("must not be empty")
        rds_name = hcm.rds.route_config_name
    elif kind == "route_config":
        inline = hcm.route_config
    else:
        raise here.error(f"rds or route_config is required, not {kind or 'none'}")
    fault = _filters(here.at("http_filters"), hcm)
    msd: float | None = None
    options = hcm.common_http_protocol_options
    if hcm.HasField("common_http_protocol_options") and options.HasField("max_stream_duration"):
        msd = seconds(here.at("common_http_protocol_options.max_stream_duration"),
                      options.max_stream_duration) or None
    return ListenerInfo(rds_name, inline, fault, msd)
