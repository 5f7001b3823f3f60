"""The `authentication` section: end-user JWTs, as Istio's `RequestAuthentication`.

Each entry of `authentication.jwt` names an issuer and where its keys come from (a JWKS
URL, a JWKS file or an inline JWKS; or a shared secret for the HS family). A request
carrying a token that no entry accepts is answered 401; a request with no token passes
authentication and is left to the `authorization` rules (Istio's semantics).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from ._fields import HEADER_NAME, Model, setting, show

#: Asymmetric algorithms accepted by default (Istio/Envoy's list, less the HS family).
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                         "ES256", "ES384", "ES512", "EdDSA")
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ALGORITHMS = ASYMMETRIC_ALGORITHMS + HMAC_ALGORITHMS


def _secret_errors(env: str | None, file: str | None) -> list[str]:
    if env is not None and file is not None:
        return ["secret_env and secret_file must not both be set"]
    return []


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtHeader(Model):
    """A header a token is read from, and the prefix before the token in it."""

    name: str = setting(doc="Header name.")
    prefix: str = setting("", doc="Text before the token (e.g. `Bearer `), removed.")

    def _check(self) -> list[str]:
        if not HEADER_NAME.fullmatch(self.name):
            return [f"name is not a valid header name: {show(self.name)}"]
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimToHeader(Model):
    """Copy a verified claim into a request header for the handler (Istio's
    `outputClaimToHeaders`)."""

    header: str = setting(doc="Header to set.")
    claim: str = setting(doc="Claim name; nested claims joined with `.` (`realm.role`).")

    def _check(self) -> list[str]:
        if not HEADER_NAME.fullmatch(self.header):
            return [f"header is not a valid header name: {show(self.header)}"]
        return [] if self.claim else ["claim must not be empty"]


@dataclass(frozen=True, slots=True, kw_only=True)
class JwtRule(Model):
    """One accepted token issuer (Istio's `JWTRule`)."""

    issuer: str = setting(doc="The `iss` a token must carry.")
    audiences: tuple[str, ...] = setting((), doc="Accepted `aud` values (any one); empty: "
                                         "the audience is not checked.")
    jwks_uri: str | None = setting(None, doc="URL of the issuer's JWKS (http(s)://…), "
                                   "cached by its HTTP cache headers.")
    jwks_file: str | None = setting(None, doc="File holding a JWKS (re-read on change).")
    jwks: str | None = setting(None, doc="The JWKS itself, as JSON text.")
    secret_env: str | None = setting(None, doc="Environment variable holding a shared "
                                     "secret: the HS family is accepted only with it.")
    secret_file: str | None = setting(None, doc="File holding the shared secret.")
    algorithms: tuple[str, ...] = setting(ASYMMETRIC_ALGORITHMS, doc="Accepted `alg` "
                                          "values (`none` never is).", choices=ALGORITHMS)
    from_headers: tuple[JwtHeader, ...] = setting((), doc="Headers a token is read from "
                                                  "(empty: `Authorization: Bearer …`).")
    from_params: tuple[str, ...] = setting((), doc="Query parameters a token is read from.")
    forward_original_token: bool = setting(False, doc="Pass the token's header on to the "
                                           "handler (default: removed once verified).")
    output_claim_to_headers: tuple[ClaimToHeader, ...] = setting(
        (), doc="Claims copied into request headers for the handler.")
    leeway: float = setting(60.0, doc="Clock skew allowed on `exp`/`nbf` (Envoy's "
                            "`clock_skew_seconds`).", lo=0, hi=3600, duration=True)
    cache_duration: float = setting(600.0, doc="How long fetched keys are kept when the "
                                    "JWKS answer has no cache headers (Envoy's default).",
                                    lo=1, hi=86400, duration=True)
    timeout: float = setting(5.0, doc="Bound on one JWKS fetch.", above=0, hi=60,
                             duration=True)

    def _check(self) -> list[str]:
        errors = []
        if not self.issuer:
            errors.append("issuer must not be empty")
        sources = [n for n in ("jwks_uri", "jwks_file", "jwks") if getattr(self, n)]
        has_secret = self.secret_env is not None or self.secret_file is not None
        if len(sources) > 1:
            errors.append(f"only one of jwks_uri, jwks_file, jwks may be set: {sources}")
        if not sources and not has_secret:
            errors.append("one of jwks_uri, jwks_file, jwks, secret_env, secret_file must "
                          "be set")
        errors += _secret_errors(self.secret_env, self.secret_file)
        hmac = [a for a in self.algorithms if a in HMAC_ALGORITHMS]
        if hmac and not has_secret:
            errors.append(f"algorithms {hmac} need secret_env or secret_file")
        if has_secret and not hmac:
            errors.append("secret_env/secret_file need an HS algorithm in algorithms")
        if self.jwks_uri is not None and not self.jwks_uri.startswith(("http://",
                                                                         "https://")):
            errors.append(f"jwks_uri must be an http:// or https:// URL: {show(self.jwks_uri)}")
        if self.jwks is not None:
            try:
                doc = json.loads(self.jwks)
                if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
                    raise ValueError("no 'keys' list")
            except ValueError as exc:
                errors.append(f"jwks must be a JWKS document ({exc}): {show(self.jwks)}")
        for i, name in enumerate(self.from_params):
            if not name:
                errors.append(f"from_params[{i}] must not be empty")
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthenticationPolicy(Model):
    """End-user authentication of this process's inbound requests."""

    jwt: tuple[JwtRule, ...] = setting((), doc="Accepted token issuers.")

    def _check(self) -> list[str]:
        seen: set[str] = set()
        errors = []
        for i, rule in enumerate(self.jwt):
            if rule.issuer in seen:
                errors.append(f"jwt[{i}].issuer appears twice: {show(rule.issuer)}")
            seen.add(rule.issuer)
        return errors
