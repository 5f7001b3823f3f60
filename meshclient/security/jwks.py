"""JSON Web Key Sets: parsed into immutable `KeySet`s, and fetched over HTTP by a
`JwksCache` that keeps them for as long as the answer's cache headers say.

A `JwksCache` never blocks a request once warm: past 80% of the keys' lifetime a request
starts a refresh in a background thread and is served the keys it has. A token naming an
unknown `kid` may wait for one refresh (bounded by the fetch timeout; two when it found a
background refresh in flight, which may have read the document before the key was
published), at most once per
`UNKNOWN_KID_INTERVAL_S` (the first one at once), so a rotated-in key is accepted from its
first token while a stream of made-up kids costs one fetch per interval. A failed fetch
keeps the keys already held (stale-on-error) and is retried after `ERROR_RETRY_S`.
Conditional requests (`If-None-Match`) save the transfer when nothing changed.
Fork-safe: a forked child gets new locks and fetches again on first use.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from .. import _fork
from .._clock import CLOCK
from .._types import Clock
from ..errors import MeshError
from .cache_control import ttl

logger = logging.getLogger("meshclient.security")

#: The least time between two fetches caused by unknown `kid`s (Nimbus JOSE's default).
UNKNOWN_KID_INTERVAL_S = 30.0
#: How soon a failed fetch is tried again.
ERROR_RETRY_S = 5.0
#: The largest JWKS document read (a JWKS is a few kB).
MAX_JWKS_BYTES = 1 << 20
_KTY_ALGORITHMS = {
    "RSA": frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}),
    "EC": frozenset({"ES256", "ES384", "ES512"}),
    "OKP": frozenset({"EdDSA"}),
}


class JwksError(MeshError):
    """A JWKS could not be fetched or read."""


@dataclass(frozen=True, slots=True)
class Key:
    kid: str | None
    algorithms: frozenset[str]  # what this key may verify (by its type and `alg`)
    key: Any  # a `cryptography` public key


@dataclass(frozen=True, slots=True)
class KeySet:
    """Signature keys by `kid` (and those without one). Immutable."""

    keys: tuple[Key, ...] = ()
    by_kid: Mapping[str, tuple[Key, ...]] = field(default_factory=dict)

    def candidates(self, kid: str | None, alg: str) -> tuple[Key, ...] | None:
        """The keys that may verify a token with this header; None when `kid` is unknown."""
        if kid is not None:
            found = self.by_kid.get(kid)
            if found is None:
                return None
            return tuple(k for k in found if alg in k.algorithms)
        return tuple(k for k in self.keys if alg in k.algorithms)


def parse_jwks(text: str | bytes, origin: str = "jwks") -> KeySet:
    """A `KeySet` from a JWKS document. Keys of unknown or symmetric types, and keys not
    for signatures (`use` other than `sig`), are skipped; a document that is not a JWKS
    raises `JwksError`."""
    import jwt  # the `meshclient[jwt]` extra

    try:
        doc = json.loads(text)
    except ValueError as exc:
        raise JwksError(f"{origin}: not JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise JwksError(f"{origin}: not a JWKS (an object with a 'keys' list)")
    keys: list[Key] = []
    for i, item in enumerate(doc["keys"]):
        if not isinstance(item, dict):
            continue
        kty = item.get("kty")
        allowed = _KTY_ALGORITHMS.get(kty if isinstance(kty, str) else "")
        if allowed is None or item.get("use", "sig") != "sig":
            continue
        alg = item.get("alg")
        if isinstance(alg, str):
            allowed = allowed & {alg}
        try:
            jwk = jwt.PyJWK(item)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError, KeyError) as exc:
            logger.warning("%s: keys[%d] skipped: %s", origin, i, exc)
            continue
        kid = item.get("kid")
        keys.append(Key(kid if isinstance(kid, str) else None, allowed, jwk.key))
    by_kid: dict[str, tuple[Key, ...]] = {}
    for key in keys:
        if key.kid is not None:
            by_kid[key.kid] = (*by_kid.get(key.kid, ()), key)
    return KeySet(tuple(keys), by_kid)


@dataclass(frozen=True, slots=True)
class NeedKeys:
    """An action for the caller: block (bounded) until `cache` has fetched; `unknown_kid`:
    a token named a key it does not hold (a rate-limited refresh)."""

    cache: JwksCache
    unknown_kid: bool

    def run(self) -> None:
        if self.unknown_kid:
            self.cache.refresh_for_unknown_kid()
        else:
            self.cache.wait_for_keys()


class JwksCache:
    """The keys at `uri`, fetched and kept by their cache headers. Thread-safe."""

    def __init__(self, uri: str, *, timeout_s: float = 5.0, default_ttl_s: float = 600.0,
                 clock: Clock = CLOCK) -> None:
        self.uri = uri
        self.timeout_s = timeout_s
        self.default_ttl_s = default_ttl_s
        self._clock = clock
        self._keys: KeySet | None = None
        self._etag: str | None = None
        self._expires_ns = 0
        self._refresh_ns = 0
        self._last_kid_fetch_ns: int | None = None
        self.fetches = 0  # answered fetches (200 or 304)
        self._init_sync()
        _fork.track(self)

    def _init_sync(self) -> None:
        self._lock = threading.Lock()
        self._done: threading.Event | None = None  # set when the fetch in flight ends

    def _after_fork_in_child(self) -> None:
        self._init_sync()  # the parent's fetch thread does not exist here
        self._refresh_ns = 0

    def _resume_after_fork(self) -> None:
        pass  # fetched again on first use

    def keys(self) -> KeySet | None:
        """The keys held (stale ones included); starts a background refresh when they are
        due, and the first fetch when there are none (None until it ends)."""
        if self._clock.now_ns() >= self._refresh_ns:
            self._start()
        return self._keys

    def wait_for_keys(self, timeout_s: float | None = None) -> KeySet | None:
        """Block (at most the fetch timeout) for a first fetch when there are no keys."""
        if self._keys is None:
            self._wait(self._start(), timeout_s)
        return self._keys

    def refresh_for_unknown_kid(self, timeout_s: float | None = None) -> KeySet | None:
        """Fetch again for a token whose `kid` is unknown, unless one such fetch happened in
        the last `UNKNOWN_KID_INTERVAL_S`; wait for it (bounded). Returns the keys.

        A fetch already in flight began before this token was seen, and may have read the
        document before the key was published: it is waited for, then one more fetch is
        made (so a rotation racing a background refresh is still seen at once)."""
        now = self._clock.now_ns()
        with self._lock:
            last = self._last_kid_fetch_ns
            limited = last is not None and now - last < UNKNOWN_KID_INTERVAL_S * 1e9
            if not limited:
                self._last_kid_fetch_ns = now
            joined = self._done  # a fetch in flight, started before this token
            done = joined if limited else self._start_locked(force=True)
        self._wait(done, timeout_s)
        if joined is not None and not limited:
            self._wait(self._start_forced(), timeout_s)
        return self._keys

    def _start_forced(self) -> threading.Event | None:
        with self._lock:
            return self._start_locked(force=True)

    def _wait(self, done: threading.Event | None, timeout_s: float | None) -> None:
        if done is not None:
            done.wait(self.timeout_s + 1.0 if timeout_s is None else timeout_s)

    def _start(self) -> threading.Event | None:
        with self._lock:
            return self._start_locked(force=False)

    def _start_locked(self, force: bool) -> threading.Event | None:
        if self._done is not None:
            return self._done  # one fetch at a time
        if not force and self._clock.now_ns() < self._refresh_ns:
            return None
        done = self._done = threading.Event()
        threading.Thread(target=self._fetch, args=(done,), name="meshclient-jwks",
                         daemon=True).start()
        return done

    def _fetch(self, done: threading.Event) -> None:
        try:
            self._fetch_once()
        except Exception as exc:  # stale-on-error: keep what we have
            logger.warning("jwks %s: %s; keeping the keys held", self.uri, exc)
            self._refresh_ns = self._clock.now_ns() + int(ERROR_RETRY_S * 1e9)
        finally:
            with self._lock:
                self._done = None
            done.set()

    def _fetch_once(self) -> None:
        headers = {"accept": "application/json"}
        if self._etag and self._keys is not None:
            headers["if-none-match"] = self._etag
        with httpx.Client(timeout=self.timeout_s, trust_env=False) as client, \
                client.stream("GET", self.uri, headers=headers) as response:
            if response.status_code not in (200, 304):
                raise JwksError(f"answered {response.status_code}")
            body = b""
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise JwksError(f"larger than {MAX_JWKS_BYTES} bytes")
        answer = {k.lower(): v for k, v in response.headers.items()}
        if response.status_code == 200:
            keys = parse_jwks(body, self.uri)
            self._keys = keys
            self._etag = answer.get("etag")
        lifetime = ttl(answer, self.default_ttl_s, time.time())
        now = self._clock.now_ns()
        self._expires_ns = now + int(lifetime * 1e9)
        self._refresh_ns = now + int(lifetime * 0.8e9)
        self.fetches += 1

    def __repr__(self) -> str:
        held = len(self._keys.keys) if self._keys is not None else None
        return f"<JwksCache {self.uri} keys={held}>"


_caches: dict[tuple[str, float, float], JwksCache] = {}
_caches_lock = threading.Lock()


def shared_cache(uri: str, timeout_s: float, default_ttl_s: float) -> JwksCache:
    """The process's cache for `uri` (kept across policy versions, so a policy update does
    not refetch every issuer's keys)."""
    key = (uri, timeout_s, default_ttl_s)
    with _caches_lock:
        cache = _caches.get(key)
        if cache is None:
            if len(_caches) >= 256:  # bounded: drop the oldest
                _caches.pop(next(iter(_caches)))
            cache = _caches[key] = JwksCache(uri, timeout_s=timeout_s,
                                             default_ttl_s=default_ttl_s)
        return cache
