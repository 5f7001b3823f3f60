"""The real clock and randomness (tests use `meshclient.testing.FakeClock` / `SeededRng`)."""

from __future__ import annotations

import random
import time

from ._stall import STALLS


class MonotonicClock:
    """`time.monotonic_ns()`; immutable and shareable."""

    __slots__ = ()

    #: The builtin itself, not a method around it: read several times per request, and a
    #: call into C costs a fraction of a Python-level call.
    now_ns = staticmethod(time.monotonic_ns)

    #: This process's client stalls, on this clock (`_stall.py`).
    stalls = STALLS

    def __repr__(self) -> str:
        return "MonotonicClock()"


class SystemRng(random.Random):
    """A `random.Random` seeded from the OS. Each thread may share it: CPython's
    `random()` and `randrange()` are atomic under the GIL."""


CLOCK = MonotonicClock()
RNG = SystemRng()
