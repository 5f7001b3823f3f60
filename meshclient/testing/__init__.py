"""Public, supported test helpers: real loopback backends with fault knobs, a cluster of
them, and a fake clock / seeded RNG for simulations."""

from .backend import Backend
from .clock import FakeClock, SeededRng
from .cluster import LoopbackCluster

__all__ = ["Backend", "FakeClock", "LoopbackCluster", "SeededRng"]
