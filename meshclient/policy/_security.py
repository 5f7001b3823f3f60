"""Policy sections for security and enforcement: `tls`, `auth`, `limits` (per service and in
`defaults`) and the top-level `authorization` (this process's inbound rules).

Secrets never appear in a policy document: a policy names where a secret lives (an
environment variable or a file), so policies can be served by a control plane, cached on
disk and logged without leaking credentials.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from ._authz import AuthzPolicyEntry
from ._fields import HEADER_NAME, Model, host_error, setting
from ._limitkey import LimitKey, parse_limit_key

AUTHZ_ACTIONS = ("allow", "deny")
_SPIFFE = re.compile(r"^spiffe://[a-z0-9.\-_]+(/[A-Za-z0-9.\-_/*]*)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _url_host_errors(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        _ = parts.port  # raises ValueError on a bad port
    except ValueError as exc:
        return [f"is not a valid URL ({exc}): {url!r}"]
    if host.count(":") >= 2:  # an IPv6 literal, validated by urlsplit
        return []
    message = host_error(host)
    return [message] if message else []


def _secret_source(name: str, env: str | None, file: str | None) -> list[str]:
    if (env is None) == (file is None):
        return [f"{name}_env or {name}_file must be set, not both"]
    if env is not None and not _ENV_NAME.match(env):
        return [f"{name}_env must be an environment variable name: {env!r}"]
    return []


@dataclass(frozen=True, slots=True, kw_only=True)
class TlsPolicy(Model):
    """Mutual TLS to a service's endpoints (files as cert-manager or SPIRE write them).

    The files are re-read when they change (checked at most every `reload` when a new
    connection is opened); a bad file at reload keeps the previous material.
    """

    ca: str | None = setting(None, doc="PEM bundle of CAs that sign the servers' certificates "
                             "(unset: the system store).")
    cert: str | None = setting(None, doc="PEM client certificate chain presented to servers.")
    key: str | None = setting(None, doc="PEM private key of `cert`.")
    server_name: str | None = setting(None, doc="Name the server certificate must carry "
                                      "(unset: the logical service name).")
    spiffe_id: str | None = setting(None, doc="SPIFFE ID (`spiffe://trust-domain/path`) the "
                                    "server's one URI SAN must equal; replaces the host name "
                                    "check. `spiffe://trust-domain` accepts any ID in it.")
    reload: float = setting(1.0, doc="How often, at most, the files are checked for change.",
                            above=0, duration=True)

    def _check(self) -> list[str]:
        errors = []
        if (self.cert is None) != (self.key is None):
            errors.append(f"cert and key must be set together: cert={self.cert!r}, "
                          f"key={self.key!r}")
        if self.spiffe_id is not None and not _SPIFFE.match(self.spiffe_id):
            errors.append(f"spiffe_id must look like spiffe://trust-domain/path: "
                          f"{self.spiffe_id!r}")
        if self.spiffe_id is not None and self.server_name is not None:
            errors.append("spiffe_id and server_name must not both be set")
        if self.server_name is not None and (message := host_error(self.server_name)):
            errors.append(f"server_name {message}")
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class BearerPolicy(Model):
    """A static bearer token read from an environment variable or a file (re-read on change)."""

    token_env: str | None = setting(None, doc="Environment variable holding the token.")
    token_file: str | None = setting(None, doc="File holding the token (surrounding "
                                     "whitespace ignored).")

    def _check(self) -> list[str]:
        return _secret_source("token", self.token_env, self.token_file)


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuth2Policy(Model):
    """OAuth2 client credentials grant (RFC 6749 section 4.4)."""

    token_url: str = setting(doc="The authorization server's token endpoint (http(s)://…).")
    client_id: str = setting(doc="Client identifier.")
    client_secret_env: str | None = setting(None, doc="Environment variable holding the "
                                            "client secret.")
    client_secret_file: str | None = setting(None, doc="File holding the client secret.")
    scopes: tuple[str, ...] = setting((), doc="Scopes requested (space-joined in `scope`).")
    refresh_before: float = setting(30.0, doc="Refresh this long before the token expires.",
                                    lo=0, duration=True)
    timeout: float = setting(5.0, doc="Bound on one token request.", above=0, duration=True)

    def _check(self) -> list[str]:
        errors = _secret_source("client_secret", self.client_secret_env,
                                self.client_secret_file)
        if not self.token_url.startswith(("http://", "https://")):
            errors.append(f"token_url must be an http:// or https:// URL: {self.token_url!r}")
        else:
            errors += [f"token_url {m}" for m in _url_host_errors(self.token_url)]
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthPolicy(Model):
    """Credentials attached to requests for this service only (never to other hosts or to
    mirror copies). Exactly one of `bearer`, `oauth2`."""

    bearer: BearerPolicy | None = setting(None, doc="A static bearer token.")
    oauth2: OAuth2Policy | None = setting(None, doc="OAuth2 client credentials.")
    header: str = setting("authorization", doc="Header carrying the credential.")

    def _check(self) -> list[str]:
        errors = []
        if (self.bearer is None) == (self.oauth2 is None):
            errors.append("bearer or oauth2 must be set, not both")
        if not HEADER_NAME.fullmatch(self.header):
            errors.append(f"header is not a valid header name: {self.header!r}")
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsPolicy(Model):
    """Client-side limits: a token bucket, a bulkhead, adaptive throttling, shared quotas."""

    rate: float | None = setting(None, doc="Requests per second (token bucket refill); unset: "
                                 "no rate limit.", above=0, hi=1_000_000)
    burst: int | None = setting(None, doc="Bucket size (unset: `rate` rounded up, at least 1).",
                                lo=1, hi=1_000_000)
    max_concurrent: int | None = setting(None, doc="Requests in flight at once (bulkhead); "
                                         "unset: unbounded.", lo=1, hi=1_000_000)
    max_wait: float = setting(0.0, doc="How long a request over a limit waits before failing "
                              "with `RateLimited`.", lo=0, hi=600, duration=True)
    adaptive_k: float = setting(2.0, doc="Adaptive throttling multiplier K (Google SRE "
                                "'Handling Overload'); 0 disables it, else at least 1.", lo=0,
                                hi=100)
    adaptive_window: float = setting(120.0, doc="Window over which requests and accepts are "
                                     "counted.", lo=1, hi=3600, duration=True)
    redis: str | None = setting(None, doc="redis:// URL of a quota shared by every process "
                                "naming it (needs the `redis` package).")
    redis_key: str | None = setting(None, doc="Key of the shared quota (default "
                                    "`meshclient:quota:<service>`, for a route's limits "
                                    "`meshclient:quota:<service>:<route name or routes[i]>`).")
    key: str | None = setting(None, doc="One rate bucket per value of: `header:<name>`, "
                              "`claim:<name>`, `principal`, `route` or `address` "
                              "(docs/limits.md); a request without a value is not limited "
                              "by `rate`. Unset: one bucket.")
    max_keys: int = setting(10_000, doc="Most keyed buckets kept in memory (least recently "
                            "used dropped first).", lo=1, hi=10_000_000)

    @property
    def parsed_key(self) -> LimitKey | None:
        return None if self.key is None else parse_limit_key(self.key)

    def _check(self) -> list[str]:
        errors = []
        if self.key is not None:
            try:
                parse_limit_key(self.key)
            except ValueError as exc:
                errors.append(str(exc))
            if self.rate is None:
                errors.append(f"key needs rate to be set: {self.key!r}")
        if self.redis is not None and not self.redis.startswith(
                ("redis://", "rediss://", "unix://")):
            errors.append(f"redis must be a redis://, rediss:// or unix:// URL: {self.redis!r}")
        if 0 < self.adaptive_k < 1:
            errors.append(f"adaptive_k must be 0 (off) or at least 1: {self.adaptive_k!r}")
        if self.redis is not None and self.rate is None:
            errors.append(f"redis needs rate to be set: {self.redis!r}")
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthzRule(Model):
    """One rule: when caller, method and path all match, `action` decides. Empty lists match
    everything; patterns use `*` (any characters) and `?`."""

    action: str = setting(doc="allow or deny.", choices=AUTHZ_ACTIONS)
    callers: tuple[str, ...] = setting((), doc="Caller identities (SPIFFE ID, certificate "
                                       "subject CN, token name or header value); `*` is any "
                                       "identified caller, `anonymous` an unidentified one.")
    methods: tuple[str, ...] = setting((), doc="HTTP methods (upper case).")
    paths: tuple[str, ...] = setting((), doc="Path patterns, e.g. `/admin/*`.")
    name: str | None = setting(None, doc="Name used in logs and counts (default: its index).")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationPolicy(Model):
    """Who may call this process (inbound): Istio's policies (`policies`: CUSTOM, then
    DENY, then ALLOW; AUDIT only logs) and the shorthand (address lists, first-match
    `rules`, `default`). See docs/authorization.md for the order."""

    policies: tuple[AuthzPolicyEntry, ...] = setting((), doc="Istio-style policies "
                                                     "(docs/authorization.md).")
    default: str | None = setting(None, doc="Action when nothing else decides; unset: "
                                  "`deny` when `rules` are set or `policies` are not "
                                  "(the shorthand's default), else `allow` (Istio's: no "
                                  "ALLOW policy means allow).", choices=AUTHZ_ACTIONS)
    rules: tuple[AuthzRule, ...] = setting((), doc="Shorthand rules, first match wins.")
    allow_addresses: tuple[str, ...] = setting((), doc="Only these client addresses/CIDRs may "
                                               "call (empty: any).")
    deny_addresses: tuple[str, ...] = setting((), doc="Client addresses/CIDRs always denied.")
    tokens: tuple[str, ...] = setting((), doc="Verified bearer tokens: each `name=env:VAR` or "
                                      "`name=file:/path`; a request bearing that secret is "
                                      "caller `name`.")
    trust_caller_header: str | None = setting(None, doc="Header naming the caller, trusted "
                                              "only when set here (a trusted network).")

    @property
    def default_action(self) -> str:
        if self.default is not None:
            return self.default
        return "allow" if self.policies and not self.rules else "deny"

    def _check(self) -> list[str]:
        errors = []
        names = [p.name for p in self.policies if p.name]
        errors += [f"policies name appears twice: {n!r}" for n in sorted(set(names))
                   if names.count(n) > 1]
        for field_name in ("allow_addresses", "deny_addresses"):
            for i, item in enumerate(getattr(self, field_name)):
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    errors.append(f"{field_name}[{i}] must be an IP address or CIDR: {item!r}")
        for i, item in enumerate(self.tokens):
            name, _, source = item.partition("=")
            if not name or not source.startswith(("env:", "file:")):
                errors.append(f"tokens[{i}] must be name=env:VAR or name=file:/path: "
                              f"{item.split('=')[0] + '=…'!r}")
        if self.trust_caller_header is not None and not HEADER_NAME.fullmatch(
                self.trust_caller_header):
            errors.append("trust_caller_header is not a valid header name: "
                          f"{self.trust_caller_header!r}")
        return errors
