"""Inbound authorization through real ASGI (uvicorn) and WSGI (wsgiref) apps: allow, deny,
default action, address lists, verified tokens, trusted headers, the TLS extension; 403s
counted and logged once per caller and rule."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any

import anyio
import httpx
import pytest

import meshclient.asgi
import meshclient.wsgi
from meshclient import _events
from meshclient.policy import Policy, PolicyStore
from meshclient.security import asgi as mesh_asgi
from meshclient.security import wsgi as mesh_wsgi
from meshclient.security.authz import Authorizer
from tests.servers.certs import CA
from tests.servers.threaded import serve_asgi, serve_wsgi

RULES = {
    "default": "deny",
    "tokens": ["billing=env:BILLING_TOKEN"],
    "trust_caller_header": "x-caller",
    "deny_addresses": ["127.0.0.66/32"],
    "rules": [
        {"name": "no-admin", "action": "deny", "paths": ["/admin/*"], "callers": ["*"]},
        {"name": "billing-reads", "action": "allow", "callers": ["billing"], "methods": ["GET"]},
        {"name": "frontends", "action": "allow", "callers": ["frontend-*"]},
        {"name": "health", "action": "allow", "callers": ["anonymous"], "paths": ["/healthz"]},
    ],
}


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    caller = scope.get("meshclient.caller")
    body = json.dumps({"caller": caller.identity if caller else None}).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    caller = environ.get("meshclient.caller")
    start_response("200 OK", [("Content-Type", "application/json")])
    return [json.dumps({"caller": caller.identity if caller else None}).encode()]


Server = Callable[[Any], AbstractContextManager[str]]


@pytest.fixture(params=["asgi", "wsgi", "mesh-asgi", "mesh-wsgi"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def served(kind: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str]]:
    monkeypatch.setenv("BILLING_TOKEN", "billing-secret-token")
    store = PolicyStore(Policy.from_dict({"authorization": RULES}))
    if kind == "asgi":
        middleware: Any = mesh_asgi.AuthorizationMiddleware(asgi_app, policy=store)
        server: Server = serve_asgi
    elif kind == "mesh-asgi":  # the same rules enforced by the mesh's own middleware
        middleware = meshclient.asgi.MeshMiddleware(asgi_app, policy=store)
        server = serve_asgi
    elif kind == "mesh-wsgi":
        middleware = meshclient.wsgi.MeshMiddleware(wsgi_app, policy=store)
        server = serve_wsgi
    else:
        middleware = mesh_wsgi.AuthorizationMiddleware(wsgi_app, policy=store)
        server = serve_wsgi
    with server(middleware) as url:
        yield middleware, url


def get(url: str, path: str, local: str = "127.0.0.1", **kwargs: Any) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=local)
    with httpx.Client(transport=transport) as client:
        return client.get(url + path, **kwargs)


@pytest.mark.slow
def test_allow_deny_default_and_lists(served, caplog) -> None:
    caplog.set_level(logging.WARNING, "meshclient.security")
    middleware, url = served
    events: list[tuple[str, dict[str, Any]]] = []
    unsubscribe = _events.subscribe(lambda k, s, a: events.append((k, a)))
    try:
        bearer = {"Authorization": "Bearer billing-secret-token"}
        r = get(url, "/invoices", headers=bearer)
        assert r.status_code == 200 and r.json() == {"caller": "billing"}  # verified token
        assert get(url, "/invoices", headers={"Authorization": "Bearer guess"}).status_code == 403
        r = get(url, "/page", headers={"X-Caller": "frontend-web"})  # trusted header
        assert r.json() == {"caller": "frontend-web"}
        assert get(url, "/healthz").json() == {"caller": None}  # anonymous, allowed by rule
        assert get(url, "/other").status_code == 403  # anonymous: default deny
        for _ in range(3):
            denied = get(url, "/admin/users", headers={"X-Caller": "frontend-web"})
            assert denied.status_code == 403 and denied.content == b""  # no body detail
        assert get(url, "/page", headers={"X-Caller": "frontend-web"},
                   local="127.0.0.66").status_code == 403  # deny list beats the rules
        assert get(url, "/healthz", local="127.0.0.66").status_code == 403
    finally:
        unsubscribe()
    counts = middleware.denials.counts()
    assert counts[("frontend-web", "no-admin")] == 3
    assert counts[("anonymous", "default")] == 2  # the bad token and /other
    assert counts[("frontend-web", "deny_addresses")] == 1
    assert middleware.denials.total == 7
    logged = [r.getMessage() for r in caplog.records if "denied" in r.getMessage()]
    assert len(logged) == 4  # once per (caller, rule)
    assert all("billing-secret-token" not in m for m in logged)
    denials = [a for k, a in events if k == _events.AUTHZ_DENIED]
    assert len(denials) == 7 and sum(a["first"] for a in denials) == 4


@pytest.mark.slow
def test_allow_list_and_default_allow(kind: str) -> None:
    policy = Policy.from_dict({"authorization": {"default": "allow",
                                                 "allow_addresses": ["127.0.0.0/30"]}})
    app = (mesh_asgi.AuthorizationMiddleware(asgi_app, policy=policy) if kind == "asgi"
           else mesh_wsgi.AuthorizationMiddleware(wsgi_app, policy=policy))
    server: Server = serve_asgi if kind == "asgi" else serve_wsgi
    with server(app) as url:
        assert get(url, "/x", local="127.0.0.2").status_code == 200
        assert get(url, "/x", local="127.0.0.9").status_code == 403
    assert app.denials.counts() == {("anonymous", "allow_addresses"): 1}


def test_untrusted_header_is_ignored() -> None:
    authz = Authorizer(Policy.from_dict({"authorization": {
        "rules": [{"action": "allow", "callers": ["admin"]}]}}).authorization)  # type: ignore[arg-type]
    caller = authz.identify(headers={"x-caller": "admin"}, address="127.0.0.1")
    assert caller.identity is None
    assert not authz.decide(caller, "GET", "/").allowed


def test_tls_extension_identity_spiffe_and_subject() -> None:
    ca = CA()
    spiffe_pem, _ = ca.issue("orders", uris=("spiffe://example.org/ns/prod/sa/orders",),
                             client=True)
    plain_pem, _ = ca.issue("reports", client=True)
    store = PolicyStore(Policy.from_dict({"authorization": {"rules": [
        {"action": "allow", "callers": ["spiffe://example.org/ns/prod/*"]},
        {"action": "allow", "callers": ["reports"], "methods": ["GET"]}]}}))
    app = mesh_asgi.AuthorizationMiddleware(asgi_app, policy=store)

    async def call(pem: str | None, method: str = "GET",
                   error: str | None = None) -> tuple[int, bytes]:
        tls = {"client_cert_chain": [pem] if pem else [], "client_cert_name": None,
               "client_cert_error": error}
        scope = {"type": "http", "method": method, "path": "/", "headers": [],
                 "client": ("127.0.0.1", 5000), "extensions": {"tls": tls}}
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b""}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return sent[0]["status"], sent[-1]["body"]

    assert anyio.run(call, spiffe_pem.decode()) == (
        200, b'{"caller": "spiffe://example.org/ns/prod/sa/orders"}')
    assert anyio.run(call, plain_pem.decode()) == (200, b'{"caller": "reports"}')
    assert anyio.run(call, plain_pem.decode(), "POST")[0] == 403
    assert anyio.run(call, spiffe_pem.decode(), "GET", "unverified")[0] == 403
    assert anyio.run(call, None)[0] == 403


@pytest.mark.slow
def test_policy_update_changes_rules(kind: str) -> None:
    store = PolicyStore(Policy.from_dict({"authorization": {"default": "deny"}}))
    app = (mesh_asgi.AuthorizationMiddleware(asgi_app, policy=store) if kind == "asgi"
           else mesh_wsgi.AuthorizationMiddleware(wsgi_app, policy=store))
    server: Server = serve_asgi if kind == "asgi" else serve_wsgi
    with server(app) as url:
        assert get(url, "/").status_code == 403
        store.replace(Policy.from_dict({"authorization": {"default": "allow"}}))
        assert get(url, "/").status_code == 200
        store.replace(Policy())  # no authorization section: every request allowed
        assert get(url, "/").status_code == 200


def test_handler_decorator_enforces_the_same_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """`@meshclient.handler` shares the gate: a generic request object gets HandlerRejected
    (403, no detail) for a denied caller, and the handler never runs."""
    from meshclient.server.decorators import HandlerRejected

    monkeypatch.setenv("BILLING_TOKEN", "billing-secret-token")
    store = PolicyStore(Policy.from_dict({"authorization": RULES}))
    ran: list[str] = []

    class Request:
        def __init__(self, path: str, headers: dict[str, str]) -> None:
            self.method, self.path, self.headers = "GET", path, headers

    @meshclient.handler(policy=store)
    def view(request: Request) -> str:
        ran.append(request.path)
        return "ok"

    assert view(Request("/page", {"x-caller": "frontend-web"})) == "ok"
    with pytest.raises(HandlerRejected) as info:
        view(Request("/admin/users", {"x-caller": "frontend-web"}))
    assert info.value.status == 403 and str(info.value) == ""
    assert ran == ["/page"]


@pytest.mark.parametrize("flavour", ["asgi", "mesh-asgi"])
def test_destination_ip_is_the_address_the_server_was_reached_on(flavour: str) -> None:
    """Istio's `destination.ip`: uvicorn puts the listening address in the scope's
    `server`; a rule on it allows or refuses by where the request arrived."""
    def policy(block: str) -> Policy:
        return Policy.from_dict({"authorization": {"policies": [{
            "name": "dst", "action": "ALLOW",
            "rules": [{"when": [{"key": "destination.ip", "values": [block]}]}]}]}})

    for block, status in (("127.0.0.0/24", 200), ("10.0.0.0/8", 403)):
        app = (mesh_asgi.AuthorizationMiddleware(asgi_app, policy=policy(block))
               if flavour == "asgi" else meshclient.asgi.MeshMiddleware(asgi_app,
                                                                       policy=policy(block)))
        with serve_asgi(app) as url:
            assert get(url, "/x").status_code == status, block


def test_destination_ip_from_a_wsgi_environ_and_a_framework_request() -> None:
    """WSGI: `SERVER_ADDR` when the server sets it, else an IP-literal `SERVER_NAME`; the
    handler decorator reads the same from a Starlette-style scope or a Flask/Django
    environ."""
    from meshclient.security.wsgi import server_ip
    from meshclient.server.decorators import _server

    assert server_ip({"SERVER_ADDR": "10.1.2.3", "SERVER_NAME": "web"}) == "10.1.2.3"
    assert server_ip({"SERVER_NAME": "10.1.2.4"}) == "10.1.2.4"
    assert server_ip({"SERVER_NAME": "localhost"}) is None

    class Starlette:
        scope = {"server": ("10.0.0.7", 8443)}

    class Flask:
        environ = {"SERVER_ADDR": "10.0.0.8", "SERVER_PORT": "8080"}

    class Django:
        META = {"SERVER_NAME": "10.0.0.9", "SERVER_PORT": "80"}

    assert _server(Starlette()) == ("10.0.0.7", 8443)
    assert _server(Flask()) == ("10.0.0.8", 8080)
    assert _server(Django()) == ("10.0.0.9", 80)
    assert _server(object()) == (None, None)
