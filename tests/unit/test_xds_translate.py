"""xDS -> policy translation: every mapped field, on real protos, into a document
`Policy.from_dict` accepts; routing checked with meshclient's own pure route decision."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx
import pytest
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.core.v3 import health_check_pb2
from envoy.config.route.v3 import route_components_pb2, route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from envoy.extensions.load_balancing_policies.least_request.v3 import least_request_pb2
from envoy.extensions.load_balancing_policies.wrr_locality.v3 import wrr_locality_pb2
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2
from xds.type.v3 import typed_struct_pb2

from meshclient.policy import Policy
from meshclient.routing import route
from meshclient.testing import SeededRng
from meshclient.xds import resources as R

from .xds_build import (
    HOST,
    LISTENER_NAME,
    V1,
    V2,
    assignment,
    cluster,
    hcm,
    listener,
    pack,
    route_config,
    state,
    world,
)

S1 = "outbound_8080_v1_users.default.svc.cluster.local"
S2 = "outbound_8080_v2_users.default.svc.cluster.local"
WANTED = {LISTENER_NAME: HOST}


def translate(st: R.XdsState, wanted: dict[str, str] = WANTED) -> tuple[dict[str, Any], Policy]:
    doc = R.translate(st, wanted)
    return doc, Policy.from_dict(doc)


def first_rule(rc: route_pb2.RouteConfiguration) -> Any:
    return rc.virtual_hosts[0].routes[0]


def go(policy: Policy, path: str = "/", rng: SeededRng | None = None,
       **headers: str) -> str:
    request = httpx.Request("GET", f"http://{HOST}:8080{path}", headers=headers)
    return route(request, policy.resolved[HOST], policy, rng or SeededRng(1)).destination.name


def test_listener_route_cluster_endpoint_become_services() -> None:
    doc, policy = translate(world())
    assert doc["services"][HOST]["routes"] == [
        {"match": {"path": {"prefix": "/"}}, "to": [{"service": S1, "weight": 1}]}]
    users = policy.resolved[S1]
    assert [e.address for e in users.endpoints] == ["127.0.0.2:8001"]
    assert users.balancer.kind == "round-robin"  # lb_policy's default, ROUND_ROBIN
    assert go(policy) == S1


def test_missing_listener_or_routes_give_no_service() -> None:
    st = world()
    assert R.translate(st, {"other:80": "other"}) == {"services": {}}
    st.routes.clear()
    assert R.translate(st, WANTED) == {"services": {}}


def test_missing_cluster_and_assignment_give_an_empty_service() -> None:
    doc, policy = translate(state(listener(), route_config()))
    assert doc["services"][S1] == {"endpoints": []}
    doc, policy = translate(state(listener(), route_config(), cluster()))
    assert policy.resolved[S1].endpoints == ()


def test_inline_route_config() -> None:
    h = hcm(rds=None)
    h.route_config.CopyFrom(route_config(cluster=V2))
    _, policy = translate(state(listener(manager=h), cluster(V2), assignment(V2)))
    assert go(policy) == S2


@pytest.mark.parametrize(("domains", "chosen"), [
    ([["*"], [f"{HOST}:8080"], ["*.svc.cluster.local:8080"]], 1),
    ([["*"], ["*.svc.cluster.local:8080"], ["users.*"]], 1),
    ([["*"], ["users.default.*"], ["users.*"]], 1),
    ([["*"], ["other"]], 0),
    ([[HOST], ["*"]], 1),  # "*" matches host:port; the host alone is tried only after
    ([[HOST], ["other"]], 0),  # nothing matches host:port
    ([[HOST.upper() + ":8080"], ["*"]], 0),
])
def test_virtual_host_most_specific_domain_wins(domains: list[list[str]], chosen: int) -> None:
    rc = route_pb2.RouteConfiguration(name="r1")
    names = []
    for i, ds in enumerate(domains):
        vh = rc.virtual_hosts.add(name=f"vh{i}", domains=ds)
        r = vh.routes.add()
        r.match.prefix = "/"
        r.route.cluster = f"c{i}"
        names.append(f"c{i}")
    doc, _ = translate(state(listener(), rc))
    assert doc["services"][HOST]["routes"][0]["to"][0]["service"] == names[chosen]


def test_no_virtual_host_matches_gives_no_routes() -> None:
    doc, _ = translate(world(route_config(domains=("other.example",))))
    assert doc["services"][HOST] == {"endpoints": [], "routes": []}


def test_weighted_clusters_split_and_sticky_header() -> None:
    rc = route_config()
    a = first_rule(rc).route
    a.ClearField("cluster")
    for name, weight in ((V1, 80), (V2, 20)):
        a.weighted_clusters.clusters.add(name=name).weight.value = weight
    a.hash_policy.add().header.header_name = "X-User"
    doc, policy = translate(world(rc, cluster(), assignment(), cluster(V2), assignment(V2)))
    rule = doc["services"][HOST]["routes"][0]
    assert rule["to"] == [{"service": S1, "weight": 80}, {"service": S2, "weight": 20}]
    assert rule["hash_on"] == "x-user"
    rng = SeededRng(3)
    counts = Counter(go(policy, rng=rng) for _ in range(2000))
    assert 0.76 < counts[S1] / 2000 < 0.84
    assert len({go(policy, rng=SeededRng(i), **{"x-user": "ann"}) for i in range(20)}) == 1


def test_huge_weights_are_scaled_down_together() -> None:
    rc = route_config()
    a = first_rule(rc).route
    a.ClearField("cluster")
    for name, weight in ((V1, 3_000_000_000), (V2, 1_000_000_000)):
        a.weighted_clusters.clusters.add(name=name).weight.value = weight
    doc, _ = translate(world(rc))
    assert [d["weight"] for d in doc["services"][HOST]["routes"][0]["to"]] == [1_000_000, 333_333]


def test_header_query_and_path_matchers() -> None:
    rc = route_config()
    vh = rc.virtual_hosts[0]
    special = route_pb2.RouteConfiguration().virtual_hosts.add().routes.add()
    special.match.path = "/api"
    for kwargs in ({"name": "x-exact", "exact_match": "a"},
                   {"name": "x-prefix", "prefix_match": "pre"},
                   {"name": "x-suffix", "suffix_match": "fix"},
                   {"name": "x-present", "present_match": True},
                   {"name": "x-regex", "safe_regex_match": {"regex": "[0-9]+"}},
                   {"name": "x-not", "exact_match": "no", "invert_match": True},
                   {"name": "x-has", "string_match": {"contains": "mid"}},
                   {"name": "x-case", "string_match": {"exact": "AbC", "ignore_case": True}}):
        special.match.headers.add(**kwargs)
    special.match.query_parameters.add(name="debug", present_match=True)
    special.route.cluster = V2
    vh.routes.insert(0, special)
    _, policy = translate(world(rc, cluster(), assignment(), cluster(V2), assignment(V2)))
    good = {"x-exact": "a", "x-prefix": "prefix", "x-suffix": "suffix", "x-present": "",
            "x-regex": "42", "x-not": "yes", "x-has": "amidst", "x-case": "aBc"}
    assert go(policy, "/api?debug=1", **good) == S2
    assert go(policy, "/api", **good) == S1  # no query parameter
    assert go(policy, "/api/x?debug=1", **good) == S1  # path is exact
    for name, bad in (("x-exact", "b"), ("x-prefix", "xpre"), ("x-suffix", "fixx"),
                      ("x-regex", "4a"), ("x-not", "no"), ("x-has", "mi-d"), ("x-case", "abd")):
        assert go(policy, "/api?debug=1", **{**good, name: bad}) == S1, name
    missing = dict(good)
    del missing["x-not"]  # an inverted value matcher needs the header (as gRPC)
    assert go(policy, "/api?debug=1", **missing) == S1


def test_case_insensitive_prefix_and_separated_prefix() -> None:
    rc = route_config()
    first = first_rule(rc)
    first.match.prefix = "/API"
    first.match.case_sensitive.value = False
    first.route.cluster = V2
    second = rc.virtual_hosts[0].routes.add()
    second.match.path_separated_prefix = "/v1"
    second.route.cluster = V1
    _, policy = translate(world(rc, cluster(), assignment(), cluster(V2), assignment(V2)))
    assert go(policy, "/api/users") == S2
    assert go(policy, "/v1/users") == S1 and go(policy, "/v1") == S1
    assert go(policy, "/v1x") == HOST  # no route: the host's own service (no endpoints)


def test_method_pseudo_header_and_skipped_routes() -> None:
    rc = route_config()  # the last route: "/" -> V1
    routes = rc.virtual_hosts[0].routes
    fallback = route_components_pb2.Route()
    fallback.CopyFrom(routes[0])
    del routes[:]
    header_cluster = routes.add()  # cluster_header: skipped, as gRPC does
    header_cluster.match.prefix = "/"
    header_cluster.route.cluster_header = "x-cluster"
    tls_only = routes.add()  # tls_context: a client cannot evaluate it, skipped
    tls_only.match.prefix = "/"
    tls_only.match.tls_context.presented.value = True
    tls_only.route.cluster = V2
    post = routes.add()
    post.match.prefix = "/"
    post.match.headers.add(name=":method", exact_match="POST")
    post.route.cluster = V2
    routes.append(fallback)
    doc, policy = translate(world(rc, cluster(), assignment(), cluster(V2), assignment(V2)))
    got = doc["services"][HOST]["routes"]
    assert [r["match"] for r in got] == [{"path": {"prefix": "/"}, "method": ["POST"]},
                                         {"path": {"prefix": "/"}}]
    assert go(policy) == S1
    request = httpx.Request("POST", f"http://{HOST}:8080/")
    assert route(request, policy.resolved[HOST], policy, SeededRng(1)).destination.name == S2


def test_runtime_fraction_draws_per_request() -> None:
    rc = route_config()
    first = first_rule(rc)
    first.match.runtime_fraction.default_value.numerator = 25
    first.route.cluster = V2
    rest = rc.virtual_hosts[0].routes.add()
    rest.match.prefix = "/"
    rest.route.cluster = V1
    doc, policy = translate(world(rc, cluster(), assignment(), cluster(V2), assignment(V2)))
    assert doc["services"][HOST]["routes"][0]["match"]["percent"] == 25
    rng = SeededRng(5)
    counts = Counter(go(policy, rng=rng) for _ in range(2000))
    assert 0.21 < counts[S2] / 2000 < 0.29


def test_timeout_retry_and_per_try_go_to_a_route_service() -> None:
    rc = route_config()
    a = first_rule(rc).route
    a.timeout.FromMilliseconds(2500)
    a.max_stream_duration.max_stream_duration.FromSeconds(4)
    p = a.retry_policy
    p.retry_on = "5xx,gateway-error,reset,connect-failure,retriable-status-codes,cancelled"
    p.retriable_status_codes.extend([429, 409])
    p.num_retries.value = 3
    p.per_try_timeout.FromMilliseconds(800)
    p.retry_back_off.base_interval.FromMilliseconds(50)
    doc, policy = translate(world(rc))
    target = doc["services"][HOST]["routes"][0]["to"][0]["service"]
    assert target.startswith(S1 + "-r")
    svc = policy.resolved[target]
    assert svc.timeout.total == 2.5 and svc.timeout.per_try == 0.8
    assert svc.retry.on == ("5xx", "gateway-error", "reset", "connect-error", "429", "409")
    assert svc.retry.attempts == 4
    assert (svc.retry.backoff.base, svc.retry.backoff.max) == (0.05, 0.5)
    assert [e.address for e in svc.endpoints] == ["127.0.0.2:8001"]
    assert go(policy) == target


def test_deadline_is_the_smallest_set_one_and_listener_default() -> None:
    h = hcm()
    h.common_http_protocol_options.max_stream_duration.FromSeconds(3)
    rc = route_config()
    first_rule(rc).route.max_stream_duration.max_stream_duration.FromSeconds(5)
    st = state(listener(manager=h), rc, cluster(), assignment())
    doc, policy = translate(st)
    assert policy.resolved[doc["services"][HOST]["routes"][0]["to"][0]["service"]
                           ].timeout.total == 3
    first_rule(rc).route.timeout.FromSeconds(0)  # 0: no limit from this field
    doc, _ = translate(state(listener(), rc, cluster(), assignment()))
    assert doc["services"][HOST]["routes"][0]["to"][0]["service"].startswith(S1 + "-r")


def test_per_try_without_route_timeout_fits_envoys_default() -> None:
    rc = route_config()
    first_rule(rc).route.retry_policy.per_try_timeout.FromSeconds(20)
    doc, policy = translate(world(rc))
    svc = policy.resolved[doc["services"][HOST]["routes"][0]["to"][0]["service"]]
    assert (svc.timeout.total, svc.timeout.per_try) == (15.0, 15.0)
    assert svc.retry.attempts == 1  # retry_on empty: nothing retried


def test_virtual_host_retry_policy_applies_when_the_route_has_none() -> None:
    rc = route_config()
    rc.virtual_hosts[0].retry_policy.retry_on = "5xx"
    doc, policy = translate(world(rc))
    svc = policy.resolved[doc["services"][HOST]["routes"][0]["to"][0]["service"]]
    assert svc.retry.on == ("5xx",) and svc.retry.attempts == 2


def test_mirror_and_fault_filters() -> None:
    f = fault_pb2.HTTPFault()
    f.delay.fixed_delay.FromMilliseconds(200)
    f.delay.percentage.numerator = 10
    f.abort.http_status = 503
    f.abort.percentage.numerator = 5000
    f.abort.percentage.denominator = 1  # TEN_THOUSAND: 50%
    rc = route_config()
    m = first_rule(rc).route.request_mirror_policies.add(cluster=V2)
    m.runtime_fraction.default_value.numerator = 30
    override = fault_pb2.HTTPFault()
    override.abort.http_status = 418
    override.abort.percentage.numerator = 100
    override.headers.add(name="x-fault", present_match=True)
    second = rc.virtual_hosts[0].routes.add()
    second.CopyFrom(first_rule(rc))
    second.ClearField("route")
    second.route.cluster = V1
    second.typed_per_filter_config["envoy.filters.http.fault"].CopyFrom(pack(override))
    st = state(listener(manager=hcm(fault=f)), rc, cluster(), assignment(), cluster(V2),
               assignment(V2))
    doc, policy = translate(st)
    host = doc["services"][HOST]
    assert host["fault"] == {"delay": {"percent": 10.0, "duration": 0.2},
                             "abort": {"percent": 50.0, "status": 503}}
    assert host["routes"][0]["mirror"] == {"to": S2, "percent": 30.0}
    assert host["routes"][1]["fault"] == {"abort": {"percent": 100.0, "status": 418},
                                          "header": "x-fault"}
    assert policy.resolved[HOST].fault is not None


def test_non_forwarding_actions_fail_in_place() -> None:
    rc = route_config()
    first_rule(rc).ClearField("route")
    first_rule(rc).direct_response.status = 404
    redirect = rc.virtual_hosts[0].routes.add()
    redirect.match.prefix = "/old"
    redirect.redirect.path_redirect = "/new"
    doc, policy = translate(world(rc))
    routes = doc["services"][HOST]["routes"]
    assert routes == [{"match": {"path": {"prefix": "/"}}},
                      {"match": {"path": {"prefix": "/old"}}}]
    assert go(policy, "/old") == HOST  # the host's own service: no endpoints, the call fails


@pytest.mark.parametrize(("lb", "kind"), [
    (cluster_pb2.Cluster.ROUND_ROBIN, "round-robin"),
    (cluster_pb2.Cluster.LEAST_REQUEST, "p2c-least-request"),
    (cluster_pb2.Cluster.RANDOM, "random"),
])
def test_lb_policy(lb: int, kind: str) -> None:
    _, policy = translate(world(None, cluster(lb_policy=lb), assignment()))
    assert policy.resolved[S1].balancer.kind == kind


def test_load_balancing_policy_first_known_wins_and_p2c_ewma_stays_available() -> None:
    c = cluster(lb_policy=cluster_pb2.Cluster.RANDOM)
    unknown = typed_struct_pb2.TypedStruct(type_url="type.googleapis.com/acme.Magic")
    c.load_balancing_policy.policies.add().typed_extension_config.typed_config.CopyFrom(
        pack(unknown))
    ewma = typed_struct_pb2.TypedStruct(type_url="type.googleapis.com/meshclient.p2c_ewma")
    c.load_balancing_policy.policies.add().typed_extension_config.typed_config.CopyFrom(
        pack(ewma))
    _, policy = translate(world(None, c, assignment()))
    assert policy.resolved[S1].balancer.kind == "p2c-ewma"
    c = cluster()
    wrr = wrr_locality_pb2.WrrLocality()
    wrr.endpoint_picking_policy.policies.add().typed_extension_config.typed_config.CopyFrom(
        pack(least_request_pb2.LeastRequest()))
    c.load_balancing_policy.policies.add().typed_extension_config.typed_config.CopyFrom(
        pack(wrr))
    _, policy = translate(world(None, c, assignment()))
    assert policy.resolved[S1].balancer.kind == "p2c-least-request"


def test_outlier_breakers_panic_threshold() -> None:
    c = cluster()
    o = c.outlier_detection
    o.consecutive_5xx.value = 3
    o.base_ejection_time.FromSeconds(10)
    o.max_ejection_percent.value = 40
    c.circuit_breakers.thresholds.add(priority=1).max_requests.value = 5  # HIGH: not used
    c.circuit_breakers.thresholds.add().max_requests.value = 64
    c.common_lb_config.healthy_panic_threshold.value = 25
    _, policy = translate(world(None, c, assignment()))
    svc = policy.resolved[S1]
    assert (svc.outlier.consecutive_failures, svc.outlier.base_ejection,
            svc.outlier.max_ejection, svc.outlier.max_ejected_percent) == (3, 10, 300, 40)
    assert svc.limits is not None and svc.limits.max_concurrent == 64
    assert svc.balancer.panic_threshold == 25
    c = cluster()
    c.outlier_detection.enforcing_consecutive_5xx.value = 0
    _, policy = translate(world(None, c, assignment()))
    assert policy.resolved[S1].outlier.consecutive_failures == 0
    assert policy.resolved[S1].outlier.max_ejected_percent == 10  # Envoy's default


def test_no_outlier_detection_leaves_the_local_setting() -> None:
    doc, _ = translate(world())
    assert "outlier" not in doc["services"][S1]


def test_upstream_tls_from_files_and_certificate_providers() -> None:
    ctx = tls_pb2.UpstreamTlsContext(sni="users.internal")
    cert = ctx.common_tls_context.tls_certificates.add()
    cert.certificate_chain.filename = "/certs/cert.pem"
    cert.private_key.filename = "/certs/key.pem"
    ctx.common_tls_context.validation_context.trusted_ca.filename = "/certs/ca.pem"
    c = cluster()
    c.transport_socket.name = "envoy.transport_sockets.tls"
    c.transport_socket.typed_config.CopyFrom(pack(ctx))
    _, policy = translate(world(None, c, assignment()))
    tls = policy.resolved[S1].tls
    assert tls is not None and policy.resolved[S1].scheme == "https"
    assert (tls.cert, tls.key, tls.ca, tls.server_name) == (
        "/certs/cert.pem", "/certs/key.pem", "/certs/ca.pem", "users.internal")
    # Istio's proxyless shape: certificate provider instances and a SPIFFE SAN
    ctx = tls_pb2.UpstreamTlsContext()
    common = ctx.common_tls_context
    common.tls_certificate_provider_instance.instance_name = "default"
    combined = common.combined_validation_context
    combined.validation_context_certificate_provider_instance.instance_name = "default"
    combined.default_validation_context.match_subject_alt_names.add(
        exact="spiffe://cluster.local/ns/default/sa/users")
    c.transport_socket.typed_config.CopyFrom(pack(ctx))
    providers = {"default": {"plugin_name": "file_watcher", "config": {
        "certificate_file": "/var/run/cert.pem", "private_key_file": "/var/run/key.pem",
        "ca_certificate_file": "/var/run/root.pem"}}}
    R.validate(R.CLUSTER, c, providers)
    doc = R.translate(_with_cluster(c), WANTED, providers)
    tls = Policy.from_dict(doc).resolved[S1].tls
    assert tls is not None
    assert (tls.cert, tls.key, tls.ca, tls.spiffe_id) == (
        "/var/run/cert.pem", "/var/run/key.pem", "/var/run/root.pem",
        "spiffe://cluster.local/ns/default/sa/users")


def _with_cluster(c: cluster_pb2.Cluster) -> R.XdsState:
    st = state(listener(), route_config(), assignment())
    st.clusters[c.name] = c
    return st


def test_endpoints_health_weight_zone_priority() -> None:
    a = assignment(endpoints=(("127.0.0.2", 8001), ("127.0.0.3", 8001), ("::1", 8002)),
                   zone="zone-a")
    lbs = a.endpoints[0].lb_endpoints
    lbs[0].load_balancing_weight.value = 3
    lbs[1].health_status = health_check_pb2.UNHEALTHY
    lbs[2].health_status = health_check_pb2.HEALTHY
    backup = a.endpoints.add(priority=1)
    backup.load_balancing_weight.value = 1
    e = backup.lb_endpoints.add()
    e.endpoint.address.socket_address.address = "127.0.0.4"
    e.endpoint.address.socket_address.port_value = 8001
    e.health_status = health_check_pb2.DRAINING
    e = backup.lb_endpoints.add()
    e.endpoint.address.socket_address.address = "127.0.0.5"
    e.endpoint.address.socket_address.port_value = 8001
    ignored = a.endpoints.add(priority=0)  # locality weight unset: left out, as gRPC
    e = ignored.lb_endpoints.add()
    e.endpoint.address.socket_address.address = "127.0.0.6"
    e.endpoint.address.socket_address.port_value = 8001
    _, policy = translate(world(None, cluster(), a))
    got = [(e.address, e.weight, e.zone, e.priority) for e in policy.resolved[S1].endpoints]
    assert got == [("127.0.0.2:8001", 3, "zone-a", 0), ("[::1]:8002", 1, "zone-a", 0),
                   ("127.0.0.5:8001", 1, None, 1)]
    # the priority reaches the balancer's endpoints (its priority groups)
    from meshclient.discovery.static import endpoints_from_specs

    assert [e.priority for e in endpoints_from_specs(policy.resolved[S1].endpoints)] == [0, 0, 1]


def test_static_cluster_uses_its_load_assignment() -> None:
    c = cluster_pb2.Cluster(name="static-one", type=cluster_pb2.Cluster.STATIC)
    c.load_assignment.CopyFrom(assignment("static-one"))
    _, policy = translate(world(route_config(cluster="static-one"), c))
    assert [e.address for e in policy.resolved["static-one"].endpoints] == ["127.0.0.2:8001"]
    assert R.references(R.CLUSTER, c) == set()


def test_dns_cluster_becomes_dns_discovery() -> None:
    c = cluster_pb2.Cluster(name="ext", type=cluster_pb2.Cluster.LOGICAL_DNS)
    c.load_assignment.CopyFrom(assignment("ext", (("api.example.internal", 443),)))
    _, policy = translate(world(route_config(cluster="ext"), c))
    discovery = policy.resolved["ext"].discovery
    assert discovery is not None and discovery.url == "dns://api.example.internal:443"
    assert R.references(R.CLUSTER, c) == set()


def test_cluster_names_are_valid_stable_and_distinct() -> None:
    from meshclient.xds._translate_names import cluster_names

    names = cluster_names(["outbound|8080||a.svc", "outbound_8080__a.svc", "Users", "users",
                          "a b", "host"], hosts=["host"])
    assert names["outbound_8080__a.svc"] == "outbound_8080__a.svc"
    assert names["outbound|8080||a.svc"].startswith("outbound_8080__a.svc-x")
    assert names["users"] == "users" and names["Users"].startswith("users-x")
    assert names["host"].startswith("host-x")
    assert len(set(names.values())) == len(names)
    assert cluster_names(["a b"], [])["a b"] == names["a b"]  # stable
    Policy.from_dict({"services": {n: {} for n in names.values()}})
