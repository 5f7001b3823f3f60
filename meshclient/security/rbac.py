"""Istio's `AuthorizationPolicy` matching, pure: compiled policies evaluated against a
`RequestView`.

`Policies.evaluate(view)` answers which CUSTOM policies apply (their checks are run by the
caller, `security.gate`), whether a DENY policy matched, whether an ALLOW policy matched and
whether any ALLOW policy is in force, and which AUDIT and dry-run policies matched (logged,
never enforced). Istio's string matching: exact, `prefix*`, `*suffix`, `*` (present).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..policy import AuthzPolicyEntry, Condition, Operation, Rule, Source
from .checks import RequestView

Pred = Callable[[RequestView], bool]
_NS = re.compile(r"/ns/([^/]+)/")
_CLAIM_PART = re.compile(r"\[([^\[\]]+)\]")


def string_matcher(pattern: str) -> Callable[[str], bool]:
    """Istio's string match: `*` any non-empty value, `abc*` prefix, `*abc` suffix, else
    exact."""
    if pattern == "*":
        return lambda value: bool(value)
    if pattern.endswith("*"):
        prefix = pattern[:-1]
        return lambda value: value.startswith(prefix)
    if pattern.startswith("*"):
        suffix = pattern[1:]
        return lambda value: value.endswith(suffix)
    return lambda value: value == pattern


def _any_of(patterns: tuple[str, ...], fold: bool = False) -> Callable[[str | None], bool]:
    matchers = tuple(string_matcher(p.lower() if fold else p) for p in patterns)

    def match(value: str | None) -> bool:
        if value is None:
            return False
        value = value.lower() if fold else value
        return any(m(value) for m in matchers)
    return match


def _ips(blocks: tuple[str, ...]) -> Callable[[str | None], bool]:
    nets = tuple(ipaddress.ip_network(b, strict=False) for b in blocks)

    def match(address: str | None) -> bool:
        try:
            ip = ipaddress.ip_address(address or "")
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in nets)
    return match


def _strip_spiffe(principal: str | None) -> str | None:
    if principal is not None and principal.startswith("spiffe://"):
        return principal[len("spiffe://"):]
    return principal


def _principal(view: RequestView) -> str | None:
    return _strip_spiffe(view.source_principal)


def _namespace(view: RequestView) -> str | None:
    found = _NS.search(view.source_principal or "")
    return found.group(1) if found else None


def _field(preds: list[Pred], values: tuple[str, ...], negated: tuple[str, ...],
           get: Callable[[RequestView], str | None],
           make: Callable[[tuple[str, ...]], Callable[[str | None], bool]]) -> None:
    if values:
        match = make(values)
        preds.append(lambda view: match(get(view)))
    if negated:
        refuse = make(negated)
        preds.append(lambda view: not refuse(get(view)))


def _all(preds: list[Pred]) -> Pred:
    items = tuple(preds)
    return lambda view: all(p(view) for p in items)


def source_pred(src: Source) -> Pred:
    preds: list[Pred] = []
    principals = tuple(_strip_spiffe(p) or p for p in src.principals)
    not_principals = tuple(_strip_spiffe(p) or p for p in src.not_principals)
    _field(preds, principals, not_principals, _principal, _any_of)
    _field(preds, src.request_principals, src.not_request_principals,
           lambda v: v.request_principal, _any_of)
    _field(preds, src.namespaces, src.not_namespaces, _namespace, _any_of)
    _field(preds, src.callers, src.not_callers, lambda v: v.source_principal, _any_of)
    ip_blocks = src.ip_blocks + src.remote_ip_blocks
    not_ip_blocks = src.not_ip_blocks + src.not_remote_ip_blocks
    _field(preds, ip_blocks, not_ip_blocks, lambda v: v.source_ip, _ips)
    return _all(preds)


def _host(view: RequestView) -> str | None:
    host = view.host
    return host.rsplit(":", 1)[0] if host and host.count(":") == 1 else host


def operation_pred(op: Operation) -> Pred:
    preds: list[Pred] = []
    _field(preds, op.methods, op.not_methods, lambda v: v.method.upper(), _any_of)
    _field(preds, op.paths, op.not_paths, lambda v: v.path, _any_of)
    _field(preds, op.hosts, op.not_hosts, _host, lambda p: _any_of(p, fold=True))
    _field(preds, op.ports, op.not_ports,
           lambda v: str(v.port) if v.port is not None else None, _any_of)
    return _all(preds)


def claim(claims: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    """The claim at `path` (nested objects), or None."""
    value: Any = claims
    for part in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def _strings(value: Any) -> tuple[str, ...]:
    """A claim or attribute as the strings Istio compares: a list's items, a space-
    separated `scope` string is one value (Istio does not split it)."""
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(_scalar(v) for v in value if v is not None)
    return (_scalar(value),)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def condition_values(key: str) -> Callable[[RequestView], tuple[str, ...]]:
    """How to read `key` from a request, as strings (several for a list claim)."""
    if key.startswith("request.headers["):
        name = key[len("request.headers["):-1].lower()
        return lambda v: _strings(v.headers.get(name))
    if key.startswith("request.auth.claims["):
        path = tuple(_CLAIM_PART.findall(key[len("request.auth.claims"):]))
        return lambda v: _strings(claim(v.claims, path))
    simple: dict[str, Callable[[RequestView], Any]] = {
        "request.auth.principal": lambda v: v.request_principal,
        "request.auth.audiences": lambda v: v.audiences,
        "request.auth.presenter": lambda v: v.claims.get("azp"),
        "source.ip": lambda v: v.source_ip, "remote.ip": lambda v: v.source_ip,
        "source.principal": _principal, "source.namespace": _namespace,
        "destination.port": lambda v: v.port, "destination.ip": lambda v: v.destination_ip,
        "request.method": lambda v: v.method, "request.path": lambda v: v.path,
        "request.host": _host,
    }
    get = simple[key]
    return lambda v: _strings(get(v))


def condition_pred(cond: Condition) -> Pred:
    read = condition_values(cond.key)
    if cond.key in ("source.ip", "remote.ip", "destination.ip"):
        make: Callable[[tuple[str, ...]], Callable[[str | None], bool]] = _ips
    else:
        make = _any_of
    accept = make(cond.values) if cond.values else None
    refuse = make(cond.not_values) if cond.not_values else None
    if cond.key == "source.principal":
        accept = _any_of(tuple(_strip_spiffe(p) or p for p in cond.values)) if accept else None
        refuse = (_any_of(tuple(_strip_spiffe(p) or p for p in cond.not_values))
                  if refuse else None)

    def match(view: RequestView) -> bool:
        values = read(view)
        if accept is not None and not any(accept(x) for x in values):
            return False
        return refuse is None or not any(refuse(x) for x in values)
    return match


def rule_pred(rule: Rule) -> Pred:
    preds: list[Pred] = []
    if rule.from_:
        sources = tuple(source_pred(item.source) for item in rule.from_)
        preds.append(lambda v: any(s(v) for s in sources))
    if rule.to:
        ops = tuple(operation_pred(item.operation) for item in rule.to)
        preds.append(lambda v: any(o(v) for o in ops))
    preds += [condition_pred(c) for c in rule.when]
    return _all(preds)


@dataclass(frozen=True, slots=True)
class Compiled:
    """One policy, compiled: `matches(view)` is true when any of its rules matches."""

    name: str
    action: str
    dry_run: bool
    entry: AuthzPolicyEntry
    rules: tuple[Pred, ...]

    def matches(self, view: RequestView) -> bool:
        return any(rule(view) for rule in self.rules)


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What the non-CUSTOM policies say about one request."""

    denied_by: str | None  # the enforced DENY policy that matched
    allowed_by: str | None  # the enforced ALLOW policy that matched
    audited_by: tuple[str, ...]  # AUDIT policies that matched
    dry_run: tuple[tuple[str, str], ...]  # (policy, "would deny" | "would allow" | …)


class Policies:
    """The `policies` of an `authorization` section, compiled once per policy version."""

    def __init__(self, entries: tuple[AuthzPolicyEntry, ...]) -> None:
        compiled = [Compiled(e.name or f"policies[{i}]", e.action, e.dry_run, e,
                             tuple(rule_pred(r) for r in e.rules))
                    for i, e in enumerate(entries)]
        self.custom = tuple(c for c in compiled if c.action == "CUSTOM")
        self._deny = tuple(c for c in compiled if c.action == "DENY")
        self._allow = tuple(c for c in compiled if c.action == "ALLOW")
        self._audit = tuple(c for c in compiled if c.action == "AUDIT")
        self.has_allow = any(not c.dry_run for c in self._allow)

    def __bool__(self) -> bool:
        return bool(self.custom or self._deny or self._allow or self._audit)

    def evaluate(self, view: RequestView) -> Evaluation:
        denied = allowed = None
        dry: list[tuple[str, str]] = []
        for c in self._deny:
            if c.matches(view):
                if c.dry_run:
                    dry.append((c.name, "would deny"))
                elif denied is None:
                    denied = c.name
        for c in self._allow:
            if c.dry_run:
                dry.append((c.name, "would allow" if c.matches(view) else "would not allow"))
            elif allowed is None and c.matches(view):
                allowed = c.name
        audited = tuple(c.name for c in self._audit if c.matches(view))
        return Evaluation(denied, allowed, audited, tuple(dry))
