"""Policy sections of discovery: where a service's endpoints come from (`discovery`) and
how they are checked (`health`). See docs/discovery.md.

`discovery` may be written as a bare URL string (`"dns+srv://_http._tcp.users.internal"`)
or as a table with `url` and tuning fields. A service has static `endpoints` or
`discovery`, not both: which one wins would otherwise be a silent guess.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .._addresses import parse_url, split_address
from ._fields import Model, host_error, setting

if TYPE_CHECKING:
    from ._model import ServicePolicy

#: TTL clamp defaults: the floor keeps TTL-0 answers (Consul's default) from turning into
#: a query per request; the ceiling bounds how long a removed endpoint can linger.
DEFAULT_MIN_TTL = 5.0
DEFAULT_MAX_TTL = 300.0
DEFAULT_GRACE = 30.0


@dataclass(frozen=True, slots=True, kw_only=True)
class DiscoveryPolicy(Model):
    """Where a service's endpoints come from, and how the endpoint cache refreshes them."""

    url: str = setting(doc="dns://name:port, dns+srv://_http._tcp.name, file:///path.json or "
                       "etcd://host:port/prefix.")
    min_ttl: float = setting(DEFAULT_MIN_TTL, doc="Shortest time an answer is cached (DNS TTLs "
                             "below it are raised to it).", lo=0.05, hi=3600, duration=True)
    max_ttl: float = setting(DEFAULT_MAX_TTL, doc="Longest time an answer is cached (DNS TTLs "
                             "above it are lowered to it).", lo=0.05, hi=86400, duration=True)
    grace: float = setting(DEFAULT_GRACE, doc="How long the registry must keep answering "
                           "\"no endpoints\" before a working endpoint set is dropped.", lo=0,
                           hi=86400, duration=True)
    timeout: float = setting(2.0, doc="Bound on one lookup (DNS lifetime, etcd call, file "
                             "read).", above=0, hi=60, duration=True)
    nameservers: tuple[str, ...] = setting((), doc="DNS servers as host:port, overriding "
                                           "MESHCLIENT_DNS_NAMESERVERS and the system's "
                                           "resolver configuration.")

    def _check(self) -> list[str]:
        errors = []
        try:
            target = parse_url(self.url)
        except ValueError as exc:
            errors.append(f"url {exc}")
        else:
            host = target.name or (target.server or "").rpartition(":")[0]
            if host and not host.startswith("[") and (message := host_error(host.rstrip("."))):
                errors.append(f"url {message}")
        if self.min_ttl > self.max_ttl:
            errors.append(f"min_ttl must not exceed max_ttl ({self.max_ttl:g}s): "
                          f"{self.min_ttl:g}")
        for i, server in enumerate(self.nameservers):
            try:
                host, _ = split_address(server)
            except ValueError as exc:
                errors.append(f"nameservers[{i}] {exc}")
                continue
            if not server.startswith("[") and (message := host_error(host)):
                errors.append(f"nameservers[{i}] {message}")
        return errors


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthPolicy(Model):
    """Active health checks: `GET path` on every endpoint each `interval`; an endpoint that
    fails is treated as ejected until it passes again."""

    path: str = setting("/healthz", doc="Path requested on each endpoint; 2xx passes.")
    interval: float = setting(10.0, doc="Time between checks of one endpoint.", lo=0.05,
                              hi=3600, duration=True)
    timeout: float = setting(1.0, doc="Bound on one check.", above=0, hi=60, duration=True)
    unhealthy_after: int = setting(2, doc="Failed checks in a row that mark an endpoint "
                                   "unhealthy.", lo=1, hi=100)
    healthy_after: int = setting(1, doc="Passed checks in a row that mark it healthy again.",
                                 lo=1, hi=100)

    def _check(self) -> list[str]:
        errors = []
        if not self.path.startswith("/"):
            errors.append(f"path must start with '/': {self.path!r}")
        elif any(c.isspace() for c in self.path):
            errors.append(f"path must not contain spaces: {self.path!r}")
        if self.timeout > self.interval:
            errors.append(f"timeout must not exceed interval ({self.interval:g}s): "
                          f"{self.timeout:g}")
        return errors


def service_errors(spec: ServicePolicy) -> list[str]:
    """Cross-field rule of a service: static endpoints or discovery, not both."""
    if spec.discovery is not None and spec.endpoints:
        return ["discovery and endpoints are exclusive: give a service static endpoints or a "
                f"discovery URL, not both: {spec.discovery.url!r}"]
    return []
