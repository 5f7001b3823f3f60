"""End-user JWT authentication (Istio's `RequestAuthentication`), with PyJWT for the JOSE
work (`pip install meshclient[jwt]`; imported only when a policy has an `authentication`
section).

`Authenticator.authenticate(headers, query)` is a generator: it yields `NeedKeys` when a
token names a `kid` the cache does not hold, or before the first fetch (the caller runs it,
blocking or in an executor, and resumes the generator) and returns `Verified`, `Invalid` (answer 401) or None
(no token: left to authorization). Checks, in order: the token's `alg` is one the issuer
accepts (never `none`; the HS family only with a configured secret, so a token signed with
an RSA public key as an HMAC secret is refused), its unverified `iss` names a configured
issuer, the signature, then `exp`/`nbf` (with the issuer's leeway), `iss` and `aud`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from .._clock import CLOCK
from ..errors import MeshError
from ..policy import HMAC_ALGORITHMS, AuthenticationPolicy, JwtRule
from .bearer import read_secret
from .jwks import JwksCache, JwksError, KeySet, NeedKeys, parse_jwks, shared_cache

_DEFAULT_HEADER = ("authorization", "Bearer ")
_FILE_CHECK_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Verified:
    """A verified token: `principal` is `iss/sub` (Istio's request principal)."""

    issuer: str
    subject: str
    claims: Mapping[str, Any]
    audiences: tuple[str, ...]
    rule: JwtRule
    location: tuple[str, str]  # ("header", name) or ("param", name)

    @property
    def principal(self) -> str:
        return f"{self.issuer}/{self.subject}"


@dataclass(frozen=True, slots=True)
class Invalid:
    """A token was presented and refused: answer 401 with `reason`."""

    reason: str


@dataclass(slots=True)
class _FileKeys:
    path: str
    keys: KeySet | None = None
    mtime: float | None = None
    checked_ns: int = field(default=-_FILE_CHECK_NS)

    def get(self) -> KeySet | None:
        now = CLOCK.now_ns()
        if now - self.checked_ns >= _FILE_CHECK_NS:
            self.checked_ns = now
            try:
                mtime = os.stat(self.path).st_mtime
                if mtime != self.mtime:
                    with open(self.path, "rb") as f:
                        self.keys = parse_jwks(f.read(1 << 20), self.path)
                    self.mtime = mtime
            except (OSError, JwksError):
                pass  # keep the keys held; the policy check already read the file once
        return self.keys


class _Issuer:
    __slots__ = ("algorithms", "cache", "file", "rule", "secret", "static")

    def __init__(self, rule: JwtRule, index: int, environ: Mapping[str, str] | None) -> None:
        self.rule = rule
        self.algorithms = frozenset(rule.algorithms) - {"none"}
        self.secret: bytes | None = None
        if rule.secret_env is not None or rule.secret_file is not None:
            self.secret = read_secret(rule.secret_env, rule.secret_file, environ,
                                      f"authentication.jwt[{index}]").encode()
        self.static = parse_jwks(rule.jwks, f"authentication.jwt[{index}].jwks") \
            if rule.jwks else None
        self.file = None
        if rule.jwks_file:
            self.file = _FileKeys(rule.jwks_file)
            if self.file.get() is None:
                raise JwksError(f"authentication.jwt[{index}].jwks_file: cannot read "
                                f"{rule.jwks_file!r}")
        self.cache: JwksCache | None = None
        if rule.jwks_uri:
            self.cache = shared_cache(rule.jwks_uri, rule.timeout, rule.cache_duration)
            self.cache.keys()  # start the first fetch now, not at the first request

    def keys(self) -> KeySet | None:
        if self.static is not None:
            return self.static
        if self.file is not None:
            return self.file.get()
        return self.cache.keys() if self.cache is not None else None


def _locations(rule: JwtRule) -> list[tuple[str, str, str]]:
    out = [("header", h.name.lower(), h.prefix) for h in rule.from_headers]
    out += [("param", p, "") for p in rule.from_params]
    if not out:
        out.append(("header", *_DEFAULT_HEADER))
    return out


class Authenticator:
    """A compiled `AuthenticationPolicy`. Immutable after construction (the key caches it
    holds refresh themselves)."""

    def __init__(self, policy: AuthenticationPolicy,
                 environ: Mapping[str, str] | None = None) -> None:
        try:
            import jwt  # lazy: only processes that verify end-user tokens need PyJWT
        except ImportError:
            raise MeshError("authentication.jwt needs PyJWT with cryptography "
                            "(pip install 'meshclient[jwt]')") from None
        self._jwt = jwt
        self.policy = policy
        self._issuers = {rule.issuer: _Issuer(rule, i, environ)
                         for i, rule in enumerate(policy.jwt)}
        where: dict[tuple[str, str, str], list[str]] = {}
        for rule in policy.jwt:
            for loc in _locations(rule):
                where.setdefault(loc, []).append(rule.issuer)
        self._where = tuple((loc, frozenset(issuers)) for loc, issuers in where.items())
        self.header_names = frozenset(loc[1] for loc, _ in self._where if loc[0] == "header")

    def tokens(self, headers: Mapping[str, str], query: str) -> list[tuple[tuple[str, str, str],
                                                                          frozenset[str], str]]:
        """The tokens the request carries: (location, issuers reading it, token)."""
        params: dict[str, str] | None = None
        found = []
        for loc, issuers in self._where:
            kind, name, prefix = loc
            if kind == "header":
                value = headers.get(name)
                if value is None:
                    continue
                if prefix:
                    if value[:len(prefix)].lower() != prefix.lower():
                        continue
                    value = value[len(prefix):]
            else:
                if params is None:
                    params = dict(parse_qsl(query, keep_blank_values=True))
                value = params.get(name)
                if value is None:
                    continue
            found.append((loc, issuers, value.strip()))
        return found

    def authenticate(self, headers: Mapping[str, str], query: str = "",
                     skip: frozenset[str] = frozenset()
                     ) -> Generator[NeedKeys, None, Verified | Invalid | None]:
        """Verify every token present; the first verified one wins, any refused one is
        `Invalid`. `skip`: header names already consumed by another credential."""
        verified: Verified | None = None
        for loc, issuers, token in self.tokens(headers, query):
            if loc[0] == "header" and loc[1] in skip:
                continue
            result = yield from self._verify(token, issuers, (loc[0], loc[1]))
            if isinstance(result, Invalid):
                return result
            verified = verified or result
        return verified

    def _verify(self, token: str, issuers: frozenset[str], location: tuple[str, str]
                ) -> Generator[NeedKeys, None, Verified | Invalid]:
        jwt = self._jwt
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except (jwt.PyJWTError, ValueError, TypeError):  # UnicodeError is a ValueError
            return Invalid("Jwt is not in the form of Header.Payload.Signature")
        alg = header.get("alg")
        iss = unverified.get("iss")
        issuer = self._issuers.get(iss) if isinstance(iss, str) and iss in issuers else None
        if issuer is None:
            return Invalid("Jwt issuer is not configured")
        if not isinstance(alg, str) or alg not in issuer.algorithms:
            return Invalid("Jwt algorithm is not accepted")
        kid = header.get("kid")
        kid = kid if isinstance(kid, str) else None
        if alg in HMAC_ALGORITHMS:
            keys: tuple[Any, ...] = (issuer.secret,) if issuer.secret else ()
        else:
            keys = yield from self._keys(issuer, kid, alg)
        if not keys:
            return Invalid("Jwks doesn't have key to match kid or alg from Jwt")
        rule = issuer.rule
        error = "Jwt verification fails"
        for key in keys:
            try:
                claims = jwt.decode(
                    token, key=key, algorithms=[alg], issuer=rule.issuer,
                    audience=list(rule.audiences) or None, leeway=rule.leeway,
                    options={"verify_aud": bool(rule.audiences)})
            except jwt.ExpiredSignatureError:
                return Invalid("Jwt is expired")
            except jwt.ImmatureSignatureError:
                return Invalid("Jwt not yet valid")
            except jwt.InvalidAudienceError:
                return Invalid("Audiences in Jwt are not allowed")
            except jwt.InvalidIssuerError:
                return Invalid("Jwt issuer is not configured")
            except (jwt.PyJWTError, ValueError, TypeError):
                continue  # another key with this kid may verify it
            return _verified(claims, rule, location)
        return Invalid(error)

    def _keys(self, issuer: _Issuer, kid: str | None, alg: str
              ) -> Generator[NeedKeys, None, tuple[Any, ...]]:
        keys = issuer.keys()
        if keys is None and issuer.cache is not None:
            yield NeedKeys(issuer.cache, unknown_kid=False)  # wait for the first fetch
            keys = issuer.cache.keys()
        found = keys.candidates(kid, alg) if keys is not None else None
        if found is None and issuer.cache is not None:
            yield NeedKeys(issuer.cache, unknown_kid=True)  # one (rate-limited) refresh
            keys = issuer.cache.keys()
            found = keys.candidates(kid, alg) if keys is not None else None
        return tuple(k.key for k in found or ())

    def __repr__(self) -> str:
        return f"<Authenticator issuers={sorted(self._issuers)}>"


def _verified(claims: dict[str, Any], rule: JwtRule, location: tuple[str, str]) -> Verified:
    aud = claims.get("aud")
    audiences = (aud,) if isinstance(aud, str) else tuple(a for a in aud or ()
                                                          if isinstance(a, str))
    sub = claims.get("sub")
    return Verified(rule.issuer, sub if isinstance(sub, str) else "", claims, audiences,
                    rule, location)


def claim_header_value(value: Any) -> str | None:
    """A claim as a header value (Envoy's `claim_to_headers`): strings as they are,
    numbers and booleans as JSON, lists comma-joined; objects are not copied."""
    if isinstance(value, str):
        return value
    try:
        if isinstance(value, (bool, int, float)):
            return json.dumps(value)
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            return ",".join(v if isinstance(v, str) else json.dumps(v) for v in value)
    except ValueError:  # an integer too long to write out
        return None
    return None
