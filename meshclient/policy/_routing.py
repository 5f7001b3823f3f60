"""Policy sections for routing: routes, weighted destinations, fault injection, mirroring.

The shapes follow Istio's VirtualService (`match`, weighted `route`, `fault.delay` /
`fault.abort` with a percentage, `mirror` with `mirrorPercentage`) and Envoy's route match
(path exact / prefix / regex, where a regex must match the whole path without the query
string; header matchers with exact, regex or present). Regular expressions are compiled
once, at construction, and kept on the frozen object: with RE2 when it is installed, as
Envoy does, else with `re` after refusing the shapes that backtrack catastrophically
(`_regex.py`).

Cross-service rules (a destination or mirror target names a service of the policy) are
checked by `check_routes()`, which `Policy` calls: a route alone cannot see the others.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ._fields import HEADER_NAME, Model, setting
from ._regex import Matcher, compile_regex
from ._security import LimitsPolicy  # per-route limits

ABORT_ERRORS = ("connect", "reset")
_VALUE_KINDS = ("exact", "prefix", "suffix", "regex", "present")


def _compile(name: str, pattern: str | None) -> tuple[Matcher | None, list[str]]:
    if pattern is None:
        return None, []
    return compile_regex(name, pattern)


@dataclass(frozen=True, slots=True, kw_only=True)
class PathMatch(Model):
    """Exactly one of `exact`, `prefix`, `regex` (the regex must match the whole path,
    query string excluded, as Envoy's does)."""

    exact: str | None = setting(None, doc="The path equals this.")
    prefix: str | None = setting(None, doc="The path starts with this.")
    regex: str | None = setting(None, doc="The whole path matches this regular expression.")
    compiled: Matcher | None = field(init=False, repr=False, compare=False, default=None)

    def _check(self) -> list[str]:
        given = [k for k in ("exact", "prefix", "regex") if getattr(self, k) is not None]
        if len(given) != 1:
            return [f"exactly one of exact, prefix, regex must be set, not {given or 'none'}"]
        compiled, errors = _compile("regex", self.regex)
        object.__setattr__(self, "compiled", compiled)
        return errors

    def matches(self, path: str) -> bool:
        if self.exact is not None:
            return path == self.exact
        if self.prefix is not None:
            return path.startswith(self.prefix)
        assert self.compiled is not None
        return self.compiled.fullmatch(path) is not None


@dataclass(frozen=True, slots=True, kw_only=True)
class ValueMatch(Model):
    """A header or query parameter: `{"exact": v}`, `{"prefix": p}`, `{"suffix": s}`,
    `{"regex": r}` (whole value) or `{"present": true|false}`; `invert` negates the
    result. As in gRPC's xDS client, a missing value never matches a value condition,
    inverted or not; only `present` speaks of absence."""

    exact: str | None = setting(None, doc="The value equals this.")
    prefix: str | None = setting(None, doc="The value starts with this.")
    suffix: str | None = setting(None, doc="The value ends with this.")
    regex: str | None = setting(None, doc="The whole value matches this regular expression.")
    present: bool | None = setting(None, doc="true: the name is present (any value); "
                                   "false: it is absent.")
    invert: bool = setting(False, doc="Negate the result (for a value condition, only when "
                           "the name is present).")
    compiled: Matcher | None = field(init=False, repr=False, compare=False, default=None)

    def _check(self) -> list[str]:
        given = [k for k in _VALUE_KINDS if getattr(self, k) is not None]
        if len(given) != 1:
            return [f"exactly one of {', '.join(_VALUE_KINDS)} must be set, not "
                    f"{given or 'none'}"]
        compiled, errors = _compile("regex", self.regex)
        object.__setattr__(self, "compiled", compiled)
        return errors

    def matches(self, value: str | None) -> bool:
        if self.present is not None:
            return ((value is not None) == self.present) != self.invert
        if value is None:
            return False
        if self.exact is not None:
            found = value == self.exact
        elif self.prefix is not None:
            found = value.startswith(self.prefix)
        elif self.suffix is not None:
            found = value.endswith(self.suffix)
        else:
            assert self.compiled is not None
            found = self.compiled.fullmatch(value) is not None
        return found != self.invert


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteMatch(Model):
    """Every condition given must hold (AND); an empty match matches every request."""

    method: tuple[str, ...] = setting((), doc="Any of these methods (upper-case); empty: any.")
    path: PathMatch | None = setting(None, doc="The request path (no query string).")
    headers: Mapping[str, ValueMatch] = setting(factory=dict, doc="Header name (any case) "
                                                "to condition.")
    query: Mapping[str, ValueMatch] = setting(factory=dict, doc="Query parameter name "
                                              "(case-sensitive) to condition; the first "
                                              "value of a repeated parameter is tested.")
    percent: float | None = setting(None, doc="Only this share (0-100) of the requests that "
                                    "meet the other conditions matches, drawn per request "
                                    "(Envoy's `runtime_fraction`); unset: all.", lo=0, hi=100)

    def _check(self) -> list[str]:
        errors = [f"method must be upper-case HTTP methods: {m!r}"
                  for m in self.method if not m.isalpha() or not m.isupper()]
        errors += [f"headers name is not a valid header name: {n!r}"
                   for n in self.headers if not HEADER_NAME.fullmatch(n)]
        object.__setattr__(self, "method", tuple(self.method))
        object.__setattr__(self, "headers", {k.lower(): v for k, v in self.headers.items()})
        object.__setattr__(self, "query", dict(self.query))
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class Destination(Model):
    """One weighted destination service."""

    service: str = setting(doc="A service of the policy; the routed service itself means "
                           "its own endpoints.")
    weight: int = setting(1, doc="Relative share (0 allowed: blue-green 100/0).", lo=0,
                          hi=1_000_000)


@dataclass(frozen=True, slots=True, kw_only=True)
class DelayFault(Model):
    """Delay `percent` of requests by `duration` before they are sent."""

    percent: float = setting(doc="Share of requests delayed, 0-100.", lo=0, hi=100)
    duration: float = setting(doc="How long each is delayed.", above=0, duration=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class AbortFault(Model):
    """Fail `percent` of attempts with `status` (a synthetic response) or `error` (a
    synthetic `httpx.ConnectError` for "connect", `httpx.ReadError` for "reset")."""

    percent: float = setting(doc="Share of attempts aborted, 0-100.", lo=0, hi=100)
    status: int | None = setting(None, doc="Status of the synthetic response.", lo=200,
                                 hi=599)
    error: str | None = setting(None, doc="Or a connection failure instead of a response: "
                                + " or ".join(ABORT_ERRORS) + ".")

    def _check(self) -> list[str]:
        if (self.status is None) == (self.error is None):
            return ["exactly one of status, error must be set"]
        if self.error is not None and self.error not in ABORT_ERRORS:
            return [f"error must be one of {', '.join(ABORT_ERRORS)}: {self.error!r}"]
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultPolicy(Model):
    """Fault injection: a delay, an abort, or both, optionally only for requests carrying
    `header`. Rolled independently per attempt, so retries and breakers see them."""

    delay: DelayFault | None = setting(None, doc="Injected delay.")
    abort: AbortFault | None = setting(None, doc="Injected failure.")
    header: str | None = setting(None, doc="Only requests carrying this header (any value) "
                                 "are faulted.")

    def _check(self) -> list[str]:
        errors = []
        if self.delay is None and self.abort is None:
            errors.append("delay or abort must be set")
        if self.header is not None and not HEADER_NAME.fullmatch(self.header):
            errors.append(f"header is not a valid header name: {self.header!r}")
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class MirrorPolicy(Model):
    """Fire-and-forget copies of matching requests to another service."""

    to: str = setting(doc="The service that receives the copies.")
    percent: float = setting(100.0, doc="Share of matching requests copied, 0-100.", lo=0,
                             hi=100)


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteRule(Model):
    """One route of a service: the first route whose `match` holds decides."""

    name: str | None = setting(None, doc="For logs and metrics.")
    match: RouteMatch = setting(factory=RouteMatch, doc="Conditions; unset: every request.")
    to: tuple[Destination, ...] = setting((), doc="Weighted destinations; empty: the routed "
                                          "service itself.")
    hash_on: str | None = setting(None, doc="Header whose value picks the destination "
                                  "(sticky A/B); requests without it are split by weight.")
    fault: FaultPolicy | None = setting(None, doc="Fault injection for this route (replaces "
                                        "the service's `fault`).")
    mirror: MirrorPolicy | None = setting(None, doc="Dark traffic for this route.")
    limits: LimitsPolicy | None = setting(None, doc="Limits of this route, applied before "
                                          "the destination service's own (see "
                                          "docs/limits.md).")
    total_weight: int = field(init=False, repr=False, compare=False, default=0)

    def _check(self) -> list[str]:
        total = sum(d.weight for d in self.to)
        object.__setattr__(self, "total_weight", total)
        object.__setattr__(self, "to", tuple(self.to))
        errors = []
        if self.to and total == 0:
            errors.append("to weights must not all be 0")
        if self.hash_on is not None and not HEADER_NAME.fullmatch(self.hash_on):
            errors.append(f"hash_on is not a valid header name: {self.hash_on!r}")
        return errors


def check_routes(services: Mapping[str, Any]) -> list[str]:
    """Cross-service rules: every destination and mirror target names a service."""
    errors = []
    for name, spec in services.items():
        for i, rule in enumerate(getattr(spec, "routes", ())):
            here = f"services.{name}.routes[{i}]"
            for j, dest in enumerate(rule.to):
                if dest.service not in services:
                    errors.append(f"{here}.to[{j}].service names no service: "
                                  f"{dest.service!r}")
            if rule.mirror is not None and rule.mirror.to not in services:
                errors.append(f"{here}.mirror.to names no service: {rule.mirror.to!r}")
            if rule.mirror is not None and rule.mirror.to == name:
                errors.append(f"{here}.mirror.to must not be the service itself: {name!r}")
    return errors
