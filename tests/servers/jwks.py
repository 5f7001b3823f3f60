"""A JWKS endpoint on loopback and the keys and tokens the tests sign with (`cryptography`
keys made here, tokens by PyJWT).

Knobs, switchable while it serves: `keys` (the JWKs served), `cache_control` (the header
sent), `status` (answer this instead of the keys). `requests` counts the fetches."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tests.servers.threaded import QuietHandler, ThreadedHTTPServer

ISSUER = "https://issuer.test"
AUDIENCE = "orders"


class SigningKey:
    """A private key with its public JWK (`kid` set)."""

    def __init__(self, kind: str = "RSA", kid: str = "k1") -> None:
        self.kid = kid
        if kind == "RSA":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.alg = "RS256"
            cls: Any = jwt.algorithms.RSAAlgorithm
        elif kind == "EC":
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.alg = "ES256"
            cls = jwt.algorithms.ECAlgorithm
        else:
            self.private = ed25519.Ed25519PrivateKey.generate()
            self.alg = "EdDSA"
            cls = jwt.algorithms.OKPAlgorithm
        self.jwk = {**json.loads(cls.to_jwk(self.private.public_key())), "kid": kid,
                    "use": "sig"}

    def public_pem(self) -> bytes:
        return bytes(self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))

    def token(self, **overrides: Any) -> str:
        now = int(time.time())
        claims: dict[str, Any] = {"iss": ISSUER, "sub": "alice", "aud": AUDIENCE,
                                  "iat": now, "exp": now + 300}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(claims, self.private, algorithm=self.alg,
                          headers={"kid": self.kid})


def jwks_text(*keys: SigningKey) -> str:
    return json.dumps({"keys": [k.jwk for k in keys]})


class _Handler(QuietHandler):
    def do_GET(self) -> None:
        owner: JwksServer = self.server.owner
        with owner.lock:
            owner.requests += 1
            status, keys, cache = owner.status, list(owner.keys), owner.cache_control
            hold = owner.hold
        if hold is not None:  # the document is read: answer once released (bounded)
            hold.wait(10)
        body = json.dumps({"keys": keys}).encode() if status == 200 else b"down"
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if cache:
            self.send_header("Cache-Control", cache)
        self.end_headers()
        self.wfile.write(body)


class JwksServer(ThreadedHTTPServer):
    def __init__(self, *keys: SigningKey, host: str = "127.0.0.1",
                 cache_control: str | None = "max-age=300") -> None:
        self.lock = threading.Lock()
        self.keys = [k.jwk for k in keys]
        self.cache_control = cache_control
        self.status = 200
        self.requests = 0
        #: when set, each answer waits for this event after reading the keys
        self.hold: threading.Event | None = None
        super().__init__(_Handler, host)
        self.url = f"http://{self.address}/.well-known/jwks.json"

    def serve(self, *keys: SigningKey) -> None:
        with self.lock:
            self.keys = [k.jwk for k in keys]
