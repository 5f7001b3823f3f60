"""The policy model: the issue's example document loads from JSON and TOML and round-trips;
bad documents report every problem with its field path and the bad value."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from meshclient import Policy, PolicyError
from meshclient.policy import RetryPolicy, ServicePolicy, TimeoutPolicy, parse_duration

EXAMPLE = {
    "version": "2026-11-24.1",
    "defaults": {
        "timeout": {"total": "10s", "per_try": "2s"},
        "retry": {"attempts": 3, "on": ["connect-error", "reset", "502", "503", "504"],
                  "methods": ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"],
                  "backoff": {"base": "25ms", "max": "250ms"},
                  "budget": {"ratio": 0.2, "min_per_second": 10, "ttl": "10s"}},
        "balancer": {"kind": "p2c-ewma", "decay": "10s", "default_rtt": "30ms"},
        "breaker": {"failures": 5, "reset": "30s"},
        "outlier": {"consecutive_failures": 5, "base_ejection": "30s", "max_ejection": "300s",
                    "max_ejected_percent": 50},
    },
    "services": {
        "users": {"endpoints": ["127.0.0.1:8001",
                               {"address": "127.0.0.2:8001", "weight": 2, "zone": "b"}]},
        "users-v2": {"endpoints": ["127.0.0.3:8001"], "scheme": "http"},
    },
}

EXAMPLE_TOML = """
version = "2026-11-24.1"

[defaults.timeout]
total = "10s"
per_try = "2s"

[defaults.retry]
attempts = 3
on = ["connect-error", "reset", "502", "503", "504"]
methods = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"]
backoff = { base = "25ms", max = "250ms" }
budget = { ratio = 0.2, min_per_second = 10, ttl = "10s" }

[defaults.balancer]
kind = "p2c-ewma"
decay = "10s"
default_rtt = "30ms"

[defaults.breaker]
failures = 5
reset = "30s"

[defaults.outlier]
consecutive_failures = 5
base_ejection = "30s"
max_ejection = "300s"
max_ejected_percent = 50

[services.users]
endpoints = ["127.0.0.1:8001", { address = "127.0.0.2:8001", weight = 2, zone = "b" }]

[services.users-v2]
endpoints = ["127.0.0.3:8001"]
scheme = "http"
"""


def _check_example(policy: Policy) -> None:
    assert policy.version == "2026-11-24.1"
    users = policy.resolved["users"]
    assert [e.address for e in users.endpoints] == ["127.0.0.1:8001", "127.0.0.2:8001"]
    assert users.endpoints[1].weight == 2 and users.endpoints[1].zone == "b"
    assert users.timeout.total == 10.0 and users.timeout.per_try == 2.0
    assert users.retry.on == ("connect-error", "reset", "502", "503", "504")
    assert users.retry.backoff.base == pytest.approx(0.025)
    assert users.retry.budget.ratio == 0.2 and users.retry.budget.ttl == 10.0
    assert users.balancer.default_rtt == pytest.approx(0.03)
    assert users.outlier.max_ejection == 300.0
    assert policy.resolved["users-v2"].scheme == "http"


def test_example_loads_from_dict() -> None:
    _check_example(Policy.from_dict(EXAMPLE))


def test_example_loads_from_json_file(tmp_path: Path) -> None:
    path = tmp_path / "mesh.json"
    path.write_text(json.dumps(EXAMPLE))
    _check_example(Policy.load(str(path)))


def test_example_loads_from_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "mesh.toml"
    path.write_text(EXAMPLE_TOML)
    policy = Policy.load(str(path))
    _check_example(policy)
    assert policy == Policy.from_dict(EXAMPLE)


def test_round_trip_through_to_dict() -> None:
    policy = Policy.from_dict(EXAMPLE)
    document = policy.to_dict()
    assert document["defaults"]["retry"]["backoff"] == {"base": "25ms", "max": "250ms"}
    assert json.loads(json.dumps(document)) == document  # plain JSON
    again = Policy.from_dict(document)
    assert again == policy
    assert again.to_dict() == document


def test_empty_policy_is_valid() -> None:
    policy = Policy()
    assert policy.services == {} and Policy.from_dict({}) == policy
    assert Policy.from_dict(policy.to_dict()) == policy


def test_service_sections_merge_over_defaults() -> None:
    policy = Policy.from_dict({"defaults": {"retry": {"attempts": 4, "budget": {"ratio": 0.5}}},
                               "services": {"a": {"retry": {"budget": {"ttl": "5s"}}},
                                            "b": {}}})
    a, b = policy.resolved["a"].retry, policy.resolved["b"].retry
    assert (a.attempts, a.budget.ratio, a.budget.ttl) == (4, 0.5, 5.0)
    assert (b.attempts, b.budget.ratio, b.budget.ttl) == (4, 0.5, 10.0)


def test_policy_is_immutable() -> None:
    policy = Policy.from_dict(EXAMPLE)
    with pytest.raises(dataclasses.FrozenInstanceError):
        policy.version = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.services["x"] = ServicePolicy()  # type: ignore[index]
    derived = dataclasses.replace(policy, version="2")
    assert derived.version == "2" and policy.version == "2026-11-24.1"


def _errors(document: object) -> tuple[str, ...]:
    with pytest.raises(PolicyError) as info:
        Policy.from_dict(document)  # type: ignore[arg-type]
    return info.value.errors


@pytest.mark.parametrize(("document", "expected"), [
    ({"servces": {}}, "servces is not a known field"),
    ({"services": {"users": {"endpoint": []}}}, "services.users.endpoint is not a known field"),
    ({"defaults": {"retry": {"attempts": "three"}}},
     "defaults.retry.attempts must be int, not a string: 'three'"),
    ({"defaults": {"retry": {"attempts": True}}}, "defaults.retry.attempts must be int"),
    ({"services": {"users": {"retry": {"budget": {"ratio": 3}}}}},
     "services.users.retry.budget.ratio must be between 0 and 1: 3"),
    ({"defaults": {"timeout": {"total": "10 parsecs"}}},
     "defaults.timeout.total must be a duration like '250ms'"),
    ({"defaults": {"timeout": {"total": "-1s"}}}, "defaults.timeout.total"),
    ({"defaults": {"timeout": {"total": 0}}}, "defaults.timeout.total must be greater than 0: 0"),
    ({"services": {"users": {"endpoints": ["127.0.0.1"]}}},
     "services.users.endpoints[0].address must be host:port: '127.0.0.1'"),
    ({"services": {"users": {"endpoints": ["127.0.0.1:99999"]}}},
     "services.users.endpoints[0].address port must be between 1 and 65535"),
    ({"services": {"users": {"endpoints": [{"address": "::1:80"}]}}},
     "services.users.endpoints[0].address must put an IPv6 address in brackets"),
    ({"defaults": {"timeout": {"total": "1s", "per_try": "2s"}}},
     "defaults.timeout.per_try must not exceed total (1s): 2"),
    ({"defaults": {"retry": {"backoff": {"base": "1s", "max": "10ms"}}}},
     "defaults.retry.backoff.base must not exceed max"),
    ({"defaults": {"balancer": {"kind": "fastest"}}},
     "defaults.balancer.kind must be one of p2c-ewma"),
    ({"services": {"Users": {}}}, "services name must be a lower-case host name: 'Users'"),
    ({"services": {"users": {"scheme": "ftp"}}}, "services.users.scheme must be one of http"),
    ({"services": {"users": {"retry": {"on": ["teapot"]}}}},
     "services.users.retry.on must be one of"),
    ({"services": []}, "services must be a table/object, not a list"),
    ({"defaults": {"breaker": {"storage": "memcached://x"}}},
     "defaults.breaker.storage must be a redis:// or rediss:// URL"),
])
def test_bad_documents_name_path_and_value(document: dict[str, object], expected: str) -> None:
    errors = _errors(document)
    assert any(expected in e for e in errors), errors


def test_every_error_is_reported() -> None:
    errors = _errors({
        "bogus": 1,
        "defaults": {"retry": {"attempts": 0, "budget": {"ratio": 2, "ttl": "forever"}},
                     "timeout": {"total": "1s", "per_try": "5s"}},
        "services": {"users": {"endpoints": ["nope", "127.0.0.1:0"], "colour": "blue"}},
    })
    text = "\n".join(errors)
    for needle in ("bogus is not a known field", "defaults.retry.attempts must be between 1",
                   "defaults.retry.budget.ratio must be between 0 and 1: 2",
                   "defaults.retry.budget.ttl must be a duration", "defaults.timeout.per_try",
                   "services.users.endpoints[0].address must be host:port: 'nope'",
                   "services.users.endpoints[1].address port must be between 1 and 65535",
                   "services.users.colour is not a known field"):
        assert needle in text, (needle, errors)
    assert len(errors) >= 8


def test_python_construction_is_validated_too() -> None:
    with pytest.raises(PolicyError, match=r"total must be greater than 0: -1"):
        TimeoutPolicy(total=-1)
    with pytest.raises(PolicyError, match=r"attempts must be between 1 and 10: 11"):
        RetryPolicy(attempts=11)


def test_bad_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"services": ')
    with pytest.raises(PolicyError, match=r"invalid JSON at line 1"):
        Policy.load(str(broken))
    bad_toml = tmp_path / "bad.toml"
    bad_toml.write_text("services = [")
    with pytest.raises(PolicyError, match=r"invalid TOML"):
        Policy.load(str(bad_toml))
    with pytest.raises(PolicyError, match=r"cannot read policy file"):
        Policy.load(str(tmp_path / "missing.toml"))


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("10s", 10.0), ("1.5m", 90.0), ("1h", 3600.0), ("500us", 0.0005),
    (2, 2.0), (0.5, 0.5), ("3", 3.0)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "ten seconds", "5 days", "-1s", True, None, "nan", "inf"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError, match=r"duration"):
        parse_duration(text)
