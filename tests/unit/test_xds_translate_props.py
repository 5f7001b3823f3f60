"""Property tests: arbitrary bytes and arbitrary field combinations of xDS resources give a
`PolicyError` (a NACK) or a translation `Policy.from_dict` accepts, never another error."""

from __future__ import annotations

from typing import Any

from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.filters.http.fault.v3 import fault_pb2
from google.protobuf import any_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshclient.errors import PolicyError
from meshclient.policy import Policy
from meshclient.xds import resources as R

from .xds_build import HOST, LISTENER_NAME, V1, cluster, hcm, listener

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])
TYPES = (R.LISTENER, R.ROUTE, R.CLUSTER, R.ENDPOINT)

names = st.one_of(st.sampled_from(["x-user", "X-Canary", ":method", "content-type", "", "a b",
                                   "ü"]), st.text(max_size=8))
strings = st.one_of(st.sampled_from(["", "/", "/api", "a", "(", "[0-9]+", ".*", "(a+)+"]),
                    st.text(max_size=10))
u32 = st.integers(0, 2**32 - 1)
durations = st.tuples(st.integers(-2, 400 * 86400), st.integers(-1, 1_000_000_000))
clusters = st.one_of(st.sampled_from([V1, "c", "users.default.svc.cluster.local", "C|1"]),
                     st.text(max_size=12))


def _duration(target: Any, value: tuple[int, int]) -> None:
    target.seconds, target.nanos = value


@st.composite
def matches(draw: st.DrawFn, m: Any) -> None:
    kind = draw(st.sampled_from(["prefix", "path", "safe_regex", "path_separated_prefix",
                                 "none"]))
    text = draw(strings)
    if kind == "safe_regex":
        m.safe_regex.regex = text
    elif kind != "none":
        setattr(m, kind, text)
    if draw(st.booleans()):
        m.case_sensitive.value = draw(st.booleans())
    for _ in range(draw(st.integers(0, 3))):
        h = m.headers.add(name=draw(names), invert_match=draw(st.booleans()))
        which = draw(st.sampled_from(["exact_match", "prefix_match", "suffix_match",
                                      "contains_match", "present_match", "safe_regex_match",
                                      "range_match", "string_match", "none"]))
        if which == "present_match":
            h.present_match = draw(st.booleans())
        elif which == "safe_regex_match":
            h.safe_regex_match.regex = draw(strings)
        elif which == "range_match":
            h.range_match.start = 1
        elif which == "string_match":
            setattr(h.string_match, draw(st.sampled_from(["exact", "prefix", "suffix",
                                                          "contains"])), draw(strings))
            h.string_match.ignore_case = draw(st.booleans())
        elif which != "none":
            setattr(h, which, draw(strings))
    for _ in range(draw(st.integers(0, 2))):
        q = m.query_parameters.add(name=draw(names))
        if draw(st.booleans()):
            q.string_match.exact = draw(strings)
        else:
            q.present_match = True
    if draw(st.booleans()):
        m.runtime_fraction.default_value.numerator = draw(u32)
        m.runtime_fraction.default_value.denominator = draw(st.integers(0, 4))


@st.composite
def route_configs(draw: st.DrawFn) -> route_pb2.RouteConfiguration:
    rc = route_pb2.RouteConfiguration(name="r1")
    for _ in range(draw(st.integers(1, 2))):
        vh = rc.virtual_hosts.add(name="vh", domains=draw(st.lists(st.one_of(
            st.sampled_from([LISTENER_NAME, HOST, "*", "*.cluster.local:8080", "users.*"]),
            st.text(max_size=6)), min_size=draw(st.sampled_from([0, 1, 1, 1])),
            max_size=3)))
        if draw(st.booleans()):
            vh.retry_policy.retry_on = draw(st.sampled_from(["5xx", "reset,bogus", ""]))
        for _ in range(draw(st.integers(0, 3))):
            r = vh.routes.add(name=draw(st.sampled_from(["", "n"])))
            draw(matches(r.match))
            action = draw(st.sampled_from(["cluster", "weighted", "direct", "redirect",
                                           "header"]))
            if action == "direct":
                r.direct_response.status = draw(st.integers(0, 700))
                continue
            if action == "redirect":
                r.redirect.path_redirect = "/x"
                continue
            a = r.route
            if action == "cluster":
                a.cluster = draw(clusters)
            elif action == "header":
                a.cluster_header = "x"
            else:
                for _ in range(draw(st.integers(0, 3))):
                    w = a.weighted_clusters.clusters.add(name=draw(clusters))
                    if draw(st.booleans()):
                        w.weight.value = draw(u32)
            if draw(st.booleans()):
                _duration(a.timeout, draw(durations))
            if draw(st.booleans()):
                _duration(a.max_stream_duration.max_stream_duration, draw(durations))
            if draw(st.booleans()):
                p = a.retry_policy
                p.retry_on = ",".join(draw(st.lists(st.sampled_from(
                    ["5xx", "gateway-error", "reset", "connect-failure", "retriable-4xx",
                     "retriable-status-codes", "cancelled", "x"]), max_size=4)))
                p.retriable_status_codes.extend(draw(st.lists(st.integers(0, 1000),
                                                              max_size=2)))
                if draw(st.booleans()):
                    p.num_retries.value = draw(u32)
                if draw(st.booleans()):
                    _duration(p.per_try_timeout, draw(durations))
                if draw(st.booleans()):
                    _duration(p.retry_back_off.base_interval, draw(durations))
                    if draw(st.booleans()):
                        _duration(p.retry_back_off.max_interval, draw(durations))
            if draw(st.booleans()):
                a.hash_policy.add().header.header_name = draw(names)
            if draw(st.booleans()):
                mp = a.request_mirror_policies.add(cluster=draw(clusters))
                mp.runtime_fraction.default_value.numerator = draw(u32)
            if draw(st.booleans()):
                f = fault_pb2.HTTPFault()
                f.abort.http_status = draw(st.integers(0, 700))
                f.abort.percentage.numerator = draw(u32)
                r.typed_per_filter_config["envoy.filters.http.fault"].CopyFrom(_pack(f))
    return rc


@st.composite
def clusters_msgs(draw: st.DrawFn) -> cluster_pb2.Cluster:
    c = cluster(draw(clusters))
    if draw(st.booleans()):
        c.type = draw(st.integers(0, 5))
        if draw(st.booleans()):
            c.load_assignment.CopyFrom(draw(assignments(c.name)))
    c.lb_policy = draw(st.integers(0, 7))
    if draw(st.booleans()):
        o = c.outlier_detection
        for name in ("consecutive_5xx", "enforcing_consecutive_5xx", "max_ejection_percent"):
            if draw(st.booleans()):
                getattr(o, name).value = draw(u32)
        if draw(st.booleans()):
            _duration(o.base_ejection_time, draw(durations))
        if draw(st.booleans()):
            _duration(o.max_ejection_time, draw(durations))
    if draw(st.booleans()):
        c.circuit_breakers.thresholds.add(priority=draw(st.integers(0, 1))).max_requests.value \
            = draw(u32)
    if draw(st.booleans()):
        c.common_lb_config.healthy_panic_threshold.value = draw(st.floats())
    return c


@st.composite
def assignments(draw: st.DrawFn, name: str) -> endpoint_pb2.ClusterLoadAssignment:
    a = endpoint_pb2.ClusterLoadAssignment(cluster_name=name)
    for _ in range(draw(st.integers(0, 3))):
        loc = a.endpoints.add(priority=draw(st.integers(0, 3)))
        loc.locality.zone = draw(st.text(max_size=4))
        if draw(st.booleans()):
            loc.load_balancing_weight.value = draw(u32)
        for _ in range(draw(st.integers(0, 3))):
            e = loc.lb_endpoints.add(health_status=draw(st.integers(0, 6)))
            sa = e.endpoint.address.socket_address
            sa.address = draw(st.one_of(st.sampled_from(["127.0.0.2", "::1", "localhost", ""]),
                                        st.text(max_size=8)))
            sa.port_value = draw(st.integers(0, 70000))
            if draw(st.booleans()):
                e.load_balancing_weight.value = draw(u32)
    return a


def _pack(message: Any) -> any_pb2.Any:
    out = any_pb2.Any()
    out.Pack(message)
    return out


def _accept(type_url: str, message: Any) -> bool:
    try:
        R.validate(type_url, message)
        R.references(type_url, message)
    except PolicyError:
        return False
    return True


@SETTINGS
@given(st.sampled_from(TYPES), st.binary(max_size=200), st.booleans())
def test_arbitrary_bytes_decode_or_policy_error(type_url: str, data: bytes,
                                                right_type: bool) -> None:
    value = any_pb2.Any(type_url=type_url if right_type else "x/y", value=data)
    try:
        _, message = R.decode(type_url, value)
    except PolicyError:
        return
    _accept(type_url, message)


@SETTINGS
@given(route_configs(), st.lists(clusters_msgs(), max_size=2), st.data())
def test_arbitrary_resources_nack_or_translate_to_a_valid_policy(
        rc: route_pb2.RouteConfiguration, cs: list[cluster_pb2.Cluster], data: Any) -> None:
    state = R.XdsState()
    state.listeners[LISTENER_NAME] = listener()
    if _accept(R.ROUTE, rc):
        state.routes["r1"] = rc
    for c in cs:
        if _accept(R.CLUSTER, c):
            state.clusters[c.name] = c
            a = data.draw(assignments(c.eds_cluster_config.service_name or c.name))
            if _accept(R.ENDPOINT, a):
                state.endpoints[a.cluster_name] = a
    doc = R.translate(state, {LISTENER_NAME: HOST})
    Policy.from_dict(doc)


@SETTINGS
@given(st.integers(0, 700), u32, st.integers(0, 3), durations, st.booleans(), names)
def test_arbitrary_fault_filters(status: int, numerator: int, denominator: int,
                                 delay: tuple[int, int], optional: bool, header: str) -> None:
    f = fault_pb2.HTTPFault()
    f.abort.http_status = status
    f.abort.percentage.numerator = numerator
    f.abort.percentage.denominator = denominator
    _duration(f.delay.fixed_delay, delay)
    if header:
        f.headers.add(name=header, present_match=True)
    message = listener(manager=hcm(fault=f, extra=[("other", cluster(), optional)]))
    if _accept(R.LISTENER, message):
        state = R.XdsState(listeners={LISTENER_NAME: message})
        Policy.from_dict(R.translate(state, {LISTENER_NAME: HOST}))
