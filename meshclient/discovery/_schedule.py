"""When to refresh a service's endpoints, and which answers to believe. Sans I/O.

Fed every answer and every failure with the time it happened, `RefreshSchedule` says what to
publish and how long to wait before the next lookup. The cache's thread does the waiting.

Rules (grpc-go's DNS resolver re-resolves no faster than a floor and backs off after
errors; Finagle and Envoy keep serving the last good set when the registry fails):

- **TTL honoured, clamped** to `[min_ttl, max_ttl]`, so a TTL-0 answer (Consul's default)
  does not become a lookup per request, and a day-long TTL does not pin a dead endpoint.
- **Refresh before expiry**: the next lookup starts at `REFRESH_AT` (80%) of the clamped
  TTL, jittered down by up to `JITTER` so many processes do not query in lock-step.
- **Error backoff**: after the n-th failure in a row wait `min(backoff_max, backoff_base *
  2**(n-1))`, with equal jitter (half fixed, half random); the last good set stays published.
- **Grace before an empty answer wins**: "no endpoints" replaces a non-empty set only once the
  registry has said so for `grace` seconds in a row; until then the working set stays.
"""

from __future__ import annotations

from dataclasses import dataclass

from .._types import Rng
from .endpoint import Resolution

REFRESH_AT = 0.8
JITTER = 0.1
BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """Clamp, grace and backoff bounds (seconds). Validated at construction."""

    min_ttl_s: float = 5.0
    max_ttl_s: float = 300.0
    grace_s: float = 30.0
    backoff_base_s: float = BACKOFF_BASE_S
    backoff_max_s: float = BACKOFF_MAX_S

    def __post_init__(self) -> None:
        if not 0 < self.min_ttl_s <= self.max_ttl_s:
            raise ValueError(f"need 0 < min_ttl_s <= max_ttl_s: {self.min_ttl_s!r}, "
                             f"{self.max_ttl_s!r}")
        if self.grace_s < 0:
            raise ValueError(f"grace_s must be at least 0: {self.grace_s!r}")
        if not 0 < self.backoff_base_s <= self.backoff_max_s:
            raise ValueError(f"need 0 < backoff_base_s <= backoff_max_s: "
                             f"{self.backoff_base_s!r}, {self.backoff_max_s!r}")


@dataclass(frozen=True, slots=True)
class Step:
    """What to do after one lookup.

    `publish`: the resolution to make current (None: keep the current one). `delay_s`: wait
    this long before the next lookup (None: the source pushes changes; do not poll).
    `first_failure`: this failure starts a streak (log it); `recovered_after`: failures the
    streak had when this answer ended it (0: there was none).
    """

    publish: Resolution | None
    delay_s: float | None
    first_failure: bool = False
    recovered_after: int = 0
    held_empty: bool = False


class RefreshSchedule:
    """The refresh state of one cache. Not thread-safe: one refresh thread owns it."""

    def __init__(self, config: ScheduleConfig, rng: Rng) -> None:
        self.config = config
        self.rng = rng
        self.current: Resolution | None = None
        self.failures = 0
        self.last_success_ns: int | None = None
        self.empty_since_ns: int | None = None

    def clamp(self, ttl_s: float) -> float:
        return min(max(ttl_s, self.config.min_ttl_s), self.config.max_ttl_s)

    def _poll_delay(self, ttl_s: float | None) -> float | None:
        if ttl_s is None:
            return None
        return self.clamp(ttl_s) * REFRESH_AT * (1 - JITTER * self.rng.random())

    def on_answer(self, now_ns: int, resolution: Resolution) -> Step:
        recovered, self.failures = self.failures, 0
        self.last_success_ns = now_ns
        delay = self._poll_delay(resolution.ttl_s)
        working = self.current is not None and not self.current.empty
        if resolution.empty and working:
            if self.empty_since_ns is None:
                self.empty_since_ns = now_ns
            held_s = (now_ns - self.empty_since_ns) / _NS
            if held_s < self.config.grace_s:
                left = self.config.grace_s - held_s
                delay = left if delay is None else min(delay, left)
                return Step(None, delay, recovered_after=recovered, held_empty=True)
        self.empty_since_ns = None
        self.current = resolution
        return Step(resolution, delay, recovered_after=recovered)

    def on_error(self, now_ns: int) -> Step:
        self.failures += 1
        ceiling = min(self.config.backoff_max_s,
                      self.config.backoff_base_s * 2 ** min(self.failures - 1, 30))
        delay = ceiling / 2 + ceiling / 2 * self.rng.random()
        return Step(None, delay, first_failure=self.failures == 1)

    def stale_s(self, now_ns: int) -> float | None:
        """Seconds since the last good answer (None: never had one)."""
        if self.last_success_ns is None:
            return None
        return (now_ns - self.last_success_ns) / _NS

    def __repr__(self) -> str:
        n = None if self.current is None else len(self.current.endpoints)
        return f"<RefreshSchedule endpoints={n} failures={self.failures}>"
