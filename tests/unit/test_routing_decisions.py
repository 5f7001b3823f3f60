"""Pure routing decisions and route validation (SeededRng, no sockets)."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from meshclient.errors import PolicyError
from meshclient.policy import Policy
from meshclient.policy.summary import summarize
from meshclient.routing import roll, route, sticky_point
from meshclient.routing.fault import abort_result
from meshclient.testing import SeededRng


def make(users: dict, **more: dict) -> Policy:
    return Policy.from_dict({"version": "t", "services": {
        "users": users, "users-v2": {}, "shadow": {}, **more}})


def test_destination_must_exist_with_field_path() -> None:
    with pytest.raises(PolicyError) as info:
        make({"routes": [{"to": [{"service": "users"}, {"service": "users-v3"}]},
                         {"mirror": {"to": "nowhere"}}]})
    assert info.value.errors == (
        "services.users.routes[0].to[1].service names no service: 'users-v3'",
        "services.users.routes[1].mirror.to names no service: 'nowhere'")


@pytest.mark.parametrize(("route_doc", "message"), [
    ({"match": {"path": {"regex": "(["}}}, "services.users.routes[0].match.path.regex is not "
     "a valid regular expression"),
    ({"match": {"path": {"exact": "/a", "prefix": "/"}}}, "exactly one of exact, prefix, "
     "regex"),
    ({"match": {"headers": {"x": {}}}}, "services.users.routes[0].match.headers.x.exactly "
     "one of exact, prefix, suffix, regex, present"),
    ({"to": [{"service": "users", "weight": 0}]}, "to weights must not all be 0"),
    ({"to": [{"service": "users", "weight": -1}]}, "weight must be between 0"),
    ({"mirror": {"to": "shadow", "percent": 101}}, "mirror.percent must be between 0 and 100"),
    ({"fault": {"abort": {"percent": 5}}}, "exactly one of status, error"),
    ({"fault": {"abort": {"percent": 5, "error": "boom"}}}, "error must be one of connect"),
    ({"fault": {}}, "delay or abort must be set"),
    ({"match": {"method": ["get"]}}, "method must be upper-case"),
])
def test_invalid_routes_name_the_field(route_doc: dict, message: str) -> None:
    with pytest.raises(PolicyError, match=None) as info:
        make({"routes": [route_doc]})
    assert any(message in e for e in info.value.errors), info.value.errors


def request(path: str = "/", **headers: str) -> httpx.Request:
    return httpx.Request("GET", "http://users" + path, headers=headers)


def test_weighted_choice_matches_weights() -> None:
    policy = make({"routes": [{"to": [{"service": "users", "weight": 95},
                                      {"service": "users-v2", "weight": 5}]}]})
    rng = SeededRng(7)
    counts = Counter(route(request(), policy.resolved["users"], policy, rng).destination.name
                     for _ in range(20_000))
    assert 0.045 < counts["users-v2"] / 20_000 < 0.055


def test_sticky_is_stable_and_balanced() -> None:
    policy = make({"routes": [{"hash_on": "x-user", "to": [{"service": "users", "weight": 1},
                                                           {"service": "users-v2",
                                                            "weight": 1}]}]})
    rng, svc = SeededRng(1), policy.resolved["users"]
    sides = [route(request(**{"x-user": f"u{i}"}), svc, policy, rng).destination.name
             for i in range(2000)]
    again = [route(request(**{"x-user": f"u{i}"}), svc, policy, rng).destination.name
             for i in range(2000)]
    assert sides == again
    assert 900 < sides.count("users-v2") < 1100
    assert sticky_point("u1", 1000) == sticky_point("u1", 1000)


def test_destination_routes_are_not_reapplied() -> None:
    policy = make({"routes": [{"to": [{"service": "users-v2"}]}]},
                  **{"users-v2": {"routes": [{"to": [{"service": "shadow"}]}]}})
    decision = route(request(), policy.resolved["users"], policy, SeededRng(1))
    assert decision.destination.name == "users-v2"


def test_route_fault_overrides_service_fault_and_mirror_copies_are_not_mirrored() -> None:
    policy = make({"fault": {"delay": {"percent": 100, "duration": "1s"}},
                   "routes": [{"match": {"path": {"prefix": "/x"}}, "name": "x",
                               "fault": {"abort": {"percent": 100, "status": 503}},
                               "mirror": {"to": "shadow"}}]})
    svc, rng = policy.resolved["users"], SeededRng(1)
    d = route(request("/x"), svc, policy, rng)
    assert d.route == "x" and d.fault is not None and d.fault.abort is not None
    assert d.mirror is not None and d.mirror.name == "shadow"
    assert route(request("/x", **{"x-mesh-mirror": "1"}), svc, policy, rng).mirror is None
    other = route(request("/y"), svc, policy, rng)
    assert other.fault is not None and other.fault.delay is not None and other.mirror is None


def test_fault_rolls_follow_percentages_and_header() -> None:
    policy = make({"fault": {"delay": {"percent": 30, "duration": "50ms"},
                             "abort": {"percent": 10, "status": 500}, "header": "x-drill"}})
    fault, rng = policy.resolved["users"].fault, SeededRng(5)
    assert roll(fault, request(), rng) is None  # no header: no fault
    rolls = [roll(fault, request(**{"x-drill": ""}), rng) for _ in range(10_000)]
    delays = sum(1 for r in rolls if r is not None and r.delay_s == 0.05)
    aborts = sum(1 for r in rolls if r is not None and r.abort is not None)
    assert 2800 < delays < 3200 and 850 < aborts < 1150
    assert fault is not None and fault.abort is not None
    response = abort_result(fault.abort, request())
    assert isinstance(response, httpx.Response) and response.status_code == 500


def test_summary_names_what_changed() -> None:
    old = make({"endpoints": ["127.0.0.1:1"]}, legacy={})
    new = Policy.from_dict({"version": "t2", "defaults": {"retry": {"attempts": 2}},
                            "services": {"users": {"endpoints": ["127.0.0.1:2"],
                                                   "routes": [{"to": [{"service": "shadow"}]}]},
                                         "users-v2": {}, "shadow": {}, "orders": {}}})
    assert summarize(old, new) == "+orders, -legacy, users(endpoints, routes), defaults(retry)"
    assert summarize(old, old) == "no change"
