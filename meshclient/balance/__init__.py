"""Endpoint selection: per-endpoint state, load metrics, pickers, outlier ejection, zones
and panic mode (see docs/balancing.md)."""

from ._base import DEGRADED, HEALTHY, PROBING, UNAVAILABLE, BreakerStatus, EndpointState
from .balancer import LoadBalancer, build_balancer
from .outlier import OutlierDetector
from .round_robin import RoundRobinPicker
from .weighted_random import RandomPicker

__all__ = [
    "DEGRADED",
    "HEALTHY",
    "PROBING",
    "UNAVAILABLE",
    "BreakerStatus",
    "EndpointState",
    "LoadBalancer",
    "OutlierDetector",
    "RandomPicker",
    "RoundRobinPicker",
    "build_balancer",
]
