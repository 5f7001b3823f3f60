"""The mesh transport is a true drop-in: redirects, cookies, auth, event hooks, timeouts and
the inner transport's exceptions behave as with the bare transport. Both shells."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest

from meshclient.testing import LoopbackCluster


def _closed_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def test_redirects_follow_through_the_mesh(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"), client_kwargs={"follow_redirects": True})
    r = caller.get("http://users/redirect?to=/final")
    assert r.status_code == 200
    assert [h.status_code for h in r.history] == [302]
    assert str(r.url) == "http://users/final"  # the logical URL, not the endpoint's
    assert r.json()["path"] == "/final" and r.json()["headers"]["Host"] == "users"
    assert str(r.history[0].url) == "http://users/redirect?to=/final"


def test_redirects_not_followed_by_default(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"))
    r = caller.get("http://users/redirect?to=/final")
    assert r.status_code == 302 and r.headers["Location"] == "/final"
    assert r.next_request is not None and str(r.next_request.url) == "http://users/final"


def test_cookies_are_kept_for_the_logical_host(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"), client_kwargs={"follow_redirects": True})
    r = caller.get("http://users/cookies/set?session=abc&theme=dark")
    assert r.json()["headers"]["Cookie"] in ("session=abc; theme=dark", "theme=dark; session=abc")
    assert caller.client.cookies.get("session", domain="users.local") == "abc"
    again = caller.get("http://users/whoami")  # a later call, maybe another endpoint
    assert "session=abc" in again.json()["headers"]["Cookie"]


def test_auth(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"), client_kwargs={"auth": ("alice", "s3cret")})
    r = caller.get("http://users/private")
    assert r.json()["headers"]["Authorization"] == "Basic YWxpY2U6czNjcmV0"
    r = caller.get("http://users/private", auth=httpx.BasicAuth("bob", "pw"))
    assert r.json()["headers"]["Authorization"] == "Basic Ym9iOnB3"


def test_event_hooks_see_the_logical_request(mesh, shell: str,
                                             cluster: LoopbackCluster) -> None:
    seen: list[str] = []

    def on_request(request: httpx.Request) -> None:
        seen.append(f"request {request.url}")

    def on_response(response: httpx.Response) -> None:
        seen.append(f"response {response.status_code} {response.request.url}")

    hooks: dict[str, list[Any]]
    if shell == "sync":
        hooks = {"request": [on_request], "response": [on_response]}
    else:
        async def a_request(request: httpx.Request) -> None:
            on_request(request)

        async def a_response(response: httpx.Response) -> None:
            on_response(response)

        hooks = {"request": [a_request], "response": [a_response]}
    caller = mesh(cluster.policy("users"), client_kwargs={"event_hooks": hooks})
    caller.get("http://users/hooked")
    assert seen == ["request http://users/hooked", "response 200 http://users/hooked"]


@pytest.mark.slow
def test_httpx_timeout_is_honoured(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"), client_kwargs={"timeout": httpx.Timeout(0.2)})
    with pytest.raises(httpx.ReadTimeout):
        caller.get("http://users/slow?delay_ms=2000")
    # per request too, and a generous timeout lets the same call through
    r = caller.get("http://users/slow?delay_ms=50", timeout=httpx.Timeout(5.0))
    assert r.status_code == 200


def test_refused_passthrough_is_the_inner_connect_error(mesh) -> None:
    caller = mesh(None)
    port = _closed_port()
    with pytest.raises(httpx.ConnectError) as info:
        caller.get(f"http://127.0.0.1:{port}/")
    assert type(info.value) is httpx.ConnectError  # not wrapped, not replaced


def test_refused_endpoint_is_a_connect_error(mesh) -> None:
    from meshclient import Policy

    port = _closed_port("127.0.0.9")
    caller = mesh(Policy.from_dict({"services": {"gone": {"endpoints": [f"127.0.0.9:{port}"]}}}))
    with pytest.raises(httpx.ConnectError):
        caller.get("http://gone/")


def test_status_errors_are_responses_not_exceptions(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"))
    r = caller.get("http://users/x?status=404")
    assert r.status_code == 404
    with pytest.raises(httpx.HTTPStatusError):
        r.raise_for_status()


def test_request_body_and_method_preserved(mesh, cluster: LoopbackCluster) -> None:
    caller = mesh(cluster.policy("users"))
    r = caller.request("PUT", "http://users/items/1?a=b", json={"name": "x"},
                       headers={"X-Custom": "yes"})
    body = r.json()
    assert body["method"] == "PUT" and body["path"] == "/items/1?a=b"
    assert body["headers"]["X-Custom"] == "yes" and body["body_bytes"] == len(b'{"name":"x"}')
