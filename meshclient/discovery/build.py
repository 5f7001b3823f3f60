"""A resolver and a cache for a service's `discovery` policy."""

from __future__ import annotations

from .._addresses import parse_url
from .._types import Clock, Rng
from ..policy import DiscoveryPolicy, settings_from_env
from ._schedule import BACKOFF_BASE_S, BACKOFF_MAX_S, ScheduleConfig
from .cache import EndpointCache
from .endpoint import Resolver, split_address


def nameservers_for(policy: DiscoveryPolicy) -> tuple[tuple[str, int], ...]:
    """The policy's nameservers, else `MESHCLIENT_DNS_NAMESERVERS`, else () (the system's)."""
    if policy.nameservers:
        return tuple(split_address(s) for s in policy.nameservers)
    return settings_from_env().dns_nameservers


def build_resolver(policy: DiscoveryPolicy) -> Resolver:
    target = parse_url(policy.url)
    if target.kind == "dns":
        from .dns import DnsResolver

        return DnsResolver(policy.url, target.name, target.port,
                           nameservers=nameservers_for(policy), timeout_s=policy.timeout)
    if target.kind == "dns+srv":
        from .dns import SrvResolver

        return SrvResolver(policy.url, target.name, nameservers=nameservers_for(policy),
                           timeout_s=policy.timeout)
    if target.kind == "file":
        from .file import FileResolver

        return FileResolver(policy.url, target.path)
    from .etcd import EtcdResolver

    return EtcdResolver(policy.url, target.server, target.path, timeout_s=policy.timeout)


#: Reconnect backoff cap for a watched source (etcd): a reconnect is one cheap request, and
#: endpoints written while the registry was away should be used within seconds of its return.
WATCH_BACKOFF_MAX_S = 2.0


def schedule_config(policy: DiscoveryPolicy) -> ScheduleConfig:
    """Backoff after errors starts at 0.5 s (or `min_ttl` when shorter) and grows to 30 s
    (or `max_ttl` when shorter): a failing registry is never retried less often than a
    working one is refreshed. A watched source (etcd) caps it at `WATCH_BACKOFF_MAX_S`."""
    base = min(BACKOFF_BASE_S, policy.min_ttl)
    cap = min(BACKOFF_MAX_S, policy.max_ttl)
    if parse_url(policy.url).kind == "etcd":
        cap = min(cap, WATCH_BACKOFF_MAX_S)
    return ScheduleConfig(min_ttl_s=policy.min_ttl, max_ttl_s=policy.max_ttl,
                          grace_s=policy.grace, backoff_base_s=base,
                          backoff_max_s=max(base, cap))


def build_cache(service: str, policy: DiscoveryPolicy, clock: Clock, rng: Rng
                ) -> EndpointCache:
    return EndpointCache(service, build_resolver(policy), schedule_config(policy),
                         clock=clock, rng=rng)
