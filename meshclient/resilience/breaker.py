"""One circuit breaker per endpoint: an adapter over pybreaker's state machine.

pybreaker's `CircuitBreaker.call` holds its lock for the whole wrapped call, which would
run concurrent requests through one breaker one at a time. So no I/O ever runs inside it:
the flow asks `admit()` before an attempt and reports with `record()` after it, and the
adapter feeds the result to pybreaker's state machine by calling `CircuitBreaker.call`
with an instant no-op (success) or a function raising a marker exception (failure). The
state, counters and `opened_at` live in pybreaker's storage: memory by default, or
`CircuitRedisStorage` when `breaker.storage` is a redis URL (processes share state), with
a local copy the breaker runs on while Redis does not answer (`breaker_storage.py`).
pybreaker is used through its public API only (the storage is built here and kept).
State changes reach `_events` through a pybreaker listener.

Differences from calling pybreaker directly, each on purpose:
- The open period is not fixed: it starts at `breaker.reset_min` and doubles each time the
  breaker opens again, with up to +50% jitter, never beyond `breaker.reset` (Linkerd's
  failure accrual: a jittered exponential backoff between probes, so a dead endpoint
  costs one request per period, a recovered one is back within about twice the time it
  was down, and breakers opened together do not probe together). The doubling starts
  again once the breaker has stayed closed for `reset`, so a flapping endpoint is kept
  out for longer and longer. `reset_min = reset` gives a fixed open period.
- Panic mode (the balancer has too few available endpoints and balances over all of
  them): `admit(panic=True)` takes the probe once the shortest open period
  (`reset_min`) has passed, whatever the backoff reached, so during a total outage every
  endpoint is probed about once per `reset_min` and the service is back within about
  `reset_min` of the endpoints recovering, not after the longest period; between probes
  the breakers still fail fast. A probe that failed in panic mode does not lengthen the
  next period (the whole service is down: not this endpoint's fault alone).
- An outlier probe (`admit(probe=True)`: the detector chose this endpoint for its one
  return probe) is the breaker's half-open probe too, whatever its open period says:
  the two mechanisms decide on the same request.
- Half-open admits exactly one probe at a time: the adapter tracks the probe in flight
  (per process); other requests are refused until it reports.
- pybreaker's open timer compares `datetime.now(UTC)` with `opened_at` (a wall clock, and
  Redis keeps it to the second). The adapter times the open period on the injected
  monotonic clock from the moment it saw the breaker open; a breaker opened by another
  process (Redis) is dated by converting its `opened_at` age once, on first sight.
- A result reported after the state moved on (an attempt admitted while closed finishing
  after the breaker opened) is ignored, except the probe's.
- A success while closed with no failures counted is not replayed: for pybreaker it would
  only reset a counter that is already 0. With its own memory storage the adapter
  remembers that state itself (`clean`: closed, no failure counted, set and cleared under
  its lock and only by it; callers on the hot path read it to skip `admit()` and a
  success's `record()`, which would change nothing), so the usual admission and success touch nothing of
  pybreaker's; with a shared storage (Redis: another process may trip the breaker) every
  call reads the storage.

`status()` is "closed", "half-open" or "open"; an open breaker whose reset time has passed
reports "half-open" (it will admit a probe), so balancers can rank it as degraded.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import pybreaker

from .. import _events
from .._clock import RNG
from .._types import Clock, Rng
from ..errors import MeshError
from ..policy import BreakerPolicy
from .breaker_storage import REDIS_TIMEOUT_S, FallbackStorage, call_time_left, health_for

__all__ = ["CLOSED", "HALF_OPEN", "NORMAL", "OPEN", "PROBE", "REDIS_TIMEOUT_S", "REFUSED",
           "Breaker", "BreakerError", "redis_storage"]

CLOSED = pybreaker.STATE_CLOSED
OPEN = pybreaker.STATE_OPEN
HALF_OPEN = pybreaker.STATE_HALF_OPEN

#: `admit()` results: refused, a normal attempt, the half-open probe.
REFUSED, NORMAL, PROBE = 0, 1, 2

#: Most random extra on an open period, as a share of it.
JITTER = 0.5


class BreakerError(MeshError):
    """The breaker's storage could not be set up (e.g. a malformed redis URL)."""


class _Failure(MeshError):
    """Marker fed to pybreaker to count one failure."""


def _fail() -> None:
    raise _Failure


def _ok() -> None:
    return None


class _Listener(pybreaker.CircuitBreakerListener):
    def __init__(self, service: str, endpoint: str) -> None:
        self.service = service
        self.endpoint = endpoint

    def state_change(self, cb: pybreaker.CircuitBreaker, old_state: Any,
                     new_state: Any) -> None:
        old = old_state.name if old_state is not None else None
        _events.emit(_events.BREAKER_STATE, self.service, endpoint=self.endpoint, old=old,
                     new=new_state.name)


def redis_storage(url: str, namespace: str) -> pybreaker.CircuitBreakerStorage:
    """State in Redis at `url` (pybreaker's `CircuitRedisStorage`), with a local copy the
    breaker runs on while Redis does not answer (see `breaker_storage.py`)."""
    try:
        health = health_for(url)
    except ValueError as exc:
        raise BreakerError(f"breaker.storage is not a usable redis URL: {url!r}: {exc}") from None
    return FallbackStorage(health, namespace)


class Breaker:
    """The breaker of one endpoint. Thread-safe: a small lock guards the adapter's own
    fields and the feed into pybreaker; it is never held across a request. Admission of a
    closed breaker takes no lock. With Redis storage, reading the state is one round trip
    to Redis, and a state change holds the lock across pybreaker's storage round trips."""

    def __init__(self, service: str, endpoint: str, policy: BreakerPolicy, clock: Clock,
                 wall: Callable[[], float] = time.time,
                 storage: pybreaker.CircuitBreakerStorage | None = None,
                 rng: Rng = RNG) -> None:
        self.service = service
        self.endpoint = endpoint
        self.policy = policy
        self._clock = clock
        self._wall = wall
        # A storage of its own, in memory, only this adapter changes: then closed with no
        # failure counted is known here without asking pybreaker (see the module doc).
        self._memory = storage is None and policy.storage is None
        if storage is None:
            storage = (pybreaker.CircuitMemoryStorage(CLOSED) if policy.storage is None
                       else redis_storage(policy.storage, f"meshclient:{service}:{endpoint}"))
        # kept here: the state, counter and opened_at are read through the storage's
        # public API (pybreaker's breaker keeps its own reference private)
        self._storage = storage
        # built from the local copy (a breaker is made while endpoints are published, maybe
        # on a request's path): the first admission is the first Redis round trip
        with call_time_left(None if self._memory else 0.0):
            self._cb = pybreaker.CircuitBreaker(
                fail_max=policy.failures, reset_timeout=policy.reset,
                state_storage=storage, name=f"{service}/{endpoint}",
                listeners=[_Listener(service, endpoint)], throw_new_error_on_trip=False)
        self._lock = threading.Lock()
        self._opened_ns: int | None = None  # when this process saw it open (monotonic)
        self._probing = False
        self._rng = rng
        self._panic_probe = False
        self._level = 0  # opens in a row (without `reset` closed in between)
        self._period_ns = self._open_period(now_ns=None)
        self._closed_ns: int | None = None  # when it last closed after being open
        self.fast_fails = 0
        #: Closed with no failure counted (own memory storage only): `admit()` would give
        #: NORMAL and a success's `record()` would change nothing. Set only under the lock
        #: and only here; read without it (one attribute) on the hot path.
        self.clean = self._memory

    def reconfigure(self, policy: BreakerPolicy) -> None:
        """Apply new thresholds in place (same storage), keeping the state."""
        with self._lock:
            self._cb.fail_max = policy.failures
            self._cb.reset_timeout = policy.reset
            self.policy = policy

    def _open_since(self, now_ns: int) -> int:
        """Caller holds the lock; the state is open. When it opened, on our clock."""
        if self._opened_ns is None:
            opened_at = self._storage.opened_at
            age_s = 0.0
            if opened_at is not None:
                age_s = max(0.0, self._wall() - opened_at.timestamp())
            self._opened_ns = now_ns - int(age_s * 1e9)
        return self._opened_ns

    def _open_period(self, now_ns: int | None) -> int:
        """Caller holds the lock (or constructs): the open period of an opening now, in ns
        (see the module doc); counts this opening."""
        policy = self.policy
        if (now_ns is not None and self._closed_ns is not None
                and now_ns - self._closed_ns >= policy.reset * 1e9):
            self._level = 0  # stayed closed long enough: start from `reset_min` again
        base = min(policy.reset_min, policy.reset) * (2.0 ** min(self._level, 32))
        if now_ns is not None:
            self._level += 1
        jittered = base * (1.0 + JITTER * self._rng.random()) if base < policy.reset else base
        return int(min(jittered, policy.reset) * 1e9)

    def _opened(self, now_ns: int) -> None:
        """Caller holds the lock; the breaker just opened (a trip or a failed probe)."""
        self._opened_ns = now_ns
        if self._panic_probe and self._level:
            self._level -= 1  # the same period again
        self._panic_probe = False
        self._period_ns = self._open_period(now_ns)

    def _reset_elapsed(self, now_ns: int, panic: bool = False) -> bool:
        period = self._period_ns
        if panic:
            period = min(period, int(min(self.policy.reset_min, self.policy.reset) * 1e9))
        return now_ns - self._open_since(now_ns) >= period

    def admit(self, time_left_s: float | None = None, *, probe: bool = False,
              panic: bool = False) -> int:
        """`NORMAL`, `PROBE` (the one half-open attempt) or `REFUSED`. `time_left_s`: how long the call has left, which
        shared (Redis) storage must not outlast; `probe`: the outlier detector's return
        probe (the breaker's probe too, if it is open); `panic`: the balancer is in panic
        mode (the shortest open period applies)."""
        if self.clean:  # the hot path: closed, nothing counted (memory storage)
            return NORMAL
        if time_left_s is not None and not self._memory:
            with call_time_left(time_left_s):
                return self._admit(probe, panic)
        return self._admit(probe, panic)

    def _admit(self, probe: bool, panic: bool) -> int:
        state = self._cb.current_state  # closed takes no lock either
        if state == CLOSED:
            if self._opened_ns is not None:
                self._opened_ns = None
            return NORMAL
        now = self._clock.now_ns()
        with self._lock:
            state = self._cb.current_state
            if state == CLOSED:
                return NORMAL
            if state == OPEN:
                if not probe and not self._reset_elapsed(now, panic):
                    self.fast_fails += 1
                    return REFUSED
                self._cb.half_open()
                self._probing = False
            if self._probing:
                self.fast_fails += 1
                return REFUSED
            self._probing = True
            self._panic_probe = panic
            return PROBE

    def record(self, ticket: int, ok: bool, time_left_s: float | None = None) -> None:
        """Report the result of an admitted attempt (`time_left_s` as for `admit`)."""
        if ticket == REFUSED:
            return
        if ok and ticket == NORMAL and self.clean:
            return  # closed and nothing counted: a success changes nothing (module doc)
        if time_left_s is not None and not self._memory:
            with call_time_left(time_left_s):
                self._record(ticket, ok)
            return
        self._record(ticket, ok)

    def _record(self, ticket: int, ok: bool) -> None:
        cb = self._cb
        with self._lock:
            self.clean = False
            state = cb.current_state
            if (ok and ticket == NORMAL and state == CLOSED and cb.state.name == CLOSED
                    and self._storage.counter == 0):
                # Fast path, safe because pybreaker's closed-state success only resets the
                # fail counter (already 0 in storage), and our listener ignores successes;
                # its cached state agrees with storage, so there is no change to announce.
                self._opened_ns = None
                self.clean = self._memory
                return
            if ticket == PROBE:
                self._probing = False
                if state != HALF_OPEN:
                    return
            elif state != CLOSED:
                return
            now = self._clock.now_ns()
            with contextlib.suppress(_Failure, pybreaker.CircuitBreakerError):
                self._cb.call(_ok if ok else _fail)
            state = self._cb.current_state
            if state == OPEN:
                self._opened(now)
            elif self._opened_ns is not None or ticket == PROBE:
                self._closed(now)
            self.clean = (self._memory and state == CLOSED
                           and self._storage.counter == 0)

    def _closed(self, now_ns: int) -> None:
        """Caller holds the lock; the breaker closed after being open."""
        self._opened_ns = None
        self._closed_ns = now_ns
        self.clean = self._memory and self._storage.counter == 0

    @property
    def probe_due(self) -> bool:
        """Half-open (or open past its period) with no probe out: the next admission is
        the probe. (Read after `status()` said "half-open".)"""
        return not self._probing

    def release(self, ticket: int) -> None:
        """An admitted attempt was abandoned without a result (a cancelled hedge)."""
        if ticket == PROBE:
            with self._lock:
                self._probing = False

    def status(self) -> str:
        """The state for ranking endpoints (read on every pick): from this process's copy
        of shared storage, never a Redis round trip; admission reads the shared state."""
        if not self._memory:
            with call_time_left(0.0):
                return self._status()
        return self._status()

    def _status(self) -> str:
        state = self._cb.current_state
        if state != OPEN:
            return str(state)
        now = self._clock.now_ns()
        with self._lock:
            return HALF_OPEN if self._reset_elapsed(now) else OPEN

    def __repr__(self) -> str:
        return f"<Breaker {self.service}/{self.endpoint} {self.status()}>"
