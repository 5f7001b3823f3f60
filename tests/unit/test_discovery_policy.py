"""The discovery and health policy sections, URLs, endpoint JSON and priority groups."""

from __future__ import annotations

import pytest

from meshclient import Policy, PolicyError
from meshclient._addresses import parse_url
from meshclient.discovery import DiscoveryError, Endpoint
from meshclient.discovery._select import select
from meshclient.discovery.static import endpoint_from_json


def service(**spec: object) -> Policy:
    return Policy.from_dict({"services": {"users": spec}})


def test_url_shorthand_and_table_form() -> None:
    short = service(discovery="dns+srv://_http._tcp.users.svc.cluster.local").resolved["users"]
    assert short.discovery is not None and short.discovery.min_ttl == 5.0
    table = service(discovery={"url": "etcd://127.0.0.1:2379/mesh/users", "min_ttl": "250ms",
                               "grace": "1s", "nameservers": ["127.0.0.1:5353"]})
    d = table.resolved["users"].discovery
    assert d is not None and (d.min_ttl, d.grace) == (0.25, 1.0)
    assert Policy.from_dict(table.to_dict()) == table  # round-trips


@pytest.mark.parametrize(("url", "message"), [
    ("dns://users", "must be dns://name:port"),
    ("dns://users:99999", "invalid port"),
    ("dns+srv://_http._tcp.users:80", "no port"),
    ("file://relative/path.json", "file:///absolute/path"),
    ("etcd://127.0.0.1/mesh", "etcd://host:port/prefix"),
    ("consul://users", "must start with dns://"),
    ("dns://a..b:80", "invalid DNS name"),
])
def test_bad_url_is_reported_with_field_path_and_value(url: str, message: str) -> None:
    with pytest.raises(PolicyError) as info:
        service(discovery=url)
    assert info.value.errors[0].startswith("services.users.discovery.url ")
    assert message in str(info.value) and repr(url) in str(info.value)


def test_endpoints_and_discovery_are_exclusive() -> None:
    with pytest.raises(PolicyError, match="exclusive"):
        service(discovery="dns://users.internal:80", endpoints=["127.0.0.1:80"])


def test_env_endpoints_replace_discovery() -> None:
    policy = Policy.from_env({"MESHCLIENT_POLICY": '{"services": {"users": {"discovery": '
                              '"dns://users.internal:80"}}}',
                              "MESHCLIENT_ENDPOINTS_USERS": "127.0.0.1:81"})
    assert policy.resolved["users"].discovery is None
    assert policy.resolved["users"].endpoints[0].address == "127.0.0.1:81"


def test_health_section_is_validated() -> None:
    with pytest.raises(PolicyError) as info:
        service(health={"path": "healthz", "interval": "1s", "timeout": "2s"})
    assert info.value.errors == (
        "services.users.health.path must start with '/': 'healthz'",
        "services.users.health.timeout must not exceed interval (1s): 2")


def test_bad_nameserver_is_reported() -> None:
    with pytest.raises(PolicyError, match=r"nameservers\[0\] must be host:port: '1.2.3.4'"):
        service(discovery={"url": "dns://users.internal:80", "nameservers": ["1.2.3.4"]})


def test_parse_url_kinds() -> None:
    assert parse_url("dns://users.internal:8080").port == 8080
    assert parse_url("dns+srv://_http._tcp.users").name == "_http._tcp.users"
    assert parse_url("file:///etc/mesh/users.json").path == "/etc/mesh/users.json"
    etcd = parse_url("etcd://127.0.0.1:2379/mesh/users")
    assert (etcd.server, etcd.path) == ("127.0.0.1:2379", "/mesh/users/")


def test_endpoint_json() -> None:
    e = endpoint_from_json({"address": "[::1]:80", "weight": 3, "zone": "a", "priority": 2,
                            "metadata": {"v": "2"}}, "file:///x", "x[0]")
    assert (e.host, e.port, e.weight, e.zone, e.priority, dict(e.metadata)) == (
        "::1", 80, 3, "a", 2, {"v": "2"})
    assert endpoint_from_json("127.0.0.1:80", "s", "w").key == "127.0.0.1:80"
    for bad, message in (({"address": "x"}, "must be host:port"), ({"weight": 1}, "address"),
                         ({"address": "a:1", "weight": 0}, "weight"),
                         ({"address": "a:1", "colour": "red"}, "unknown keys"), (7, "object")):
        with pytest.raises(DiscoveryError, match=message):
            endpoint_from_json(bad, "s", "x[1]")


def test_lowest_priority_group_with_a_healthy_endpoint() -> None:
    p1 = (Endpoint("10.0.0.1", 80, priority=1), Endpoint("10.0.0.2", 80, priority=1))
    p2 = (Endpoint("10.0.0.3", 80, priority=2),)
    everything = p1 + p2
    assert select(everything) == p1
    assert select(everything, {"10.0.0.1:80"}) == p1  # one healthy is enough
    assert select(everything, {"10.0.0.1:80", "10.0.0.2:80"}) == p2  # fall to the next
    assert select(everything, {e.key for e in everything}) == p1  # none healthy: lowest
    assert select(()) == ()
