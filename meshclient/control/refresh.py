"""The refresh schedule, sans I/O: what to ask the control endpoint next, and when.

`RefreshSchedule` is pure state plus decisions; `RefreshThread` does the I/O.

* **Polling** — every `interval_s`, jittered to [0.8, 1.2] * interval so a fleet does not
  poll in step. Each request carries the validators of the last answer (`If-None-Match`
  from `ETag`, `If-Modified-Since` from `Last-Modified`, RFC 9110 §13), so an unchanged
  policy costs one 304 and no parse.
* **Long polling** — an answer carrying an index header (`X-Consul-Index`, or
  `X-Mesh-Index`) switches to Consul-style blocking queries: the next request is sent at
  once with `?index=<last>&wait=<wait_s>s` and the server holds it until the policy
  changes or `wait` passes. As Consul's docs require, an answer whose index did not move is
  "no change" (not parsed), an index that goes backwards or is not positive resets to 0,
  and two answers in quick succession without a change are spaced by `min_gap_s` so a
  misbehaving server cannot make us spin.
* **Failures** — back off exponentially: `backoff_base_s * 2^(n-1)`, capped at
  `backoff_max_s`, with jitter to [0.5, 1] of that (so retries of a fleet spread out).
  The first success returns to the normal rhythm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .._types import Rng

#: Index headers accepted from a long-polling server (case-insensitive).
INDEX_HEADERS = ("x-consul-index", "x-mesh-index")
DEFAULT_LONG_POLL_WAIT_S = 30.0
DEFAULT_BACKOFF_MAX_S = 60.0


@dataclass(frozen=True, slots=True)
class FetchPlan:
    """One request to make: extra headers, query parameters and its timeout."""

    headers: dict[str, str]
    params: dict[str, str]
    timeout_s: float


@dataclass(slots=True)
class RefreshSchedule:
    """Schedule state for one control endpoint. Not thread-safe: one refresher owns it.

    **Parameters:** `interval_s` (poll period), `long_poll_wait_s` (the `wait` asked of a
    long-polling server), `backoff_base_s` / `backoff_max_s` (failure backoff),
    `timeout_s` (wall-clock bound on a plain poll, headers and body together).
    """

    interval_s: float
    long_poll_wait_s: float = DEFAULT_LONG_POLL_WAIT_S
    backoff_base_s: float = 0.0  # 0: min(1 s, interval / 4)
    backoff_max_s: float = DEFAULT_BACKOFF_MAX_S
    timeout_s: float = 10.0
    min_gap_s: float = 0.05
    etag: str | None = None
    last_modified: str | None = None
    index: int | None = None
    failures: int = 0
    _quick_unchanged: bool = field(default=False, repr=False)

    def __post_init__(self) -> None:
        if not self.interval_s > 0:
            raise ValueError(f"interval must be greater than 0: {self.interval_s!r}")
        if not self.long_poll_wait_s > 0:
            raise ValueError(f"long-poll wait must be greater than 0: {self.long_poll_wait_s!r}")
        if self.backoff_base_s <= 0:
            self.backoff_base_s = min(1.0, self.interval_s / 4)
        self.backoff_max_s = max(self.backoff_max_s, self.backoff_base_s)

    @property
    def long_polling(self) -> bool:
        return self.index is not None

    def plan(self) -> FetchPlan:
        """The next request: conditional headers, and the index/wait of a long poll."""
        headers: dict[str, str] = {}
        if self.etag is not None:
            headers["If-None-Match"] = self.etag
        if self.last_modified is not None:
            headers["If-Modified-Since"] = self.last_modified
        if self.index is None:
            return FetchPlan(headers, {}, self.timeout_s)
        wait = self.long_poll_wait_s
        # Consul adds up to wait/16 of its own jitter; leave room for it and the transfer.
        return FetchPlan(headers, {"index": str(self.index), "wait": f"{wait:g}s"},
                         wait + wait / 16 + self.timeout_s)

    def observe(self, status: int, headers: Mapping[str, str]) -> bool:
        """Record a successful answer (200 or 304); True when its body must be parsed."""
        self.failures = 0
        if status == 304:
            self._quick_unchanged = False
            return False
        self.etag = headers.get("etag", self.etag)
        self.last_modified = headers.get("last-modified", self.last_modified)
        raw = next((headers[h] for h in INDEX_HEADERS if h in headers), None)
        if raw is None:
            self.index = None
            return True
        try:
            index = int(raw)
        except ValueError:
            self.index = None
            return True
        previous, self.index = self.index, (index if index > 0 else 0)
        if previous is not None and index < previous:
            self.index = 0  # went backwards: start over (Consul's rule)
            return True
        changed = previous is None or index != previous
        self._quick_unchanged = not changed
        return changed

    def observe_failure(self) -> None:
        """Record a failed fetch (unreachable, timeout, bad status, oversized body)."""
        self.failures += 1
        self._quick_unchanged = False

    def delay(self, rng: Rng, elapsed_s: float = 0.0) -> float:
        """Seconds to wait before the next fetch. `elapsed_s` is how long the last one took
        (a long poll that returned quickly with no change is spaced by `min_gap_s`)."""
        if self.failures:
            ceiling = min(self.backoff_max_s,
                          self.backoff_base_s * 2.0 ** min(self.failures - 1, 30))
            return ceiling * (0.5 + 0.5 * rng.random())
        if self.index is not None:
            if self._quick_unchanged and elapsed_s < self.min_gap_s:
                return self.min_gap_s
            return 0.0
        return self.interval_s * (0.8 + 0.4 * rng.random())


@dataclass(slots=True)
class RefreshStats:
    """Counters of one refresher (read them for tests, status pages, metrics)."""

    fetches: int = 0
    not_modified: int = 0
    unchanged: int = 0
    applied: int = 0
    rejected: int = 0
    errors: int = 0
    #: iterations that raised something unexpected (logged once per distinct error)
    unexpected: int = 0
