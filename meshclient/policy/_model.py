"""The policy: frozen, validated dataclasses, replaced as whole snapshots.

Defaults are the anchors' values: the retry budget is Finagle's and Linkerd's (20% of
requests over 10 s, plus 10 retries a second); peak-EWMA decay 10 s and a 30 ms prior are
Finagle's and tower's; outlier ejection follows Envoy (5 consecutive 5xx, 30 s base
ejection, at most 50% ejected, 50% panic threshold).
"""

from __future__ import annotations

import re
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .._addresses import split_address
from ._authn import AuthenticationPolicy
from ._checks import ExtensionProvider, provider_errors
from ._discovery import DiscoveryPolicy, HealthPolicy, service_errors
from ._fields import Model, host_error, setting
from ._routing import FaultPolicy, RouteRule, check_routes
from ._security import AuthorizationPolicy, AuthPolicy, LimitsPolicy, TlsPolicy

RETRY_CONDITIONS = ("connect-error", "reset", "read-error", "timeout", "5xx", "gateway-error")
BALANCER_KINDS = ("p2c-ewma", "p2c-least-request", "round-robin", "random")
EJECTION_KINDS = ("backoff", "linear")
SCHEMES = ("http", "https")
_STATUS = re.compile(r"^[1-5][0-9][0-9]$")
_SERVICE_NAME = re.compile(r"^[a-z0-9]([a-z0-9\-_.]*[a-z0-9])?$")
_HTTP_METHOD = re.compile(r"^[A-Z]+$")


@dataclass(frozen=True, slots=True, kw_only=True)
class TimeoutPolicy(Model):
    """How long a call may take, in all and per attempt."""

    total: float = setting(15.0, doc="Bound on the whole call, retries and backoff included "
                           "(Envoy's route timeout default).", above=0, duration=True)
    per_try: float | None = setting(None, doc="Bound on each attempt; never beyond what remains "
                                    "of `total`. Unset: the remaining total.", above=0,
                                    duration=True)

    def _check(self) -> list[str]:
        if self.per_try is not None and self.per_try > self.total:
            return [f"per_try must not exceed total ({self.total:g}s): {self.per_try:g}"]
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class BackoffPolicy(Model):
    """Exponential backoff with full jitter between attempts."""

    base: float = setting(0.025, doc="First backoff ceiling.", above=0, duration=True)
    max: float = setting(0.25, doc="Largest backoff ceiling.", above=0, duration=True)

    def _check(self) -> list[str]:
        if self.base > self.max:
            return [f"base must not exceed max ({self.max:g}s): {self.base:g}"]
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetPolicy(Model):
    """Finagle's retry budget: retries stay within `ratio` of requests plus a floor."""

    ratio: float = setting(0.2, doc="Retries allowed per request, over `ttl`.", lo=0, hi=1)
    min_per_second: float = setting(10, doc="Retries always allowed per second.", lo=0,
                                    hi=1_000_000)
    ttl: float = setting(10.0, doc="How long a deposit counts.", lo=1, hi=60, duration=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class HedgePolicy(Model):
    """Send a second attempt to another endpoint when the first is slow."""

    delay: float | None = setting(None, doc="Fixed delay before the hedge.", above=0,
                                  duration=True)
    percentile: float | None = setting(None, doc="Or: hedge after this percentile of observed "
                                       "latency.", above=0, hi=100)
    max_hedges: int = setting(1, doc="Extra attempts in flight at once.", lo=1, hi=3)

    def _check(self) -> list[str]:
        if (self.delay is None) == (self.percentile is None):
            return ["delay or percentile must be set, not both"]
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy(Model):
    """Which failures are retried, how often and how far apart."""

    attempts: int = setting(3, doc="Most attempts in total, the first included.", lo=1, hi=10)
    on: tuple[str, ...] = setting(
        ("connect-error", "reset", "502", "503", "504"),
        doc="Outcomes that may be retried: " + ", ".join(RETRY_CONDITIONS) + ", or a status.",
    )
    methods: tuple[str, ...] = setting(
        ("GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"),
        doc="Methods whose reset, read error or status may be retried (idempotent ones).",
    )
    backoff: BackoffPolicy = setting(factory=BackoffPolicy, doc="Backoff between attempts.")
    budget: BudgetPolicy = setting(factory=BudgetPolicy, doc="The service's retry budget.")
    one_layer: bool = setting(True, doc="Do not retry below a request that is itself a retry.")
    hedge: HedgePolicy | None = setting(None, doc="Optional hedged requests.")

    def _check(self) -> list[str]:
        errors = [f"on must be one of {', '.join(RETRY_CONDITIONS)} or a status code: {item!r}"
                  for item in self.on if item not in RETRY_CONDITIONS and not _STATUS.match(item)]
        errors += [f"methods must be upper-case HTTP methods: {m!r}"
                   for m in self.methods if not _HTTP_METHOD.match(m)]
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class BalancerPolicy(Model):
    """How an endpoint is picked."""

    kind: str = setting("p2c-ewma", doc="The picker.", choices=BALANCER_KINDS)
    decay: float = setting(10.0, doc="Peak-EWMA decay time.", above=0, duration=True)
    default_rtt: float = setting(0.03, doc="Latency assumed for an endpoint with no history.",
                                 above=0, duration=True)
    panic_threshold: float = setting(50.0, doc="Balance over all endpoints when fewer than this "
                                     "percentage are healthy.", lo=0, hi=100)
    failure_penalty: float = setting(2.0, doc="A failed attempt counts as at least this many "
                                     "times the current latency estimate (capped at `decay`), "
                                     "so fast errors never look cheap.", lo=1, hi=100)


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerPolicy(Model):
    """One circuit breaker per endpoint."""

    failures: int = setting(5, doc="Consecutive failures that open the breaker.", lo=1,
                            hi=10_000)
    reset: float = setting(30.0, doc="Longest time it stays open before one probe (the "
                           "open period doubles, jittered, from `reset_min` up to this).",
                           above=0, duration=True)
    reset_min: float = setting(1.0, doc="First open period (never longer than `reset`; set "
                               "it equal to `reset` for a fixed open period).", above=0,
                               duration=True)
    storage: str | None = setting(None, doc="redis://… to share breaker state between "
                                  "processes; unset: memory.")

    def _check(self) -> list[str]:
        if self.storage is not None and not self.storage.startswith(("redis://", "rediss://")):
            return [f"storage must be a redis:// or rediss:// URL: {self.storage!r}"]
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class OutlierPolicy(Model):
    """Envoy-style outlier ejection."""

    consecutive_failures: int = setting(5, doc="Connection failures or 5xx in a row that "
                                        "eject an endpoint (0 disables).", lo=0, hi=10_000)
    ejection: str = setting("backoff", doc="How ejections lengthen: `backoff` doubles the "
                            "time from `base_ejection`, jittered (Linkerd's failure accrual); "
                            "`linear` is `base_ejection` times the number of ejections "
                            "(Envoy's).", choices=EJECTION_KINDS)
    base_ejection: float = setting(1.0, doc="First ejection time.", above=0, duration=True)
    max_ejection: float = setting(30.0, doc="Longest ejection.", above=0, duration=True)
    max_ejected_percent: float = setting(50.0, doc="Never eject more than this share.", lo=0,
                                         hi=100)

    def _check(self) -> list[str]:
        if self.base_ejection > self.max_ejection:
            return [f"base_ejection must not exceed max_ejection ({self.max_ejection:g}s): "
                    f"{self.base_ejection:g}"]
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointSpec(Model):
    """One static endpoint: `"host:port"` or `{"address", "weight", "zone", "priority",
    "metadata"}`."""

    address: str = setting(doc="host:port ([v6]:port for IPv6).")
    weight: int = setting(1, doc="Relative share of traffic.", lo=1, hi=65535)
    zone: str | None = setting(None, doc="Locality, for zone-aware balancing.")
    priority: int = setting(0, doc="Priority group: lower groups are used first, the next "
                            "only when too few endpoints of the lower ones are healthy.",
                            lo=0, hi=65535)
    metadata: Mapping[str, str] = setting(factory=dict, doc="Free-form labels.")

    def _check(self) -> list[str]:
        try:
            host, _ = split_address(self.address)
        except ValueError as exc:
            return [f"address {exc}"]
        if not self.address.startswith("[") and (message := host_error(host)):
            return [f"address {message}"]
        object.__setattr__(self, "metadata", types.MappingProxyType(dict(self.metadata)))
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class Defaults(Model):
    """Sections every service inherits; a service's own section is merged over them."""

    timeout: TimeoutPolicy = setting(factory=TimeoutPolicy, doc="Timeouts and deadline.")
    retry: RetryPolicy = setting(factory=RetryPolicy, doc="Retries.")
    balancer: BalancerPolicy = setting(factory=BalancerPolicy, doc="Load balancing.")
    breaker: BreakerPolicy = setting(factory=BreakerPolicy, doc="Circuit breakers.")
    outlier: OutlierPolicy = setting(factory=OutlierPolicy, doc="Outlier ejection.")
    tls: TlsPolicy | None = setting(None, doc="Mutual TLS (see docs/mtls.md).")
    auth: AuthPolicy | None = setting(None, doc="Outbound credentials (see docs/credentials.md).")
    limits: LimitsPolicy | None = setting(None, doc="Rate, concurrency and adaptive limits "
                                          "(see docs/limits.md).")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServicePolicy(Model):
    """One logical service: where it lives and how it is called.

    Sections left out (`None` when built in Python) come from `Policy.defaults`.
    """

    endpoints: tuple[EndpointSpec, ...] = setting((), doc="Static endpoints.")
    scheme: str = setting("http", doc="Scheme used to reach the endpoints.", choices=SCHEMES)
    timeout: TimeoutPolicy | None = setting(None, doc="Timeouts and deadline.")
    retry: RetryPolicy | None = setting(None, doc="Retries.")
    balancer: BalancerPolicy | None = setting(None, doc="Load balancing.")
    breaker: BreakerPolicy | None = setting(None, doc="Circuit breakers.")
    outlier: OutlierPolicy | None = setting(None, doc="Outlier ejection.")
    routes: tuple[RouteRule, ...] = setting((), doc="Routing rules, first match wins "
                                            "(docs/routing.md).")
    fault: FaultPolicy | None = setting(None, doc="Fault injection for every request to "
                                        "the service (docs/routing.md).")
    tls: TlsPolicy | None = setting(None, doc="Mutual TLS (see docs/mtls.md).")
    auth: AuthPolicy | None = setting(None, doc="Outbound credentials (see docs/credentials.md).")
    limits: LimitsPolicy | None = setting(None, doc="Rate, concurrency and adaptive limits "
                                          "(see docs/limits.md).")
    discovery: DiscoveryPolicy | None = setting(None, doc="Where endpoints are discovered "
                                                "(a URL, or a table with `url`); see "
                                                "docs/discovery.md.")
    health: HealthPolicy | None = setting(None, doc="Active health checks.")

    def _check(self) -> list[str]:
        return service_errors(self)


@dataclass(frozen=True, slots=True)
class Service:
    """A service as requests see it: every section resolved against the defaults.

    Immutable after construction; built once per policy snapshot.
    """

    name: str
    scheme: str
    endpoints: tuple[EndpointSpec, ...]
    timeout: TimeoutPolicy
    retry: RetryPolicy
    balancer: BalancerPolicy
    breaker: BreakerPolicy
    outlier: OutlierPolicy
    spec: ServicePolicy
    routes: tuple[RouteRule, ...] = ()
    fault: FaultPolicy | None = None
    tls: TlsPolicy | None = None
    auth: AuthPolicy | None = None
    limits: LimitsPolicy | None = None
    discovery: DiscoveryPolicy | None = None
    health: HealthPolicy | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy(Model):
    """The whole mesh policy for a process. Immutable; swap it whole through a `PolicyStore`.

    Usage:
    ```python
    policy = Policy.from_dict({"services": {"users": {"endpoints": ["127.0.0.1:8001"]}}})
    policy = Policy.load("mesh.toml")
    policy = Policy.from_env()
    ```
    """

    version: str = setting("", doc="Free-form version, logged when a policy is applied.")
    defaults: Defaults = setting(factory=Defaults, doc="Sections every service inherits.")
    services: Mapping[str, ServicePolicy] = setting(factory=dict, doc="Services by name.")
    authentication: AuthenticationPolicy | None = setting(
        None, doc="End-user authentication of inbound requests (see docs/authentication.md).")
    authorization: AuthorizationPolicy | None = setting(
        None, doc="Inbound authorization of this process (see docs/authorization.md).")
    extension_providers: tuple[ExtensionProvider, ...] = setting(
        (), doc="Named external checks (Istio's `extensionProviders`; see docs/ext-authz.md).")
    inbound_limits: LimitsPolicy | None = setting(
        None, doc="Rate limit on requests this process serves, answered 429 with "
        "`Retry-After` (Envoy's local and global rate limit; see docs/limits.md).")
    resolved: Mapping[str, Service] = field(init=False, repr=False, compare=False)

    def _check(self) -> list[str]:
        errors = [f"services name must be a lower-case host name: {name!r}"
                  for name in self.services if not _SERVICE_NAME.match(name)]
        object.__setattr__(self, "services", types.MappingProxyType(dict(self.services)))
        resolved = {name: _resolve(name, spec, self.defaults)
                    for name, spec in self.services.items()}
        object.__setattr__(self, "resolved", types.MappingProxyType(resolved))
        errors += check_routes(self.services)  # destinations name services
        errors += provider_errors(self.extension_providers)
        inbound = self.inbound_limits
        if inbound is not None:
            if inbound.rate is None:
                errors.append("inbound_limits.rate must be set")
            if inbound.max_concurrent is not None or inbound.max_wait:
                errors.append("inbound_limits takes rate, burst, key, max_keys, redis and "
                              "redis_key only (shed load with the middleware's "
                              "max_concurrency): "
                              f"max_concurrent={inbound.max_concurrent!r}, "
                              f"max_wait={inbound.max_wait!r}")
        return errors

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Build from a parsed JSON/TOML document; raises `PolicyError` with field paths."""
        return CODEC.from_dict(data)

    @classmethod
    def load(cls, path: str) -> Policy:
        """Load a JSON (`.json`) or TOML (`.toml`) file."""
        return CODEC.load(path)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Policy:
        """Build from `MESHCLIENT_*` variables (see docs/reference/environment.md)."""
        return CODEC.from_env(environ)

    def to_dict(self) -> dict[str, Any]:
        """The normalised document (durations spelled out, defaults filled in)."""
        return CODEC.to_dict(self)


class _Codec:
    """The parsers behind `Policy`'s constructors. They build `Policy`, so this module
    cannot import them: `_parse` and `_env` install themselves here when they load, and the
    package's `__init__` imports both (a package's `__init__` runs before any of its modules
    can be used)."""

    from_dict: Callable[[Mapping[str, Any]], Policy]
    load: Callable[[str], Policy]
    from_env: Callable[[Mapping[str, str] | None], Policy]
    to_dict: Callable[[Policy], dict[str, Any]]


CODEC = _Codec()


def _resolve(name: str, spec: ServicePolicy, defaults: Defaults) -> Service:
    return Service(
        name=name,
        scheme=spec.scheme,
        endpoints=spec.endpoints,
        timeout=spec.timeout or defaults.timeout,
        retry=spec.retry or defaults.retry,
        balancer=spec.balancer or defaults.balancer,
        breaker=spec.breaker or defaults.breaker,
        outlier=spec.outlier or defaults.outlier,
        spec=spec,
        routes=spec.routes,
        fault=spec.fault,
        tls=spec.tls or defaults.tls,
        auth=spec.auth or defaults.auth,
        limits=spec.limits or defaults.limits,
        discovery=spec.discovery,
        health=spec.health,
    )


DEFAULT_POLICY = Policy()
