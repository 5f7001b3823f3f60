"""Inbound caller identity and authorization: pure evaluation of an `AuthorizationPolicy`.

Identity, strongest source first:
1. the TLS client certificate, when the server exposes it (the ASGI TLS extension's
   `client_cert_chain`, or a WSGI server's `SSL_CLIENT_CERT`): its SPIFFE ID (the one URI
   SAN) or else its subject common name;
2. a bearer token equal (constant-time compare) to one of the policy's named `tokens`;
3. the `trust_caller_header`, only when the policy names one (a network you trust).
Otherwise the caller is anonymous.

Decision (`decide`, without the CUSTOM checks, which `security.gate` runs): a client address
in `deny_addresses` is denied; when `allow_addresses` is set, an address outside it is
denied; then Istio's policies (`security.rbac`): a matching DENY policy denies, a matching
ALLOW policy allows; then the first shorthand rule whose callers, methods and paths all
match decides; then, when ALLOW policies are in force, deny; else `default`.

`DenialLog` counts every denial and logs the first one per (caller, rule), so a noisy
caller cannot flood the log; each denial is also an `authz_denied` event.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import translate
from typing import Any

from .. import _events
from ..policy import AuthorizationPolicy, AuthzRule
from .checks import RequestView
from .credentials import read_secret
from .rbac import Evaluation, Policies

logger = logging.getLogger("meshclient.security")

ANONYMOUS = "anonymous"
MAX_TRACKED = 10_000


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: `identity` (None: anonymous), where it came from, the address."""

    identity: str | None
    source: str  # "tls", "token", "header" or "none"
    address: str | None = None

    @property
    def label(self) -> str:
        return self.identity if self.identity is not None else ANONYMOUS


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    rule: str  # rule name, "default", "deny_addresses" or "allow_addresses"


def identity_from_pem(pem: str) -> str | None:
    """SPIFFE ID (exactly one URI SAN) or subject CN of a PEM certificate. Needs the
    `cryptography` package; without it, None (use the server's subject name instead)."""
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID
    except ImportError:  # pragma: no cover - cryptography ships with most installs
        return None
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError:
        return None
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        uris = san.value.get_values_for_type(x509.UniformResourceIdentifier)
    except x509.ExtensionNotFound:
        uris = []
    if len(uris) == 1 and uris[0].startswith("spiffe://"):
        return str(uris[0])
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else None


def _cn_from_rfc4514(name: str | None) -> str | None:
    for part in (name or "").split(","):
        key, _, value = part.strip().partition("=")
        if key.upper() == "CN" and value:
            return value
    return None


def _pattern(glob: str) -> re.Pattern[str]:
    return re.compile(translate(glob))


def _caller_matcher(glob: str) -> Any:
    """`*`: any identified caller; `anonymous`: an unidentified one; else a glob."""
    if glob == "*":
        return lambda identity: identity is not None
    if glob == ANONYMOUS:
        return lambda identity: identity is None
    pattern = _pattern(glob)
    return lambda identity: identity is not None and pattern.fullmatch(identity) is not None


class _Rule:
    __slots__ = ("action", "callers", "methods", "name", "paths")

    def __init__(self, rule: AuthzRule, index: int) -> None:
        self.name = rule.name or f"rules[{index}]"
        self.action = rule.action
        self.callers = tuple(_caller_matcher(c) for c in rule.callers)
        self.methods = frozenset(m.upper() for m in rule.methods)
        self.paths = tuple(_pattern(p) for p in rule.paths)

    def matches(self, caller: Caller, method: str, path: str) -> bool:
        if self.methods and method.upper() not in self.methods:
            return False
        if self.paths and not any(p.fullmatch(path) for p in self.paths):
            return False
        return not self.callers or any(match(caller.identity) for match in self.callers)


class Authorizer:
    """A compiled `AuthorizationPolicy`. Immutable after construction; build a new one when
    the policy changes. Token secrets are read here (`CredentialsError` if missing).

    Usage:
    ```python
    authz = Authorizer(policy.authorization)
    caller = authz.identify(headers={"authorization": "Bearer …"}, address="10.0.0.7")
    if not authz.decide(caller, "GET", "/admin").allowed: ...
    ```
    """

    def __init__(self, policy: AuthorizationPolicy,
                 environ: Mapping[str, str] | None = None) -> None:
        self.policy = policy
        self._deny = tuple(ipaddress.ip_network(a, strict=False) for a in policy.deny_addresses)
        self._allow = tuple(ipaddress.ip_network(a, strict=False)
                            for a in policy.allow_addresses)
        self._rules = tuple(_Rule(r, i) for i, r in enumerate(policy.rules))
        self.policies = Policies(policy.policies)
        self._default = policy.default_action == "allow"
        tokens = []
        for i, item in enumerate(policy.tokens):
            name, _, source = item.partition("=")
            kind, _, where = source.partition(":")
            secret = read_secret(where if kind == "env" else None,
                                 where if kind == "file" else None, environ,
                                 f"authorization.tokens[{i}]")
            tokens.append((name, secret.encode()))
        self._tokens = tuple(tokens)
        self._header = (policy.trust_caller_header.lower()
                        if policy.trust_caller_header else None)

    def identify(self, *, headers: Mapping[str, str], address: str | None = None,
                 tls: Mapping[str, Any] | None = None) -> Caller:
        """`headers` with lower-case names; `tls` is the ASGI TLS extension dict (or the
        same keys from a WSGI environ)."""
        if tls and not tls.get("client_cert_error"):
            chain = tls.get("client_cert_chain") or ()
            identity = identity_from_pem(chain[0]) if chain else None
            identity = identity or _cn_from_rfc4514(tls.get("client_cert_name"))
            if identity:
                return Caller(identity, "tls", address)
        if self._tokens:
            auth = headers.get("authorization", "")
            scheme, _, presented = auth.partition(" ")
            if scheme.lower() == "bearer" and presented:
                given = presented.strip().encode()
                for name, secret in self._tokens:
                    if hmac.compare_digest(given, secret):
                        return Caller(name, "token", address)
        if self._header is not None:
            value = headers.get(self._header)
            if value:
                return Caller(value, "header", address)
        return Caller(None, "none", address)

    def addresses(self, caller: Caller) -> Decision | None:
        """The address lists' denial, or None."""
        if self._deny or self._allow:
            ip = _ip(caller.address)
            if ip is not None and any(ip in net for net in self._deny):
                return Decision(False, "deny_addresses")
            if self._allow and (ip is None or not any(ip in net for net in self._allow)):
                return Decision(False, "allow_addresses")
        return None

    def rules(self, caller: Caller, method: str, path: str,
              evaluation: Evaluation | None = None) -> Decision:
        """DENY policies, ALLOW policies, shorthand rules, default (after the addresses
        and the CUSTOM checks)."""
        if evaluation is not None:
            if evaluation.denied_by is not None:
                return Decision(False, evaluation.denied_by)
            if evaluation.allowed_by is not None:
                return Decision(True, evaluation.allowed_by)
        for rule in self._rules:
            if rule.matches(caller, method, path):
                return Decision(rule.action == "allow", rule.name)
        if self.policies.has_allow:
            return Decision(False, "no ALLOW policy matched")
        return Decision(self._default, "default")

    def decide(self, caller: Caller, method: str, path: str,
               view: RequestView | None = None) -> Decision:
        """The whole decision but the CUSTOM checks."""
        denied = self.addresses(caller)
        if denied is not None:
            return denied
        evaluation = None
        if self.policies:
            view = view or RequestView(method=method, path=path, source_ip=caller.address,
                                       source_principal=caller.identity)
            evaluation = self.policies.evaluate(view)
        return self.rules(caller, method, path, evaluation)

    def __repr__(self) -> str:
        return (f"<Authorizer default={self.policy.default_action} rules={len(self._rules)} "
                f"tokens={len(self._tokens)}>")


def _ip(address: str | None) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if not address:
        return None
    try:
        return ipaddress.ip_address(address)
    except ValueError:
        return None


class DenialLog:
    """Counts denials per (caller, rule); logs and flags the first of each. Thread-safe."""

    def __init__(self, service: str = "inbound") -> None:
        self.service = service
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()
        self.total = 0

    def __repr__(self) -> str:
        with self._lock:
            pairs = len(self._counts)
        return f"<DenialLog {self.service} total={self.total} pairs={pairs}>"

    def record(self, caller: Caller, decision: Decision, method: str, path: str) -> None:
        key = (caller.label, decision.rule)
        with self._lock:
            self.total += 1
            count = self._counts.get(key, 0) + 1
            if count == 1 and len(self._counts) >= MAX_TRACKED:
                count = 2  # table full: count in `total`, never log without bound
            else:
                self._counts[key] = count
        if count == 1:
            logger.warning("authorization: denied %s (%s, from %s) by %s: %s %s",
                           caller.label, caller.source, caller.address or "?", decision.rule,
                           method, path)
        _events.emit(_events.AUTHZ_DENIED, self.service, caller=caller.label,
                     rule=decision.rule, first=count == 1)

    def counts(self) -> dict[tuple[str, str], int]:
        with self._lock:
            return dict(self._counts)

