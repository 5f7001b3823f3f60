"""Programmable checks (`check=` on both middlewares and the handler decorator, and a policy's
CUSTOM rule naming a registered check): sync and async functions allow (adding headers) or
deny with their own answer; a late or failing check is denied or allowed by its failure
mode, within its timeout; authentication runs first."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import meshclient.asgi
import meshclient.wsgi
from meshclient.policy import Policy, PolicyStore
from meshclient.security.checks import Allow, Deny, RequestView, register_check, unregister_check
from tests.integration.inbound_apps import KINDS, serve
from tests.servers.jwks import ISSUER, JwksServer, SigningKey

KEY = SigningKey("RSA", "c1")
EMPTY = PolicyStore(Policy.from_dict({}))


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # a hanging check returns once the test is over


def _deny_tenant(view: RequestView) -> Allow | Deny:
    if view.headers.get("x-tenant") == "suspended":
        return Deny(451, (("x-reason", "suspended"),), b"tenant suspended\n")
    return Allow((("x-checked", f"{view.method} {view.path}?{view.query}"),))


async def _async_deny_tenant(view: RequestView) -> Allow | Deny:
    await asyncio.sleep(0)
    return _deny_tenant(view)


@pytest.mark.parametrize("fn", [_deny_tenant, _async_deny_tenant], ids=["sync", "async"])
def test_check_allows_with_headers_and_denies_with_its_answer(kind: str, fn: Any) -> None:
    with serve(kind, policy=EMPTY, check=fn) as url:
        r = httpx.get(f"{url}/orders", params={"a": "1"}, timeout=10)
        assert r.status_code == 200
        assert r.json()["x-checked"] == "GET /orders?a=1"  # the check's headers added
        r = httpx.get(f"{url}/orders", headers={"x-tenant": "suspended"}, timeout=10)
        assert (r.status_code, r.text, r.headers["x-reason"]) == (
            451, "tenant suspended\n", "suspended")


@pytest.mark.parametrize("fail_open", [False, True])
@pytest.mark.parametrize("style", ["sync", "async"])
def test_late_check_fails_by_its_mode_within_its_timeout(
        kind: str, fail_open: bool, style: str, release: threading.Event) -> None:
    def hang(view: RequestView) -> Allow:
        release.wait(10)
        return Allow()

    async def hang_async(view: RequestView) -> Allow:
        await asyncio.sleep(10)
        return Allow()

    fn = hang if style == "sync" else hang_async
    with serve(kind, policy=EMPTY, check=fn, check_timeout=0.1,
               check_fail_open=fail_open) as url:
        started = time.monotonic()
        r = httpx.get(f"{url}/x", timeout=10)
        assert r.status_code == (200 if fail_open else 403)
        assert time.monotonic() - started < 5  # bounded by the timeout, not the check


@pytest.mark.parametrize("fail_open", [False, True])
def test_raising_check_fails_by_its_mode(kind: str, fail_open: bool) -> None:
    def broken(view: RequestView) -> Allow:
        raise RuntimeError("policy database down")

    with serve(kind, policy=EMPTY, check=broken, check_fail_open=fail_open) as url:
        assert httpx.get(f"{url}/x", timeout=10).status_code == (200 if fail_open else 403)


def test_custom_rule_names_a_registered_check_and_sees_the_end_user(kind: str) -> None:
    seen: list[RequestView] = []

    def audit(view: RequestView) -> Allow | Deny:
        seen.append(view)
        return Deny(403, body=b"admins only\n") if view.claims.get("role") != "admin" \
            else Allow()

    register_check("admin-check", audit)
    try:
        with JwksServer(KEY) as jwks:
            store = PolicyStore(Policy.from_dict({
                "authentication": {"jwt": [{"issuer": ISSUER, "jwks_uri": jwks.url}]},
                "authorization": {"policies": [
                    {"action": "CUSTOM", "provider": "admin-check",
                     "rules": [{"to": [{"operation": {"paths": ["/admin*"]}}]}]}]}}))
            with serve(kind, policy=store) as url:
                def get(path: str, **claims: Any) -> httpx.Response:
                    token = KEY.token(aud=None, **claims)
                    return httpx.get(f"{url}{path}", timeout=10,
                                     headers={"authorization": f"Bearer {token}"})

                assert get("/public").status_code == 200 and not seen
                assert get("/admin/x", role="admin").status_code == 200
                r = get("/admin/x", role="user")
                assert (r.status_code, r.text) == (403, "admins only\n")
                assert seen[-1].request_principal == f"{ISSUER}/alice"
                r = get("/admin/x", role="admin", exp=1)  # authentication runs first
                assert r.status_code == 401 and len(seen) == 2
    finally:
        unregister_check("admin-check")


def test_a_check_that_is_not_a_function_is_refused() -> None:
    for make in (lambda: meshclient.asgi.MeshMiddleware(lambda *a: None, check="nope"),
                 lambda: meshclient.wsgi.MeshMiddleware(lambda *a: [], check=42),
                 lambda: meshclient.handler(check="nope")):
        with pytest.raises(TypeError, match="check must be a function"):
            make()  # type: ignore[no-untyped-call]
    with pytest.raises(ValueError, match="check_timeout must be greater than 0: 0"):
        meshclient.asgi.MeshMiddleware(lambda *a: None, check=_deny_tenant, check_timeout=0,
                                       policy=EMPTY)
