"""Ports: the small protocols stateful components take instead of reaching for globals."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Monotonic time in integer nanoseconds."""

    def now_ns(self) -> int: ...


class Rng(Protocol):
    """The slice of `random.Random` meshclient uses."""

    def random(self) -> float: ...

    def randrange(self, stop: int, /) -> int: ...
