"""Endpoint selection: per-endpoint state, load metrics, pickers, outlier ejection, zones
and panic mode (see docs/balancing.md)."""

from ._base import DEGRADED, HEALTHY, UNAVAILABLE, Balancer, BreakerStatus, EndpointState
from .balancer import LoadBalancer, RoundRobin, build_balancer
from .outlier import OutlierDetector
from .p2c import P2C
from .round_robin import RoundRobinPicker
from .weighted_random import RandomPicker

__all__ = [
    "DEGRADED",
    "HEALTHY",
    "P2C",
    "UNAVAILABLE",
    "Balancer",
    "BreakerStatus",
    "EndpointState",
    "LoadBalancer",
    "OutlierDetector",
    "RandomPicker",
    "RoundRobin",
    "RoundRobinPicker",
    "build_balancer",
]
