"""Istio's `AuthorizationPolicy` model: policies with an action and rules of `from`, `to`
and `when`.

A rule matches when all of its `from`, `to` and `when` match; a list of sources or of
operations matches when any item does; inside one item every field set must match, a field
matching when any of its values does (`not_*`: when none does). String values match
exactly, by prefix (`abc*`), by suffix (`*abc`) or as presence (`*`), as in Istio.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from ._fields import Model, setting, show

ACTIONS = ("ALLOW", "DENY", "AUDIT", "CUSTOM")

#: Condition keys (Istio's `when` keys this process can see).
_KEY = re.compile(r"^(request\.headers\[[A-Za-z0-9!#$%&'*+\-.^_`|~]+\]"
                  r"|request\.auth\.claims(\[[^\[\]]+\])+"
                  r"|request\.auth\.(principal|audiences|presenter)"
                  r"|source\.(ip|principal|namespace)|remote\.ip"
                  r"|destination\.(ip|port)|request\.(method|path|host))$")
_IP_KEYS = ("source.ip", "remote.ip", "destination.ip")


def _cidr_errors(field: str, values: tuple[str, ...]) -> list[str]:
    errors = []
    for i, item in enumerate(values):
        try:
            ipaddress.ip_network(item, strict=False)
        except ValueError:
            errors.append(f"{field}[{i}] must be an IP address or CIDR: {show(item)}")
    return errors


def _pattern_errors(field: str, values: tuple[str, ...]) -> list[str]:
    errors = []
    for i, item in enumerate(values):
        if item == "":
            errors.append(f"{field}[{i}] must not be empty")
        elif "*" in item[1:-1] or item == "**":
            errors.append(f"{field}[{i}] may hold `*` only at its start or end: {show(item)}")
    return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class Source(Model):
    """Who is calling (Istio's `Source`)."""

    principals: tuple[str, ...] = setting((), doc="Peer identities from mTLS: SPIFFE IDs "
                                          "with or without `spiffe://`.")
    not_principals: tuple[str, ...] = setting((), doc="Negative match of `principals`.")
    request_principals: tuple[str, ...] = setting((), doc="End-user `iss/sub` from a "
                                                  "verified JWT.")
    not_request_principals: tuple[str, ...] = setting((), doc="Negative match.")
    namespaces: tuple[str, ...] = setting((), doc="Namespace of the peer's SPIFFE ID "
                                          "(`…/ns/<namespace>/…`).")
    not_namespaces: tuple[str, ...] = setting((), doc="Negative match.")
    callers: tuple[str, ...] = setting((), doc="Caller names as `authorization.tokens` and "
                                       "`trust_caller_header` give them (meshclient).")
    not_callers: tuple[str, ...] = setting((), doc="Negative match.")
    ip_blocks: tuple[str, ...] = setting((), doc="Client addresses or CIDRs.")
    not_ip_blocks: tuple[str, ...] = setting((), doc="Negative match.")
    remote_ip_blocks: tuple[str, ...] = setting((), doc="Same as `ip_blocks` in-process "
                                                "(no proxy between caller and process).")
    not_remote_ip_blocks: tuple[str, ...] = setting((), doc="Negative match.")

    def _check(self) -> list[str]:
        errors = []
        for name in ("ip_blocks", "not_ip_blocks", "remote_ip_blocks", "not_remote_ip_blocks"):
            errors += _cidr_errors(name, getattr(self, name))
        for name in ("principals", "not_principals", "request_principals",
                     "not_request_principals", "namespaces", "not_namespaces", "callers",
                     "not_callers"):
            errors += _pattern_errors(name, getattr(self, name))
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation(Model):
    """What is asked for (Istio's `Operation`)."""

    methods: tuple[str, ...] = setting((), doc="HTTP methods.")
    not_methods: tuple[str, ...] = setting((), doc="Negative match.")
    paths: tuple[str, ...] = setting((), doc="Paths (exact, `prefix*`, `*suffix`, `*`).")
    not_paths: tuple[str, ...] = setting((), doc="Negative match.")
    hosts: tuple[str, ...] = setting((), doc="Host header values (case-insensitive).")
    not_hosts: tuple[str, ...] = setting((), doc="Negative match.")
    ports: tuple[str, ...] = setting((), doc="Ports this process was reached on.")
    not_ports: tuple[str, ...] = setting((), doc="Negative match.")

    def _check(self) -> list[str]:
        errors = []
        for name in ("methods", "not_methods", "paths", "not_paths", "hosts", "not_hosts"):
            errors += _pattern_errors(name, getattr(self, name))
        for name in ("ports", "not_ports"):
            for i, port in enumerate(getattr(self, name)):
                if not (port.isdigit() and 0 < int(port) < 65536):
                    errors.append(f"{name}[{i}] must be a port number: {show(port)}")
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class FromItem(Model):
    source: Source = setting(doc="The source to match.")


@dataclass(frozen=True, slots=True, kw_only=True)
class ToItem(Model):
    operation: Operation = setting(doc="The operation to match.")


@dataclass(frozen=True, slots=True, kw_only=True)
class Condition(Model):
    """`key` (e.g. `request.auth.claims[groups]`) matches any of `values` and none of
    `not_values` (Istio's `Condition`)."""

    key: str = setting(doc="What to look at: `request.headers[name]`, "
                       "`request.auth.claims[name][nested]`, `request.auth.principal`, "
                       "`request.auth.audiences`, `request.auth.presenter`, `source.ip`, "
                       "`remote.ip`, `source.principal`, `source.namespace`, "
                       "`destination.port`.")
    values: tuple[str, ...] = setting((), doc="Accepted values (any one).")
    not_values: tuple[str, ...] = setting((), doc="Refused values (none may match).")

    def _check(self) -> list[str]:
        errors = []
        if not _KEY.match(self.key):
            errors.append(f"key is not a known condition key: {show(self.key)}")
        if not self.values and not self.not_values:
            errors.append("values or not_values must be set")
        if self.key in _IP_KEYS:
            errors += _cidr_errors("values", self.values)
            errors += _cidr_errors("not_values", self.not_values)
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule(Model):
    """All of `from`, `to` and `when` must match; an empty one matches everything."""

    from_: tuple[FromItem, ...] = setting((), doc="Sources (any one matches).")
    to: tuple[ToItem, ...] = setting((), doc="Operations (any one matches).")
    when: tuple[Condition, ...] = setting((), doc="Conditions (all must match).")


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthzPolicyEntry(Model):
    """One Istio-style authorization policy."""

    name: str | None = setting(None, doc="Name in logs and counts (default: "
                               "`policies[i]`).")
    action: str = setting("ALLOW", doc="ALLOW, DENY, AUDIT or CUSTOM.", choices=ACTIONS)
    provider: str | None = setting(None, doc="CUSTOM: the registered check to consult "
                                   "(`meshclient.security.checks.register_check`).")
    rules: tuple[Rule, ...] = setting((), doc="Rules (any one matches); empty: the policy "
                                      "matches nothing, `[{}]` matches every request.")
    dry_run: bool = setting(False, doc="Evaluate and log the decision, do not enforce "
                            "(Istio's `istio.io/dry-run`).")
    timeout: float = setting(0.2, doc="CUSTOM: bound on the check (Envoy ext_authz's "
                             "default).", above=0, hi=60, duration=True)
    fail_open: bool = setting(False, doc="CUSTOM: allow when the check fails or times out "
                              "(Envoy's `failure_mode_allow`).")

    def _check(self) -> list[str]:
        if self.action == "CUSTOM" and not self.provider:
            return ["provider must be set for a CUSTOM action"]
        if self.action != "CUSTOM" and self.provider is not None:
            return [f"provider is only for CUSTOM actions: {show(self.provider)}"]
        return []
