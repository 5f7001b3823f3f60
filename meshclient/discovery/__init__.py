"""Where a service's endpoints come from: static lists, DNS (A/AAAA, SRV), files and etcd,
followed by a background endpoint cache; registration in etcd; active health checks.
See docs/discovery.md."""

from ._schedule import ScheduleConfig
from .cache import EndpointCache
from .endpoint import DiscoveryError, Endpoint, Resolution, Resolver, split_address
from .register import Registration, RegistrationError, register

__all__ = [
    "DiscoveryError",
    "Endpoint",
    "EndpointCache",
    "Registration",
    "RegistrationError",
    "Resolution",
    "Resolver",
    "ScheduleConfig",
    "register",
    "split_address",
]
