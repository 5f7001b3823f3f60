"""The trust settings parser and the remote-policy check, as pure functions."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from meshclient.errors import PolicyError
from meshclient.policy import Policy
from meshclient.policy._env import (
    DEFAULT_SECRET_ENV,
    DEFAULT_SECRET_PATHS,
    TrustSettings,
    trust_from_env,
)
from meshclient.policy.trust import check_remote


def test_defaults() -> None:
    settings = trust_from_env({})
    assert settings.secret_env == DEFAULT_SECRET_ENV == ("MESHCLIENT_SECRET_*",)
    assert settings.secret_paths == DEFAULT_SECRET_PATHS
    assert settings.admin_token is None and settings.admin_hosts == ()
    assert "tok" not in repr(trust_from_env({"MESHCLIENT_ADMIN_TOKEN": "tok"}))


@pytest.mark.parametrize(("name", "value", "bad"), [
    ("MESHCLIENT_SECRET_ENV", "GOOD, BAD-NAME", "'BAD-NAME'"),
    ("MESHCLIENT_SECRET_PATHS", "/run/secrets,relative/dir", "'relative/dir'"),
    ("MESHCLIENT_ADMIN_HOSTS", "ok.local,not ok", "'not ok'"),
])
def test_bad_values_are_named(name: str, value: str, bad: str) -> None:
    with pytest.raises(PolicyError, match=f"{name} items must be .*: {bad}"):
        trust_from_env({name: value})


@given(st.text(max_size=60), st.text(max_size=60), st.text(max_size=60))
def test_parser_gives_settings_or_a_named_error(env: str, paths: str, hosts: str) -> None:
    environ = {"MESHCLIENT_SECRET_ENV": env, "MESHCLIENT_SECRET_PATHS": paths,
               "MESHCLIENT_ADMIN_HOSTS": hosts}
    try:
        settings = trust_from_env(environ)
    except PolicyError as exc:
        assert str(exc).startswith(("MESHCLIENT_SECRET_ENV", "MESHCLIENT_SECRET_PATHS",
                                    "MESHCLIENT_ADMIN_HOSTS"))
        return
    assert all(item and item == item.strip() for item in settings.secret_env)
    assert all(item.startswith("/") for item in settings.secret_paths)


def policy(**services: dict[str, object]) -> Policy:
    return Policy.from_dict({"services": services})


SETTINGS = TrustSettings(secret_env=("APP_*",), secret_paths=("/run/secrets",))


def test_defaults_section_is_named_as_the_field() -> None:
    remote = Policy.from_dict({"defaults": {"auth": {"bearer": {"token_env": "HOME"}}},
                               "services": {"x": {}}})
    assert check_remote(remote, Policy(), SETTINGS) == [
        "defaults.auth.bearer.token_env: a remote policy may read only environment variables "
        "matching MESHCLIENT_SECRET_ENV (APP_*): 'HOME'"]


def test_what_a_remote_policy_may_do() -> None:
    local = policy(a={"scheme": "https"}, b={"auth": {"bearer": {"token_env": "LOCAL"}}})
    assert check_remote(policy(a={"scheme": "https"}, c={"scheme": "http"},
                               b={"auth": {"bearer": {"token_env": "LOCAL"}}},
                               d={"auth": {"bearer": {"token_env": "APP_TOKEN"}}},
                               e={"auth": {"bearer": {"token_file": "/run/secrets/t"}}}),
                        local, SETTINGS) == []
    assert check_remote(policy(a={"scheme": "http"}), local, SETTINGS) == [
        "services.a.scheme: a remote policy may not downgrade a service the local policy "
        "declares https to plain http: 'http'"]


def test_secret_variables_are_documented_not_typos() -> None:
    import warnings

    from meshclient.policy._env import policy_from_env

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        policy_from_env({"MESHCLIENT_SECRET_BILLING": "t", "MESHCLIENT_SECRET_ENV": "A",
                         "MESHCLIENT_SECRET_PATHS": "/x", "MESHCLIENT_ADMIN_TOKEN": "t",
                         "MESHCLIENT_ADMIN_HOSTS": "h"})


def test_a_remote_policy_may_not_name_any_jwt_secret() -> None:
    def authn(**secret: str) -> Policy:
        return Policy.from_dict({"authentication": {"jwt": [
            {"issuer": "https://i.test", "algorithms": ["HS256"], **secret}]}})

    local = authn(secret_env="LOCAL_JWT")
    assert check_remote(authn(secret_env="LOCAL_JWT"), local, SETTINGS) == []
    assert check_remote(authn(secret_env="AWS_SECRET_ACCESS_KEY"), local, SETTINGS) == [
        "authentication.jwt[0].secret_env: a remote policy may read only environment "
        "variables matching MESHCLIENT_SECRET_ENV (APP_*): "
        "'AWS_SECRET_ACCESS_KEY'"]
    assert "secret_file: a remote policy may read only files" in check_remote(
        authn(secret_file="/etc/shadow"), local, SETTINGS)[0]
