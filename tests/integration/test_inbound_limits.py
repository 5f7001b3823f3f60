"""The inbound rate limit (`inbound_limits`) through real ASGI (uvicorn) and WSGI (wsgiref)
servers and `@meshclient.handler`: per caller, 429 with `Retry-After` without running the
app, other callers unaffected, and the caller's principal carried to the handler's
outbound calls."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import meshclient
import meshclient.asgi
import meshclient.wsgi
from meshclient.policy import Policy, PolicyStore
from meshclient.security.limitkey import identity
from tests.servers.threaded import serve_asgi, serve_wsgi

POLICY = {"authorization": {"default": "allow", "trust_caller_header": "x-caller"},
          "inbound_limits": {"rate": 0.01, "burst": 2, "key": "principal"}}
ran: list[str | None] = []


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    who = identity.get()
    ran.append(who.principal if who else None)
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def wsgi_app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
    who = identity.get()
    ran.append(who.principal if who else None)
    start_response("200 OK", [])
    return [b"ok"]


@pytest.fixture(params=["asgi", "wsgi"])
def base(request: pytest.FixtureRequest) -> Iterator[str]:
    ran.clear()
    store = PolicyStore(Policy.from_dict(POLICY))
    if request.param == "asgi":
        with serve_asgi(meshclient.asgi.MeshMiddleware(asgi_app, policy=store)) as url:
            yield url
    else:
        with serve_wsgi(meshclient.wsgi.MeshMiddleware(wsgi_app, policy=store)) as url:
            yield url


def test_per_caller_limit_answers_429_with_retry_after(base: str) -> None:
    with httpx.Client(base_url=base) as client:
        a = [client.get("/x", headers={"x-caller": "a"}) for _ in range(3)]
        assert [r.status_code for r in a] == [200, 200, 429]
        assert int(a[2].headers["retry-after"]) >= 1
        assert a[2].text == "rate limit exceeded\n"
        b = client.get("/x", headers={"x-caller": "b"})
        assert b.status_code == 200  # another caller has its own bucket
        assert ran == ["a", "a", "b"]  # the refused request never reached the app
        # anonymous callers have no principal: not limited by a keyed limit (as Envoy)
        assert [client.get("/x").status_code for _ in range(3)] == [200] * 3


def test_handler_decorator_answers_429() -> None:
    store = PolicyStore(Policy.from_dict({"inbound_limits": {"rate": 0.01, "burst": 1}}))

    @meshclient.handler(policy=store)
    def view(request: Any) -> Any:
        return {"ok": True}

    class Req:
        method = "GET"
        path = "/x"
        headers: dict[str, str] = {}

    assert view(Req()) == {"ok": True}
    with pytest.raises(meshclient.HandlerRejected) as info:
        view(Req())
    assert info.value.status == 429 and int(info.value.headers["retry-after"]) >= 1


def test_inbound_limits_needs_a_rate() -> None:
    with pytest.raises(meshclient.PolicyError, match=r"inbound_limits\.rate must be set"):
        Policy.from_dict({"inbound_limits": {"burst": 2}})
    with pytest.raises(meshclient.PolicyError, match="max_concurrent=3"):
        Policy.from_dict({"inbound_limits": {"rate": 1, "max_concurrent": 3}})
    assert json.dumps(Policy.from_dict(POLICY).to_dict()["inbound_limits"])
