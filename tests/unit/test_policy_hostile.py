"""Hostile and broken policy documents: each is a `PolicyError` naming the field path and the
value, from every entry point (`Policy.from_dict`, `policy_from_text`, `Policy.load`,
`Policy.from_env`), never a TypeError, RecursionError, OverflowError, ValueError or
MemoryError, and never silently accepted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from meshclient import Policy, PolicyError
from meshclient.policy import parse_duration, policy_from_text
from meshclient.policy._security import AuthPolicy, BearerPolicy

from .policy_documents import RICH, RICH_TOML


def errors_of(document: Any, **kwargs: Any) -> tuple[str, ...]:
    parse = policy_from_text if isinstance(document, (str, bytes)) else Policy.from_dict
    with pytest.raises(PolicyError) as info:
        parse(document, **kwargs)
    assert isinstance(info.value, PolicyError)
    return info.value.errors


def svc(**sections: Any) -> dict[str, Any]:
    return {"services": {"users": {"endpoints": ["127.0.0.2:80"], **sections},
                         "other": {"endpoints": ["127.0.0.3:80"]}}}


def test_the_rich_document_is_valid_in_json_and_toml() -> None:
    assert Policy.from_dict(RICH).services["api.example.com"].scheme == "https"
    assert policy_from_text(json.dumps(RICH)).to_dict() == Policy.from_dict(RICH).to_dict()
    assert "users-v2" in policy_from_text(RICH_TOML).services


@pytest.mark.parametrize(("document", "expected"), [
    ({"authorization": {"rules": [{}]}}, "authorization.rules[0].action is required"),
    ({"services": {"a": {"discovery": {"min_ttl": "5s"}}}}, "services.a.discovery.url is required"),
    ({"services": {"a": {"endpoints": [{"weight": 2}]}}},
     "services.a.endpoints[0].address is required"),
    (svc(routes=[{"to": [{"weight": 1}]}]), "services.users.routes[0].to[0].service is required"),
    (svc(routes=[{"mirror": {"percent": 5}}]), "services.users.routes[0].mirror.to is required"),
    (svc(fault={"delay": {"percent": 5}}), "services.users.fault.delay.duration is required"),
    (svc(fault={"abort": {"status": 503}}), "services.users.fault.abort.percent is required"),
    (svc(auth={"oauth2": {"client_id": "c", "client_secret_env": "S"}}),
     "services.users.auth.oauth2.token_url is required"),
])
def test_a_missing_required_field_is_named(document: dict[str, Any], expected: str) -> None:
    assert expected in errors_of(document)


def test_every_missing_field_is_reported_with_the_other_problems() -> None:
    errors = errors_of(svc(fault={"delay": {}}, scheme="gopher"))
    assert "services.users.fault.delay.percent is required" in errors
    assert "services.users.fault.delay.duration is required" in errors
    assert any(e.startswith("services.users.scheme must be one of") for e in errors)


@pytest.mark.parametrize("text", [
    "[" * 100_000,
    '{"version": ' + "[" * 100_000,
    '{"a":' * 100_000,
    '{"version": ' + "[" * 500 + "]" * 500 + "}",
])
def test_deep_json_is_refused(text: str) -> None:
    (error,) = errors_of(text, fmt="json")
    assert "nested more than 32 levels deep" in error


@pytest.mark.slow
@pytest.mark.parametrize("text", [
    "version = " + "[" * 100_000,
    "version = " + "{a = " * 5000,
    "x" + ".a" * 10_000 + " = 1",
    "version = " + "[" * 100 + "]" * 100,
])
def test_deep_toml_is_refused(text: str) -> None:
    (error,) = errors_of(text, fmt="toml")
    assert "nested more than 32 levels deep" in error


def test_deep_python_data_is_refused() -> None:
    deep: Any = "x"
    for _ in range(100_000):
        deep = [deep]
    (error,) = errors_of({"version": deep})
    assert error == "version" + "[0]" * 31 + " is nested more than 32 levels deep"


@pytest.mark.parametrize(("document", "expected"), [
    ({"defaults": {"timeout": {"total": 10**400}}},
     "defaults.timeout.total is out of range (integers are limited to 64 bits): "
     "<an integer of about 401 digits>"),
    ({"defaults": {"retry": {"attempts": 10**5000}}},
     "defaults.retry.attempts is out of range (integers are limited to 64 bits): "
     "<an integer of about 5001 digits>"),
    ('{"defaults": {"retry": {"attempts": ' + "9" * 5000 + "}}}",
     "defaults.retry.attempts must be a finite number within range: <a number of 5000 digits>"),
    ('{"defaults": {"timeout": {"total": 1e400}}}',
     "defaults.timeout.total must be a finite number within range: 1e400"),
    ('{"defaults": {"retry": {"budget": {"ratio": NaN}}}}',
     "defaults.retry.budget.ratio must be a finite number within range: NaN"),
    ('{"defaults": {"limits": {"rate": -Infinity}}}',
     "defaults.limits.rate must be a finite number within range: -Infinity"),
    ("[defaults.retry.budget]\nratio = nan\n",
     "defaults.retry.budget.ratio must be a finite number within range: nan"),
    ("[defaults.limits]\nrate = inf\n",
     "defaults.limits.rate must be a finite number within range: inf"),
    ({"defaults": {"timeout": {"total": float("nan")}}},
     "defaults.timeout.total must be a finite number: nan"),
    ({"defaults": {"timeout": {"total": 1e300}}},
     "defaults.timeout.total must be at most 31536000s (365 days): 1e+300"),
    ({"defaults": {"breaker": {"reset": "8761h"}}},
     "defaults.breaker.reset must be at most 31536000s (365 days): '8761h'"),
    ({"defaults": {"timeout": {"total": "1" + "0" * 400}}},
     "defaults.timeout.total must be a finite, non-negative duration: "
     "'10000000000000000000000000000000000000000000000000000000000000000000000000…000'"),
])
def test_numbers_out_of_range_are_named(document: Any, expected: str) -> None:
    assert expected in errors_of(document)


def test_a_huge_toml_integer_is_a_policy_error() -> None:
    (error,) = errors_of("[defaults.retry]\nattempts = " + "9" * 5000 + "\n")
    assert error.startswith("policy: invalid TOML: a number is out of range")


def test_the_longest_duration_is_accepted() -> None:
    assert parse_duration("8760h") == 365 * 86400
    policy = Policy.from_dict({"defaults": {"breaker": {"reset": "8760h"}}})
    assert policy.defaults.breaker.reset == 365 * 86400


def test_python_construction_with_a_huge_integer_is_a_policy_error() -> None:
    from meshclient.policy import RetryPolicy

    with pytest.raises(PolicyError, match=r"attempts must be between 1 and 10: <an integer"):
        RetryPolicy(attempts=10**5000)


@pytest.mark.parametrize(("text", "expected"), [
    ('{"version": "a", "version": "b"}', ["version is given more than once"]),
    ('{"services": {"users": {"endpoints": ["127.0.0.2:80"]}, "users": {}}}',
     ["services.users is given more than once"]),
    ('{"defaults": {"retry": {"attempts": 2, "budget": {"ratio": 0.1, "ratio": 0.9}, '
     '"attempts": 5}}}',
     ["defaults.retry.attempts is given more than once",
      "defaults.retry.budget.ratio is given more than once"]),
])
def test_duplicate_json_keys_are_named(text: str, expected: list[str]) -> None:
    assert list(errors_of(text)) == expected


def test_duplicate_toml_keys_are_refused_too() -> None:
    (error,) = errors_of('version = "a"\nversion = "b"\n')
    assert error.startswith("policy: invalid TOML")


@pytest.mark.parametrize(("document", "expected"), [
    (svc(auth={"bearer": {"token_env": "T"}, "header": "x-token\r\nx-evil: 1"}),
     "services.users.auth.header must not contain control characters (CR, LF, NUL …): "
     "'x-token\\r\\nx-evil: 1'"),
    (svc(auth={"bearer": {"token_env": "T"}, "header": "x token"}),
     "services.users.auth.header is not a valid header name: 'x token'"),
    (svc(health={"path": "/healthz\r\nHost: evil"}),
     "services.users.health.path must not contain control characters (CR, LF, NUL …): "
     "'/healthz\\r\\nHost: evil'"),
    (svc(health={"path": "/health z"}), "services.users.health.path must not contain spaces: "
     "'/health z'"),
    ({"services": {"a": {"endpoints": ["evil\x00.example:80"]}}},
     "services.a.endpoints[0].address must not contain control characters (CR, LF, NUL …): "
     "'evil\\x00.example:80'"),
    ({"services": {"a": {"endpoints": ["ev il:80"]}}},
     "services.a.endpoints[0].address has an invalid host name (letters, digits, '-', '_' "
     "and '.' only): 'ev il'"),
    ({"services": {"a": {"endpoints": ["a/b@c:80"]}}},
     "services.a.endpoints[0].address has an invalid host name (letters, digits, '-', '_' "
     "and '.' only): 'a/b@c'"),
    ({"services": {"a": {"discovery": {"url": "dns://us ers:53"}}}},
     "services.a.discovery.url has an invalid host name (letters, digits, '-', '_' and '.' "
     "only): 'us ers'"),
    ({"services": {"a": {"discovery": {"url": "dns+srv://_http._tcp.u\x01"}}}},
     "services.a.discovery.url must not contain control characters (CR, LF, NUL …): "
     "'dns+srv://_http._tcp.u\\x01'"),
    ({"services": {"a": {"discovery": {"url": "dns://u:53", "nameservers": ["1 2:53"]}}}},
     "services.a.discovery.nameservers[0] has an invalid host name (letters, digits, '-', "
     "'_' and '.' only): '1 2'"),
    (svc(tls={"server_name": "users\x00.internal"}),
     "services.users.tls.server_name must not contain control characters (CR, LF, NUL …): "
     "'users\\x00.internal'"),
    (svc(tls={"server_name": "users/internal"}),
     "services.users.tls.server_name has an invalid host name (letters, digits, '-', '_' "
     "and '.' only): 'users/internal'"),
    (svc(auth={"oauth2": {"token_url": "https://a b/token", "client_id": "c",
                          "client_secret_env": "S"}}),
     "services.users.auth.oauth2.token_url has an invalid host name (letters, digits, '-', "
     "'_' and '.' only): 'a b'"),
    ({"authorization": {"trust_caller_header": "x-caller\n"}},
     "authorization.trust_caller_header must not contain control characters (CR, LF, NUL …): "
     "'x-caller\\n'"),
    ({"authorization": {"trust_caller_header": "x caller"}},
     "authorization.trust_caller_header is not a valid header name: 'x caller'"),
    (svc(routes=[{"match": {"headers": {"x-a\n": {"present": True}}}}]),
     "services.users.routes[0].match.headers must not contain control characters (CR, LF, "
     "NUL …): 'x-a\\n'"),
    (svc(routes=[{"match": {"headers": {"x-a": {"exact": "1\r\n"}}}}]),
     "services.users.routes[0].match.headers.x-a.exact must not contain control characters "
     "(CR, LF, NUL …): '1\\r\\n'"),
    ({"version": "v1\x00"},
     "version must not contain control characters (CR, LF, NUL …): 'v1\\x00'"),
])
def test_control_characters_and_bad_names_are_refused(document: dict[str, Any],
                                                      expected: str) -> None:
    assert expected in errors_of(document)


def test_python_construction_refuses_a_header_split_too() -> None:
    with pytest.raises(PolicyError, match="header must not contain control characters"):
        AuthPolicy(bearer=BearerPolicy(token_env="T"), header="a\r\nb")


def test_a_tab_in_a_header_value_match_is_allowed() -> None:
    policy = Policy.from_dict(svc(routes=[{"match": {"headers": {"x-a": {"exact": "a\tb"}}}}]))
    assert policy.services["users"].routes[0].match.headers["x-a"].exact == "a\tb"


def test_a_long_value_is_shortened_in_the_message() -> None:
    (error,) = errors_of({"version": 5, "services": "x" * 1_000_000})
    assert len(error) < 200 and error.startswith("services must be a table/object, not a string")


def test_a_flood_of_problems_is_reported_in_bounded_form() -> None:
    text = "{" + ", ".join('"version": "v"' for _ in range(10_000)) + "}"
    errors = errors_of(text)
    assert len(errors) == 51 and errors[-1].startswith("… and ")


def test_dev_zero_as_a_file_fails_fast() -> None:
    with pytest.raises(PolicyError, match=r"^/dev/zero: policy file is larger than 1048576 bytes$"):
        Policy.load("/dev/zero")


def test_dev_zero_from_the_environment_fails_fast() -> None:
    with pytest.raises(PolicyError, match=r"MESHCLIENT_POLICY: /dev/zero: policy file is larger"):
        Policy.from_env({"MESHCLIENT_POLICY": "/dev/zero"})


def test_an_oversized_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_text('{"version": "' + "v" * (1 << 20) + '"}')
    with pytest.raises(PolicyError, match="policy file is larger than 1048576 bytes"):
        Policy.load(str(path))


def test_an_unreadable_path_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read policy file"):
        Policy.load(str(tmp_path))
    with pytest.raises(PolicyError, match="cannot read policy file"):
        Policy.load("bad\x00path.json")


def test_a_toml_document_may_start_with_a_table_header() -> None:
    policy = policy_from_text('[services.users]\nendpoints = ["127.0.0.2:80"]\n')
    assert policy.services["users"].endpoints[0].address == "127.0.0.2:80"


@pytest.mark.parametrize("text", [b"\xff\xfe", "[]", "1", '"x"', b'{"version": "\xc3"}'])
def test_other_bad_text_is_a_policy_error(text: str | bytes) -> None:
    with pytest.raises(PolicyError):
        policy_from_text(text, fmt="json")
    with pytest.raises(PolicyError):
        policy_from_text(text)
    with pytest.raises(PolicyError, match="format must be auto, json or toml: 'yaml'"):
        policy_from_text(text, fmt="yaml")


@pytest.mark.parametrize("total", ["1ns", "1000002ns", "0.001000002s", "2.5e-1s", "1e3ms"])
def test_durations_round_trip_exactly_through_to_dict(total: str) -> None:
    policy = Policy.from_dict({"defaults": {"timeout": {"total": total}}})
    assert Policy.from_dict(policy.to_dict()) == policy


@pytest.mark.parametrize(("value", "expected"), [
    ('{"version": "a", "version": "b"}', "MESHCLIENT_POLICY: version is given more than once"),
    ('{"a": ' * 100_000, "MESHCLIENT_POLICY: inline JSON: document is nested more than 32"),
    ('{"defaults": {"timeout": {"total": NaN}}}',
     "MESHCLIENT_POLICY: defaults.timeout.total must be a finite number within range: NaN"),
    ('{"authorization": {"rules": [{}]}}',
     "MESHCLIENT_POLICY: authorization.rules[0].action is required"),
])
def test_an_inline_policy_from_the_environment_is_checked_alike(value: str, expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.from_env({"MESHCLIENT_POLICY": value})
    assert info.value.errors[0].startswith(expected)


@pytest.mark.parametrize("value", ["9" * 5000, "1e400", "1e300s", "nan"])
def test_an_absurd_interval_from_the_environment_names_the_variable(value: str) -> None:
    from meshclient.policy import settings_from_env

    with pytest.raises(PolicyError, match=r"^MESHCLIENT_CONTROL_INTERVAL must be"):
        settings_from_env({"MESHCLIENT_CONTROL_INTERVAL": value})


def test_a_cross_field_rule_meeting_a_refused_value_still_gives_a_policy_error() -> None:
    from meshclient.policy import TimeoutPolicy

    with pytest.raises(PolicyError, match=r"^per_try must be at most 31536000s"):
        TimeoutPolicy(total=1.0, per_try=10**400)
