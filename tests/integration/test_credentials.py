"""Outbound credentials against a real local OAuth2 token endpoint and real backends,
through both shells."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from meshclient.context import MIRROR_HEADER
from meshclient.policy import Policy
from meshclient.security.credentials import CredentialsError, CredentialsUnavailable
from meshclient.testing import Backend, LoopbackCluster
from tests.integration.test_limits import together
from tests.servers.caller import Caller
from tests.servers.helpers import wait_until
from tests.servers.oauth import TokenEndpoint


def oauth_policy(cluster: LoopbackCluster, endpoint: TokenEndpoint, **extra: Any) -> Policy:
    oauth2 = {"token_url": endpoint.url, "client_id": endpoint.client_id,
              "client_secret_env": "SVC_SECRET", "scopes": ["read", "write"], **extra}
    return Policy.from_dict({"services": {
        "svc": {"endpoints": cluster.addresses[:2], "auth": {"oauth2": oauth2}},
        "plain": {"endpoints": cluster.addresses[2:]},
    }})


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("SVC_SECRET", "s3cret-value")
    return "s3cret-value"


def auth_of(response: httpx.Response) -> str | None:
    headers = {k.lower(): v for k, v in response.json()["headers"].items()}
    return headers.get("authorization")


@pytest.mark.slow
def test_one_refresh_for_fifty_concurrent_requests_at_expiry(mesh, cluster, secret_env) -> None:
    with TokenEndpoint(expires_in=0.5, delay_s=0.2) as endpoint:
        caller = mesh(oauth_policy(cluster, endpoint, refresh_before="0s"))
        assert auth_of(caller.get("http://svc/")) == "Bearer tok-1"
        assert endpoint.forms[0] == {"grant_type": "client_credentials", "scope": "read write"}
        endpoint.expires_in = 60  # the next token outlives the test
        time.sleep(0.6)  # the scenario: real time passes until the token has expired
        results = together(caller, "http://svc/", 50)
        assert results == [200] * 50
        assert endpoint.requests == 2
        sent = [h for b in cluster.backends[:2] for _m, _p, h, _b in b.requests]
        assert sorted({h.get("authorization") for h in sent}) == ["Bearer tok-1",
                                                                   "Bearer tok-2"]


@pytest.mark.slow
def test_refresh_ahead_of_expiry_does_not_block(mesh, cluster, secret_env) -> None:
    # the refresh window is 1.5 s to 3 s after the token came: wide enough that a loaded
    # machine cannot stall the test past it
    with TokenEndpoint(expires_in=3.0, delay_s=0.3) as endpoint:
        caller = mesh(oauth_policy(cluster, endpoint, refresh_before="1.5s"))
        assert auth_of(caller.get("http://svc/")) == "Bearer tok-1"
        time.sleep(1.6)  # the scenario: real time passes into the refresh window
        start = time.monotonic()
        results = together(caller, "http://svc/", 10)
        assert results == [200] * 10
        assert endpoint.requests == 2
        assert auth_of(caller.get("http://svc/")) == "Bearer tok-2"
        assert time.monotonic() - start < 2.0


@pytest.mark.slow
def test_credentials_only_for_that_service(mesh, cluster, secret_env) -> None:
    with TokenEndpoint() as endpoint:
        caller = mesh(oauth_policy(cluster, endpoint))
        assert auth_of(caller.get("http://svc/")) == "Bearer tok-1"
        assert auth_of(caller.get("http://plain/")) is None  # another service
        assert auth_of(caller.get(cluster[0].url + "/direct")) is None  # not a service
        mirrored = caller.get("http://svc/", headers={MIRROR_HEADER: "1"})
        assert auth_of(mirrored) is None  # a mirror copy
        own = caller.get("http://svc/", headers={"Authorization": "Bearer mine"})
        assert auth_of(own) == "Bearer mine"  # the caller's own header wins


@pytest.mark.slow
def test_token_never_logged(mesh, cluster, secret_env, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    with TokenEndpoint(expires_in=0.5) as endpoint:
        caller = mesh(oauth_policy(cluster, endpoint, refresh_before="0s"))
        caller.get("http://svc/")
        endpoint.status = 503
        time.sleep(0.6)  # the scenario: real time passes until the token has expired
        with pytest.raises(CredentialsUnavailable) as info:
            caller.get("http://svc/")
        assert isinstance(info.value, httpx.TransportError)
        assert repr(caller.transport.security.guard(
            caller.store.current.resolved["svc"]).credentials).count("tok-") == 0
    text = " ".join(f"{r.getMessage()} {r.args!r}" for r in caplog.records) + str(info.value)
    assert caplog.records  # DEBUG logs of httpx/httpcore were captured
    assert "tok-1" not in text and secret_env not in text
    assert "token request to" in text  # the failure itself is logged, without the secret


@pytest.mark.slow
def test_bearer_from_env_and_file(mesh, cluster, monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SVC_TOKEN", "env-token")
    token_file = tmp_path / "token"
    token_file.write_text("file-token-1\n")
    policy = Policy.from_dict({"services": {
        "a": {"endpoints": [cluster.addresses[0]], "auth": {"bearer": {"token_env": "SVC_TOKEN"}}},
        "b": {"endpoints": [cluster.addresses[1]],
              "auth": {"bearer": {"token_file": str(token_file)}, "header": "x-api-key"}},
    }})
    caller = mesh(policy)
    assert auth_of(caller.get("http://a/")) == "Bearer env-token"
    assert caller.get("http://b/").json()["headers"]["x-api-key"] == "Bearer file-token-1"
    token_file.write_text("file-token-2-longer\n")
    # the file is checked at most once a second
    wait_until(lambda: caller.get("http://b/").json()["headers"]["x-api-key"]
               == "Bearer file-token-2-longer")


def test_missing_secret_fails_at_start_up(mesh, cluster) -> None:
    policy = Policy.from_dict({"services": {"a": {"endpoints": [cluster.addresses[0]],
                                                  "auth": {"bearer": {"token_env": "NOPE"}}}}})
    with pytest.raises(CredentialsError, match="environment variable NOPE is not set"):
        mesh(policy)


def test_wrong_secret_is_unavailable_not_leaked(mesh, monkeypatch) -> None:
    monkeypatch.setenv("SVC_SECRET", "wrong-secret")
    with TokenEndpoint() as endpoint, Backend() as backend:
        caller = mesh(Policy.from_dict({"services": {"svc": {
            "endpoints": [backend.address], "auth": {"oauth2": {
                "token_url": endpoint.url, "client_id": "app",
                "client_secret_env": "SVC_SECRET"}}}}}))
        with pytest.raises(CredentialsUnavailable) as info:
            caller.get("http://svc/")
        assert "401" in str(info.value) and "wrong-secret" not in str(info.value)
        assert backend.hits == 0


@pytest.mark.slow
def test_one_refresh_shared_by_threads_and_tasks(cluster, secret_env) -> None:
    with TokenEndpoint(expires_in=0.5, delay_s=0.3) as endpoint:
        sync_caller = Caller("sync", oauth_policy(cluster, endpoint, refresh_before="0s"))
        async_caller = Caller("async", sync_caller.store)  # one store: one token cache
        try:
            assert auth_of(sync_caller.get("http://svc/")) == "Bearer tok-1"
            endpoint.expires_in = 60
            time.sleep(0.6)  # the scenario: real time passes until the token has expired
            out: list[list[Any]] = []
            side = threading.Thread(target=lambda: out.append(
                together(async_caller, "http://svc/", 25)))
            side.start()
            results = together(sync_caller, "http://svc/", 25)
            side.join(30)
            assert results == [200] * 25 and out == [[200] * 25]
            assert endpoint.requests == 2
        finally:
            sync_caller.close()
            async_caller.close()


def test_callers_request_object_never_gets_the_credential(cluster, monkeypatch) -> None:
    monkeypatch.setenv("SVC_TOKEN", "env-token")
    policy = Policy.from_dict({"services": {"a": {"endpoints": [cluster.addresses[0]],
                                                  "auth": {"bearer": {"token_env": "SVC_TOKEN"}}}}})
    caller = Caller("sync", policy)
    try:
        request = caller.client.build_request("GET", "http://a/")
        response = caller.client.send(request)
        assert auth_of(response) == "Bearer env-token"
        assert "authorization" not in request.headers
    finally:
        caller.close()


def test_failed_token_endpoint_is_not_hammered(secret_env) -> None:
    from meshclient.policy._security import OAuth2Policy
    from meshclient.security.credentials import OAuth2Credentials
    from meshclient.security.token import RETRY_BASE_S as RETRY_S
    from meshclient.testing import FakeClock

    clock = FakeClock()
    with TokenEndpoint(expires_in=60) as endpoint:
        creds = OAuth2Credentials(OAuth2Policy(token_url=endpoint.url, client_id="app",
                                               client_secret_env="SVC_SECRET",
                                               refresh_before=10), clock=clock)
        endpoint.status = 503
        for _ in range(5):
            with pytest.raises(CredentialsUnavailable, match="answered 503"):
                creds.header_value_sync()
        assert endpoint.requests == 1  # backing off: failed at once, no new token request
        clock.advance(RETRY_S)
        endpoint.status = 200
        assert creds.header_value_sync() == "Bearer tok-2"
        clock.advance(50)  # inside refresh_before: refreshed, the old token still served
        endpoint.status = 503
        assert creds.header_value_sync() == "Bearer tok-2"  # refresh failed, token valid
        assert endpoint.requests == 3
        assert creds.header_value_sync() == "Bearer tok-2"
        assert endpoint.requests == 3  # retried only after RETRY_S
        clock.advance(RETRY_S)
        endpoint.status = 200
        assert creds.header_value_sync() == "Bearer tok-2"  # the caller that refreshes
        assert creds.header_value_sync() == "Bearer tok-4"  # still used the valid one
