"""End-user JWT authentication through every inbound entry point, against a JWKS served
over HTTP on loopback: valid tokens (RS256, ES256, EdDSA, HS256 with a configured secret)
pass with their principal and claims in `meshclient.context`; expired, not-yet-valid,
wrong-issuer, wrong-audience, wrong-signature, `alg: none` and key-confusion tokens get
401 with `WWW-Authenticate`; no token passes to authorization; key rotation loses no
valid request."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt
import pytest

from meshclient.policy import Policy, PolicyStore
from tests.integration.inbound_apps import KINDS, serve
from tests.servers.jwks import AUDIENCE, ISSUER, JwksServer, SigningKey

RSA = SigningKey("RSA", "rsa-1")
EC = SigningKey("EC", "ec-1")
ED = SigningKey("OKP", "ed-1")


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    with JwksServer(RSA, EC, ED) as server:
        yield server


def _policy(jwks_uri: str, **extra: Any) -> PolicyStore:
    rule = {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks_uri": jwks_uri,
            "output_claim_to_headers": [{"header": "x-user", "claim": "sub"}], **extra}
    return PolicyStore(Policy.from_dict({"authentication": {"jwt": [rule]}}))


def _get(url: str, token: str | None = None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    return httpx.get(f"{url}/orders", headers=headers, timeout=10)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(claims: dict[str, Any]) -> str:
    return (_b64(json.dumps({"alg": "none", "typ": "JWT"}).encode()) + "."
            + _b64(json.dumps(claims).encode()) + ".")


def _hs256_with(secret: bytes, claims: dict[str, Any], kid: str) -> str:
    """HS256 signed by hand with `secret` (PyJWT refuses a PEM as an HMAC key)."""
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    body = _b64(json.dumps(claims).encode())
    sig = hmac.new(secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(sig)}"


def test_valid_tokens_pass_with_principal_claims_and_claim_headers(
        kind: str, jwks: JwksServer) -> None:
    with serve(kind, policy=_policy(jwks.url)) as url:
        for key in (RSA, EC, ED):
            r = _get(url, key.token(groups=["admin"]))
            assert r.status_code == 200, (key.alg, r.text)
            body = r.json()
            assert body["principal"] == f"{ISSUER}/alice"
            assert body["claims"]["groups"] == ["admin"]
            assert body["x-user"] == "alice"  # output_claim_to_headers
            assert body["authorization"] is None  # forward_original_token: false


def test_no_token_passes_authentication(kind: str, jwks: JwksServer) -> None:
    with serve(kind, policy=_policy(jwks.url)) as url:
        r = _get(url)
        assert r.status_code == 200
        assert r.json()["principal"] is None


@pytest.mark.parametrize("case", ["expired", "not-yet-valid", "wrong-issuer",
                                  "wrong-audience", "wrong-signature", "alg-none",
                                  "key-confusion", "garbage", "unknown-kid"])
def test_invalid_tokens_get_401(kind: str, jwks: JwksServer, case: str) -> None:
    now = int(time.time())
    claims = {"iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "exp": now + 300}
    token = {
        "expired": lambda: RSA.token(exp=now - 3600),
        "not-yet-valid": lambda: RSA.token(nbf=now + 3600),
        "wrong-issuer": lambda: RSA.token(iss="https://evil.test"),
        "wrong-audience": lambda: RSA.token(aud="payments"),
        "wrong-signature": lambda: SigningKey("RSA", RSA.kid).token(),
        "alg-none": lambda: _unsigned(claims),
        "key-confusion": lambda: _hs256_with(RSA.public_pem(), claims, RSA.kid),
        "garbage": lambda: "not.a.jwt",
        "unknown-kid": lambda: SigningKey("RSA", "never-published").token(),
    }[case]()
    with serve(kind, policy=_policy(jwks.url)) as url:
        assert _get(url, RSA.token()).status_code == 200  # keys fetched, server up
        r = _get(url, token)
        assert r.status_code == 401, r.text
        assert r.headers["www-authenticate"].startswith('Bearer realm="meshclient", '
                                                        'error="invalid_token"')


def test_hs256_only_with_a_configured_secret(jwks: JwksServer,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_SECRET", "a-shared-secret-of-enough-length-32b")
    store = PolicyStore(Policy.from_dict({"authentication": {"jwt": [
        {"issuer": ISSUER, "secret_env": "JWT_SECRET", "algorithms": ["HS256"]}]}}))
    good = jwt.encode({"iss": ISSUER, "sub": "bob"}, "a-shared-secret-of-enough-length-32b",
                      algorithm="HS256")
    bad = jwt.encode({"iss": ISSUER, "sub": "bob"}, "another-secret-of-enough-length-32b",
                     algorithm="HS256")
    with serve("mesh-asgi", policy=store) as url:
        assert _get(url, good).json()["principal"] == f"{ISSUER}/bob"
        assert _get(url, bad).status_code == 401
        assert _get(url, RSA.token()).status_code == 401  # RS256 not configured here


def test_from_headers_and_params_and_forwarding(jwks: JwksServer) -> None:
    store = _policy(jwks.url, from_headers=[{"name": "x-jwt"}], from_params=["access_token"],
                    forward_original_token=True)
    with serve("mesh-wsgi", policy=store) as url:
        r = httpx.get(f"{url}/x", headers={"x-jwt": RSA.token()}, timeout=10)
        assert r.json()["principal"] == f"{ISSUER}/alice"
        r = httpx.get(f"{url}/x", params={"access_token": EC.token(sub="carol")}, timeout=10)
        assert r.json()["principal"] == f"{ISSUER}/carol"
        # Authorization is not a configured location here: its value is not a token
        r = httpx.get(f"{url}/x", headers={"authorization": "Bearer junk"}, timeout=10)
        assert r.status_code == 200 and r.json()["authorization"] == "Bearer junk"


@pytest.mark.parametrize("kind", ["mesh-asgi", "mesh-wsgi"])
def test_key_rotation_picks_up_new_kid_and_drops_old_without_rejecting_valid(
        kind: str) -> None:
    old, new = SigningKey("RSA", "old"), SigningKey("RSA", "new")
    with JwksServer(old, cache_control="max-age=1") as server, \
            serve(kind, policy=_policy(server.url)) as url:
        assert _get(url, old.token()).status_code == 200
        server.serve(old, new)  # the issuer publishes the new key, then signs with it
        statuses = [_get(url, new.token()).status_code for _ in range(5)]
        statuses += [_get(url, old.token()).status_code for _ in range(5)]
        assert statuses == [200] * 10
        server.serve(new)  # the old key is withdrawn
        deadline = time.monotonic() + 20
        old_status = 200
        while old_status == 200 and time.monotonic() < deadline:  # bounded poll
            assert _get(url, new.token()).status_code == 200
            old_status = _get(url, old.token()).status_code
        assert old_status == 401


def test_jwks_outage_serves_the_keys_held(jwks: JwksServer) -> None:
    jwks.cache_control = "max-age=1"
    with serve("mesh-asgi", policy=_policy(jwks.url)) as url:
        assert _get(url, RSA.token()).status_code == 200
        jwks.status = 503
        before = jwks.requests
        deadline = time.monotonic() + 20
        while jwks.requests == before and time.monotonic() < deadline:  # bounded poll
            assert _get(url, RSA.token()).status_code == 200
        assert jwks.requests > before  # refreshed in the background, failed …
        for _ in range(3):
            assert _get(url, RSA.token()).status_code == 200  # … and the keys still serve


def test_unknown_kid_refetches_are_rate_limited(jwks: JwksServer) -> None:
    with serve("mesh-asgi", policy=_policy(jwks.url)) as url:
        assert _get(url, RSA.token()).status_code == 200
        before = jwks.requests
        for i in range(5):
            assert _get(url, SigningKey("EC", f"made-up-{i}").token()).status_code == 401
        assert jwks.requests - before <= 1
