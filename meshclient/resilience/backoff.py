"""Exponential backoff with full jitter between attempts.

The window comes from tenacity's `wait_random_exponential` (its exponential part:
`min(base * 2^(n-1), max)` for retry n); the draw is `uniform(0, window)` from an injected
`Rng`, so tests are reproducible (tenacity itself draws from the global `random`).
tenacity's retry loop is not used: the flow drives retries.
"""

from __future__ import annotations

from dataclasses import dataclass

from tenacity.wait import wait_exponential, wait_random_exponential

from .._types import Rng
from ..errors import PolicyError


class BackoffError(PolicyError):
    """Invalid backoff parameters."""


@dataclass(frozen=True, slots=True)
class _State:
    """The one attribute of tenacity's `RetryCallState` the wait strategies read."""

    attempt_number: int


class Backoff:
    """`window(n)` is the ceiling of the n-th retry's wait; `wait(n, rng)` draws in it."""

    __slots__ = ("_strategy", "base", "max")

    def __init__(self, base: float, max: float) -> None:
        if not 0 < base <= max:
            raise BackoffError(f"retry.backoff.base must be in (0, max={max!r}]: {base!r}")
        self.base = base
        self.max = max
        self._strategy = wait_random_exponential(multiplier=base, max=max)

    def window(self, retry: int) -> float:
        """Ceiling of the wait before retry number `retry` (1 for the first retry)."""
        state = _State(max(1, retry))
        return float(wait_exponential.__call__(self._strategy, state))  # type: ignore[arg-type]

    def wait(self, retry: int, rng: Rng) -> float:
        """Full jitter: uniform in [0, window(retry))."""
        return rng.random() * self.window(retry)

    def __repr__(self) -> str:
        return f"Backoff(base={self.base!r}, max={self.max!r})"
