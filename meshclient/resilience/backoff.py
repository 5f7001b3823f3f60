"""Exponential backoff with full jitter between attempts, and tenacity waits in its place.

The window comes from tenacity's `wait_random_exponential` (its exponential part:
`min(base * 2^(n-1), max)` for retry n); the draw is `uniform(0, window)` from an injected
`Rng`, so tests are reproducible (tenacity itself draws from the global `random`).
tenacity's retry loop is not used: the flow drives retries.

The two speak both ways: a `Backoff` is a tenacity wait strategy (`Retrying(wait=backoff)`,
drawing from meshclient's RNG), and `as_backoff(strategy)` makes any tenacity wait
(`wait_exponential_jitter(...)`, `wait_fixed(1) + wait_random(0, 1)`, …) a backoff:
`WaitBackoff.wait(n, rng)` asks the strategy for the wait before retry n (its jitter is the
strategy's own, so `rng` is unused).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

from tenacity import RetryCallState
from tenacity.wait import wait_exponential, wait_random_exponential

from .._clock import RNG
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

    def __call__(self, retry_state: RetryCallState) -> float:
        """As a tenacity wait strategy (full jitter from meshclient's RNG)."""
        return self.wait(retry_state.attempt_number, RNG)

    def __repr__(self) -> str:
        return f"Backoff(base={self.base!r}, max={self.max!r})"


class BackoffLike(Protocol):
    """What the retry paths need of a backoff."""

    def wait(self, retry: int, rng: Rng) -> float: ...


class WaitBackoff:
    """A tenacity wait strategy used where meshclient takes a backoff."""

    __slots__ = ("strategy",)

    def __init__(self, strategy: Any) -> None:
        if not callable(strategy):
            raise BackoffError(f"wait must be a tenacity wait strategy (a callable taking "
                               f"a RetryCallState): {strategy!r}")
        self.strategy = strategy

    def wait(self, retry: int, rng: Rng) -> float:
        """The strategy's wait before retry `retry` (1 for the first retry)."""
        state = RetryCallState(None, None, (), {})  # type: ignore[arg-type]
        state.attempt_number = max(1, retry)
        seconds = self.strategy(state)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
                math.isfinite(seconds) and seconds >= 0):
            raise BackoffError(f"wait strategy {self.strategy!r} must return a finite, "
                               f"non-negative number of seconds: {seconds!r}")
        return float(seconds)

    def __call__(self, retry_state: RetryCallState) -> float:
        return self.wait(retry_state.attempt_number, RNG)

    def __repr__(self) -> str:
        return f"WaitBackoff({self.strategy!r})"


def as_backoff(value: Any) -> Backoff | WaitBackoff:
    """`value` as a backoff: a `Backoff` as it is, a tenacity wait strategy wrapped."""
    if isinstance(value, (Backoff, WaitBackoff)):
        return value
    return WaitBackoff(value)
