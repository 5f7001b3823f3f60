"""The environment reader: pure over a mapping; bad values name the variable; unknown
`MESHCLIENT_*` names warn."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from meshclient import Policy, PolicyError, default_store
from meshclient.policy import VARIABLES, policy_from_env, settings_from_env


def test_empty_environment_is_the_empty_policy() -> None:
    assert policy_from_env({}) == Policy()
    assert settings_from_env({}).service is None


def test_policy_from_a_json_file(tmp_path: Path) -> None:
    path = tmp_path / "mesh.json"
    path.write_text(json.dumps({"version": "7", "services": {"users": {
        "endpoints": ["127.0.0.1:8001"]}}}))
    policy = policy_from_env({"MESHCLIENT_POLICY": str(path)})
    assert policy.version == "7" and "users" in policy.resolved


def test_policy_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "mesh.toml"
    path.write_text('version = "t"\n[services.users]\nendpoints = ["127.0.0.1:8001"]\n')
    assert policy_from_env({"MESHCLIENT_POLICY": str(path)}).version == "t"


def test_policy_inline_json() -> None:
    policy = policy_from_env({"MESHCLIENT_POLICY": '{"services": {"a": {"endpoints": '
                                                   '["127.0.0.1:1"]}}}'})
    assert policy.resolved["a"].endpoints[0].address == "127.0.0.1:1"


def test_endpoints_variable_adds_and_replaces() -> None:
    policy = policy_from_env({
        "MESHCLIENT_POLICY": '{"services": {"users": {"endpoints": ["127.0.0.1:1"], '
                             '"scheme": "https"}}}',
        "MESHCLIENT_ENDPOINTS_USERS": "127.0.0.2:80, 127.0.0.3:81",
        "MESHCLIENT_ENDPOINTS_BILLING_V2": "[::1]:8080",
    })
    users = policy.resolved["users"]
    assert [e.address for e in users.endpoints] == ["127.0.0.2:80", "127.0.0.3:81"]
    assert users.scheme == "https"  # the rest of the service is kept
    assert [e.address for e in policy.resolved["billing-v2"].endpoints] == ["[::1]:8080"]


def test_settings() -> None:
    settings = settings_from_env({"MESHCLIENT_SERVICE": "web", "MESHCLIENT_ZONE": "b",
                                  "MESHCLIENT_CONTROL_INTERVAL": "250ms",
                                  "MESHCLIENT_DNS_NAMESERVERS": "127.0.0.1:5353"})
    assert (settings.service, settings.zone, settings.control_interval) == ("web", "b", 0.25)
    assert settings.dns_nameservers == (("127.0.0.1", 5353),)


@pytest.mark.parametrize(("environ", "expected"), [
    ({"MESHCLIENT_ENDPOINTS_USERS": "127.0.0.1"},
     "MESHCLIENT_ENDPOINTS_USERS must be host:port: '127.0.0.1'"),
    ({"MESHCLIENT_ENDPOINTS_USERS": "127.0.0.1:0"}, "MESHCLIENT_ENDPOINTS_USERS port must be"),
    ({"MESHCLIENT_POLICY": "/nonexistent/mesh.toml"}, "MESHCLIENT_POLICY: "),
    ({"MESHCLIENT_POLICY": '{"services": {"users": {"retry": {"budget": {"ratio": 3}}}}}'},
     "MESHCLIENT_POLICY: services.users.retry.budget.ratio must be between 0 and 1: 3"),
    ({"MESHCLIENT_POLICY": "{not json"}, "MESHCLIENT_POLICY: "),
])
def test_bad_policy_values_name_the_variable(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(PolicyError) as info:
        policy_from_env(environ)
    assert any(expected in e for e in info.value.errors), info.value.errors


@pytest.mark.parametrize(("environ", "expected"), [
    ({"MESHCLIENT_CONTROL_INTERVAL": "soon"}, "MESHCLIENT_CONTROL_INTERVAL must be a duration"),
    ({"MESHCLIENT_CONTROL_INTERVAL": "0s"}, "MESHCLIENT_CONTROL_INTERVAL must be greater than 0"),
    ({"MESHCLIENT_CONTROL_URL": "ftp://x"}, "MESHCLIENT_CONTROL_URL must start with http://"),
    ({"MESHCLIENT_ADMIN": "localhost"}, "MESHCLIENT_ADMIN must be host:port: 'localhost'"),
])
def test_bad_settings_name_the_variable(environ: dict[str, str], expected: str) -> None:
    with pytest.raises(PolicyError, match=expected):
        settings_from_env(environ)


def test_unknown_variable_warns() -> None:
    with pytest.warns(UserWarning, match=r"unknown environment variable MESHCLIENT_POLCY"):
        policy_from_env({"MESHCLIENT_POLCY": "x"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy_from_env({"MESHCLIENT_SERVICE": "web", "MESHCLIENT_ENDPOINTS_A": "127.0.0.1:1",
                         "OTHER_THING": "1"})


def test_default_store_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHCLIENT_ENDPOINTS_USERS", "127.0.0.1:9")
    store = default_store()
    assert store is default_store()
    assert "users" in store.current.resolved


def test_bad_environment_fails_at_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MESHCLIENT_ENDPOINTS_USERS", "nowhere")
    with pytest.raises(PolicyError, match="MESHCLIENT_ENDPOINTS_USERS"):
        default_store()


def test_every_variable_is_documented() -> None:
    names = [v.name for v in VARIABLES]
    assert len(names) == len(set(names))
    for name in ("MESHCLIENT_POLICY", "MESHCLIENT_ENDPOINTS_<SERVICE>", "MESHCLIENT_SERVICE",
                 "MESHCLIENT_ZONE"):
        assert name in names
    assert all(v.doc and v.default for v in VARIABLES)


@pytest.mark.parametrize(("variable", "service"), [
    ("MESHCLIENT_ENDPOINTS_API__EXAMPLE__COM", "api.example.com"),
    ("MESHCLIENT_ENDPOINTS_API_V1__EXAMPLE__COM", "api-v1.example.com"),
    ("MESHCLIENT_ENDPOINTS_USERS_V2", "users-v2"),
    ("MESHCLIENT_ENDPOINTS_USERS", "users"),
])
def test_endpoints_variable_spells_dots_as_double_underscores(variable: str, service: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy = policy_from_env({variable: "127.0.0.2:8001"})
    assert list(policy.services) == [service]
    assert policy.services[service].endpoints[0].address == "127.0.0.2:8001"


def test_endpoints_variable_replaces_a_dotted_service_of_the_policy() -> None:
    document = '{"services": {"api.example.com": {"endpoints": ["127.0.0.3:1"], "scheme": "https"}}}'
    policy = policy_from_env({"MESHCLIENT_POLICY": document,
                              "MESHCLIENT_ENDPOINTS_API__EXAMPLE__COM": "127.0.0.2:8443"})
    assert list(policy.services) == ["api.example.com"]
    service = policy.services["api.example.com"]
    assert service.scheme == "https" and service.endpoints[0].address == "127.0.0.2:8443"


@pytest.mark.parametrize(("environ", "expected"), [
    ({"MESHCLIENT_ENDPOINTS_API_EXAMPLE_COM": "127.0.0.2:80"},
     "MESHCLIENT_ENDPOINTS_API_EXAMPLE_COM names the service 'api-example-com', which requests "
     "reach only at the host 'api-example-com'; for 'api.example.com' write "
     "MESHCLIENT_ENDPOINTS_API__EXAMPLE__COM"),
    ({"MESHCLIENT_POLICY": '{"services": {"pay.internal": {"endpoints": ["127.0.0.3:1"]}}}',
      "MESHCLIENT_ENDPOINTS_PAY_INTERNAL": "127.0.0.2:80"},
     "MESHCLIENT_ENDPOINTS_PAY_INTERNAL names the service 'pay-internal', which the policy "
     "does not define; the policy's 'pay.internal' is spelled "
     "MESHCLIENT_ENDPOINTS_PAY__INTERNAL"),
    ({"MESHCLIENT_ENDPOINTS_USERS___V2": "127.0.0.2:80"},
     "MESHCLIENT_ENDPOINTS_USERS___V2 names the service 'users.-v2', which is not a valid host "
     "name, so no request URL can name it"),
])
def test_endpoints_variable_naming_an_unreachable_service_warns(environ: dict[str, str],
                                                                 expected: str) -> None:
    with pytest.warns(UserWarning) as record:
        policy_from_env(environ)
    assert [str(w.message) for w in record] == [expected]
    assert record[0].filename == __file__


@pytest.mark.parametrize("variable", ["MESHCLIENT_ENDPOINTS_USER_SERVICE",
                                      "MESHCLIENT_ENDPOINTS_API__EXAMPLE__COM",
                                      "MESHCLIENT_ENDPOINTS_BILLING_V2"])
def test_endpoints_variable_for_an_ordinary_name_does_not_warn(variable: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy_from_env({variable: "127.0.0.2:80"})


def test_an_unknown_variable_warning_points_at_the_caller() -> None:
    for read in (policy_from_env, Policy.from_env):
        with pytest.warns(UserWarning, match="unknown environment variable MESHCLIENT_POLCY") \
                as record:
            read({"MESHCLIENT_POLCY": "x"})
        assert record[0].filename == __file__, read


def test_a_warning_from_a_transport_built_from_the_environment_points_at_the_caller(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import meshclient

    monkeypatch.setenv("MESHCLIENT_POLCY", "x")
    with pytest.warns(UserWarning, match="unknown environment variable") as record:
        transport = meshclient.MeshTransport()
    transport.close()
    assert record[0].filename == __file__


def test_an_endpoints_value_with_a_control_character_names_the_variable() -> None:
    with pytest.raises(PolicyError, match=r"^MESHCLIENT_ENDPOINTS_USERS: address must not "
                                          r"contain control characters"):
        policy_from_env({"MESHCLIENT_ENDPOINTS_USERS": "us\x00ers:80"})


@pytest.mark.parametrize("name", ["MESHCLIENT_CONTROL_TOKEN", "MESHCLIENT_CONTROL_URL",
                                  "MESHCLIENT_SERVICE", "MESHCLIENT_ZONE",
                                  "MESHCLIENT_POLICY_CACHE"])
def test_a_setting_with_a_line_break_is_refused_without_echoing_it(name: str) -> None:
    value = "http://127.0.0.2/x\r\nX-Evil: 1" if name.endswith("URL") else "s3cret\r\nX-Evil: 1"
    with pytest.raises(PolicyError) as info:
        settings_from_env({name: value})
    assert str(info.value) == f"{name} must not contain control characters (CR, LF, NUL …)"


def test_inline_policy_json_may_span_lines() -> None:
    policy = policy_from_env({"MESHCLIENT_POLICY": '{\n  "version": "v1"\n}\n'})
    assert policy.version == "v1"
