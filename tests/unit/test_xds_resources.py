"""xDS resources: decode, validate (every NACK names the resource and the field) and
references, on real protos (no server)."""

from __future__ import annotations

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from envoy.service.discovery.v3 import discovery_pb2
from google.protobuf import any_pb2, struct_pb2

from meshclient.errors import PolicyError
from meshclient.xds import resources as R

from .xds_build import (
    LISTENER_NAME,
    V1,
    V2,
    assignment,
    cluster,
    hcm,
    listener,
    pack,
    route_config,
)


def nack(type_url: str, message: object) -> str:
    with pytest.raises(PolicyError) as info:
        R.validate(type_url, message)
    return str(info.value)


def test_type_urls_are_the_v3_ones() -> None:
    assert R.LISTENER == "type.googleapis.com/envoy.config.listener.v3.Listener"
    assert R.ROUTE == "type.googleapis.com/envoy.config.route.v3.RouteConfiguration"
    assert R.CLUSTER == "type.googleapis.com/envoy.config.cluster.v3.Cluster"
    assert R.ENDPOINT == "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment"


def test_decode_names_each_type() -> None:
    assert R.decode(R.LISTENER, pack(listener()))[0] == LISTENER_NAME
    assert R.decode(R.ROUTE, pack(route_config()))[0] == "r1"
    assert R.decode(R.CLUSTER, pack(cluster()))[0] == V1
    assert R.decode(R.ENDPOINT, pack(assignment()))[0] == V1


def test_decode_unwraps_the_resource_wrapper() -> None:
    wrapped = discovery_pb2.Resource(name="r1")
    wrapped.resource.CopyFrom(pack(route_config()))
    name, msg = R.decode(R.ROUTE, pack(wrapped))
    assert name == "r1" and isinstance(msg, route_pb2.RouteConfiguration)


@pytest.mark.parametrize(("type_url", "value", "message"), [
    (R.CLUSTER, pack(route_config()), "must hold envoy.config.cluster.v3.Cluster"),
    (R.ROUTE, any_pb2.Any(type_url=R.ROUTE, value=b"\xff\xff\xff"), "is not a valid"),
    ("type.googleapis.com/envoy.config.listener.v2.Listener", pack(listener()),
     "type_url is not a supported xDS resource type"),
    (R.CLUSTER, pack(cluster_pb2.Cluster()), "cluster without a name"),
])
def test_decode_refuses_bad_input(type_url: str, value: any_pb2.Any, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        R.decode(type_url, value)


def test_references_follow_the_chain() -> None:
    assert R.references(R.LISTENER, listener()) == {(R.ROUTE, "r1")}
    rc = route_config()
    w = rc.virtual_hosts[0].routes[0].route
    w.ClearField("cluster")
    for name in (V1, V2):
        w.weighted_clusters.clusters.add(name=name).weight.value = 1
    mirror = w.request_mirror_policies.add(cluster="shadow")
    assert mirror.cluster == "shadow"
    assert R.references(R.ROUTE, rc) == {(R.CLUSTER, V1), (R.CLUSTER, V2),
                                         (R.CLUSTER, "shadow")}
    c = cluster()
    assert R.references(R.CLUSTER, c) == {(R.ENDPOINT, V1)}
    c.eds_cluster_config.service_name = "eds-name"
    assert R.references(R.CLUSTER, c) == {(R.ENDPOINT, "eds-name")}
    assert R.references(R.ENDPOINT, assignment()) == set()


def test_inline_route_config_references_clusters() -> None:
    h = hcm(rds=None)
    h.route_config.CopyFrom(route_config(cluster=V2))
    assert R.references(R.LISTENER, listener(manager=h)) == {(R.CLUSTER, V2)}


def test_server_listener_is_accepted_and_needs_nothing() -> None:
    from envoy.config.listener.v3 import listener_pb2

    server = listener_pb2.Listener(name="inbound")
    server.address.socket_address.address = "0.0.0.0"
    R.validate(R.LISTENER, server)
    assert R.references(R.LISTENER, server) == set()


# --- NACK cases: each names the resource and the field ---------------------------------

def _listener_with(manager: object) -> object:
    return listener(manager=manager)


def test_listener_nacks() -> None:
    from envoy.config.listener.v3 import listener_pb2

    assert "listener 'x': api_listener is required" in nack(
        R.LISTENER, listener_pb2.Listener(name="x"))
    no_router = hcm()
    del no_router.http_filters[-1]
    assert "http_filters: the router filter is required" in nack(
        R.LISTENER, _listener_with(no_router))
    router_first = hcm(extra=[("r0", router_pb2.Router(), False)])
    assert "http_filters[0]: the router filter must be the last filter" in nack(
        R.LISTENER, _listener_with(router_first))
    unknown = hcm(extra=[("authz", struct_pb2.Struct(), False)])
    text = nack(R.LISTENER, _listener_with(unknown))
    assert f"listener '{LISTENER_NAME}'" in text and "http_filters[0]" in text
    assert "'google.protobuf.Struct' is not supported and not optional" in text
    dup = hcm(extra=[("router", struct_pb2.Struct(), True)])
    assert "duplicate filter name: 'router'" in nack(R.LISTENER, _listener_with(dup))
    not_ads = hcm()
    not_ads.rds.config_source.path = "/etc/routes.yaml"
    assert "rds.config_source: must be ads or self" in nack(R.LISTENER, _listener_with(not_ads))
    neither = hcm(rds=None)
    assert "rds or route_config is required" in nack(R.LISTENER, _listener_with(neither))
    wrong = listener()
    wrong.api_listener.api_listener.CopyFrom(pack(router_pb2.Router()))
    assert "api_listener.api_listener: must hold" in nack(R.LISTENER, wrong)


def test_unknown_optional_filter_is_ignored() -> None:
    R.validate(R.LISTENER, _listener_with(hcm(extra=[("authz", struct_pb2.Struct(), True)])))


def test_bad_fault_filter_is_nacked() -> None:
    f = fault_pb2.HTTPFault()
    f.abort.http_status = 700
    f.abort.percentage.numerator = 10
    assert "http_filters[0].typed_config.abort.http_status: must be between 200 and 599: 700" \
        in nack(R.LISTENER, _listener_with(hcm(fault=f)))


@pytest.mark.parametrize(("edit", "message"), [
    (lambda r: r.match.safe_regex.__setattr__("regex", "(["),
     "virtual_hosts[0].routes[0].match: path.regex is not a valid regular expression"),
    (lambda r: r.match.ClearField("prefix"), "routes[0].match: a path specifier"),
    (lambda r: r.match.headers.add(name="x", range_match={"start": 1, "end": 2}),
     "routes[0].match.headers[0].range_match: is not supported"),
    (lambda r: (r.match.headers.add(name="x", exact_match="a"),
                r.match.headers.add(name="x", prefix_match="b")),
     "routes[0].match.headers[1]: more than one matcher for header 'x'"),
    (lambda r: r.route.weighted_clusters.clusters.add(name=V1),
     "routes[0].route.weighted_clusters.clusters: weights must add up to between 1"),
    (lambda r: r.route.__setattr__("cluster", ""), "routes[0].route.cluster: must not be empty"),
    (lambda r: r.route.timeout.__setattr__("seconds", -1),
     "routes[0].route.timeout: must be a non-negative duration"),
    (lambda r: (r.route.retry_policy.__setattr__("retry_on", "retriable-status-codes"),
                r.route.retry_policy.retriable_status_codes.append(99)),
     "routes[0].route.retry_policy.retriable_status_codes[0]: must be an HTTP status"),
    (lambda r: r.route.retry_policy.retry_back_off.max_interval.__setattr__("seconds", 1),
     "retry_back_off.base_interval: must be greater than 0"),
    (lambda r: r.direct_response.__setattr__("status", 99),
     "routes[0].direct_response.status: must be between 200 and 599"),
    (lambda r: r.match.headers.add(name="bad header", exact_match="a"),
     "headers name is not a valid header name"),
])
def test_route_nacks_name_the_field(edit: object, message: str) -> None:
    rc = route_config()
    edit(rc.virtual_hosts[0].routes[0])  # type: ignore[operator]
    text = nack(R.ROUTE, rc)
    assert text.startswith("route_config 'r1': ") and message in text, text


def test_bad_domain_is_nacked() -> None:
    rc = route_config(domains=("a.*.com",))
    assert "virtual_hosts[0].domains[0]: a '*' may only start or end a domain" in nack(
        R.ROUTE, rc)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda c: c.__setattr__("type", cluster_pb2.Cluster.ORIGINAL_DST),
     "cluster 'outbound|8080|v1|users.default.svc.cluster.local': type: must be EDS, STATIC, "
     "LOGICAL_DNS or STRICT_DNS, not ORIGINAL_DST"),
    (lambda c: c.__setattr__("type", cluster_pb2.Cluster.LOGICAL_DNS),
     "load_assignment: a DNS cluster needs exactly one endpoint, not 0"),
    (lambda c: c.__setattr__("lb_policy", cluster_pb2.Cluster.MAGLEV),
     "lb_policy: MAGLEV is not supported"),
    (lambda c: c.eds_cluster_config.eds_config.__setattr__("path", "/x"),
     "eds_cluster_config.eds_config: must be ads or self"),
    (lambda c: c.outlier_detection.max_ejection_percent.__setattr__("value", 101),
     "outlier_detection.max_ejection_percent: must be at most 100: 101"),
    (lambda c: (c.outlier_detection.base_ejection_time.__setattr__("seconds", 60),
                c.outlier_detection.max_ejection_time.__setattr__("seconds", 10)),
     "outlier_detection.max_ejection_time: must not be less than base_ejection_time"),
    (lambda c: c.circuit_breakers.thresholds.add().max_requests.__setattr__("value", 0),
     "circuit_breakers.thresholds[0].max_requests: must be between 1 and 1000000: 0"),
    (lambda c: c.common_lb_config.healthy_panic_threshold.__setattr__("value", 150),
     "common_lb_config.healthy_panic_threshold: must be between 0 and 100: 150"),
    (lambda c: c.load_balancing_policy.policies.add().typed_extension_config.typed_config
     .CopyFrom(pack(struct_pb2.Struct())),
     "load_balancing_policy.policies: names no load balancing policy meshclient supports"),
])
def test_cluster_nacks_name_the_field(edit: object, message: str) -> None:
    c = cluster()
    edit(c)  # type: ignore[operator]
    text = nack(R.CLUSTER, c)
    assert message in text, text


def test_tls_with_inline_bytes_or_sds_is_nacked() -> None:
    ctx = tls_pb2.UpstreamTlsContext()
    ctx.common_tls_context.tls_certificates.add().certificate_chain.inline_bytes = b"PEM"
    c = cluster()
    c.transport_socket.name = "envoy.transport_sockets.tls"
    c.transport_socket.typed_config.CopyFrom(pack(ctx))
    assert ("transport_socket.typed_config.common_tls_context.tls_certificates[0]"
            ".certificate_chain: must be a filename") in nack(R.CLUSTER, c)
    ctx = tls_pb2.UpstreamTlsContext()
    ctx.common_tls_context.tls_certificate_sds_secret_configs.add(name="default")
    c.transport_socket.typed_config.CopyFrom(pack(ctx))
    assert "SDS secrets are not supported" in nack(R.CLUSTER, c)
    ctx = tls_pb2.UpstreamTlsContext()
    ctx.common_tls_context.tls_certificate_provider_instance.instance_name = "default"
    c.transport_socket.typed_config.CopyFrom(pack(ctx))
    assert "certificate provider 'default' names no certificate_file" in nack(R.CLUSTER, c)


@pytest.mark.parametrize(("edit", "message"), [
    (lambda a: a.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.__setattr__(
        "port_value", 0), "endpoints[0].lb_endpoints[0].endpoint.address.socket_address"
     ".port_value: must be a port between 1 and 65535: 0"),
    (lambda a: a.endpoints[0].lb_endpoints[0].load_balancing_weight.__setattr__("value", 0),
     "lb_endpoints[0].load_balancing_weight: must be between 1 and 65535: 0"),
    (lambda a: a.endpoints[0].__setattr__("priority", 2),
     "endpoints: priorities must run from 0 without gaps: [2]"),
    (lambda a: a.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.__setattr__(
        "address", ""), "socket_address: an address is required"),
])
def test_endpoint_nacks_name_the_field(edit: object, message: str) -> None:
    a = assignment()
    edit(a)  # type: ignore[operator]
    text = nack(R.ENDPOINT, a)
    assert text.startswith(f"cluster_load_assignment '{V1}': ") and message in text, text
