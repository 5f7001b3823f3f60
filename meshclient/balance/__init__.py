"""Endpoint selection: per-endpoint state, load metrics and pickers."""

from ._base import Balancer, EndpointState
from .round_robin import RoundRobin

__all__ = ["Balancer", "EndpointState", "RoundRobin"]
