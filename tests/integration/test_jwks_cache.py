"""The JWKS cache against real servers on loopback: cache headers decide when it fetches
again, a JWKS endpoint that never answers costs a request at most the fetch timeout, and a
forked child fetches for itself."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from meshclient.policy import Policy, PolicyStore
from meshclient.security.jwks import JwksCache, NeedKeys
from meshclient.testing import FakeClock
from tests.integration.inbound_apps import serve
from tests.servers.helpers import reap, until
from tests.servers.jwks import ISSUER, JwksServer, SigningKey

KEY = SigningKey("RSA", "cache-1")


def _wait(cond: Callable[[], object], timeout_s: float = 10.0) -> bool:
    return until(lambda: bool(cond()), timeout_s, every_s=0.01)


def test_max_age_is_honoured() -> None:
    with JwksServer(KEY, cache_control="max-age=300") as server:
        cache = JwksCache(server.url, timeout_s=5)
        NeedKeys(cache, unknown_kid=False).run()
        assert cache.keys() is not None and server.requests == 1
        for _ in range(20):
            assert cache.keys() is not None
        assert server.requests == 1  # fresh for five minutes: no fetch
    with JwksServer(KEY, cache_control="max-age=1") as server:
        cache = JwksCache(server.url, timeout_s=5)
        NeedKeys(cache, unknown_kid=False).run()
        assert _wait(lambda: cache.keys() is not None and server.requests >= 2)


@pytest.fixture
def silent() -> Iterator[str]:
    """A port that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/jwks.json"
    finally:
        sock.close()


@pytest.mark.parametrize("kind", ["mesh-asgi", "mesh-wsgi"])
def test_a_silent_jwks_endpoint_costs_at_most_the_fetch_timeout(kind: str,
                                                                silent: str) -> None:
    store = PolicyStore(Policy.from_dict({"authentication": {"jwt": [
        {"issuer": ISSUER, "jwks_uri": silent, "timeout": "300ms"}]}}))
    with serve(kind, policy=store) as url:
        started = time.monotonic()
        r = httpx.get(f"{url}/x", headers={"authorization": f"Bearer {KEY.token()}"},
                      timeout=10)
        assert r.status_code == 401
        assert time.monotonic() - started < 5
        assert httpx.get(f"{url}/x", timeout=10).status_code == 200  # no token: not blocked


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_child_fetches_for_itself() -> None:
    with JwksServer(KEY) as server:
        cache = JwksCache(server.url, timeout_s=5)
        NeedKeys(cache, unknown_kid=False).run()
        assert server.requests == 1
        cache._done = object()  # type: ignore[assignment]  # as if a fetch were in flight
        pid = os.fork()
        if pid == 0:  # the child: the parent's fetch thread does not exist here
            code = 1
            try:
                NeedKeys(cache, unknown_kid=True).run()
                code = 0 if server.requests == 2 or cache.fetches == 2 else 2
            finally:
                os._exit(code)
        cache._done = None
        assert reap(pid, 20) == 0  # None: the forked child hung and was killed
        assert server.requests == 2  # the child's own fetch reached the server


def test_a_jwks_file_is_read_again_when_it_changes(tmp_path: object) -> None:
    from pathlib import Path

    from meshclient.security.jwt import Authenticator, Invalid, Verified
    from tests.servers.jwks import jwks_text

    path = Path(str(tmp_path)) / "jwks.json"
    old, new = SigningKey("EC", "file-old"), SigningKey("EC", "file-new")
    path.write_text(jwks_text(old))
    authn = Authenticator(Policy.from_dict({"authentication": {"jwt": [
        {"issuer": ISSUER, "jwks_file": str(path)}]}}).authentication)  # type: ignore[arg-type]

    def verify(key: SigningKey) -> object:
        gen = authn.authenticate({"authorization": f"Bearer {key.token(aud=None)}"})
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
        raise AssertionError("a file never needs a fetch")

    assert isinstance(verify(old), Verified) and isinstance(verify(new), Invalid)
    path.write_text(jwks_text(new))
    os.utime(path, (time.time() + 5, time.time() + 5))  # a new mtime, whatever the clock
    assert _wait(lambda: isinstance(verify(new), Verified))  # checked at most once a second
    assert isinstance(verify(old), Invalid)


def test_a_key_rotated_in_during_a_background_refresh_is_seen_at_once() -> None:
    """The background refresh read the document before the new key was published; the
    token naming the new key must not be judged by that answer."""
    old, new = SigningKey("RSA", "old"), SigningKey("RSA", "new")
    clock = FakeClock()
    with JwksServer(old, cache_control="max-age=10") as server:
        cache = JwksCache(server.url, timeout_s=5, clock=clock)
        assert cache.wait_for_keys() is not None and server.requests == 1
        server.hold = threading.Event()
        clock.advance(9)  # past 80% of max-age: the next read starts a background refresh
        cache.keys()
        assert _wait(lambda: server.requests == 2)  # it has read the old document
        server.serve(old, new)
        found: list[object] = []
        asker = threading.Thread(target=lambda: found.append(cache.refresh_for_unknown_kid()))
        asker.start()
        server.hold.set()
        asker.join(20)
        keys = found[0]
        assert keys is not None and keys.candidates("new", "RS256")  # type: ignore[attr-defined]
