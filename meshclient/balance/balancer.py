"""`LoadBalancer`: one service's endpoints, a picker chosen by `balancer.kind`, outlier
ejection, zone preference and panic mode, composed (Finagle's `Balancer with PeakEwma with
P2C with Updating`; grpc-go's picker generations).

- **Generations.** `update()` builds an immutable `_Generation` (states, pickers) and swaps
  it in one assignment; a concurrent `pick()` sees the old or the new one, never a mix.
  Surviving endpoints keep their `EndpointState` (EWMA, in-flight, ejection) by key.
- **Panic mode** (Envoy): when fewer than `balancer.panic_threshold` percent of the
  endpoints are available (not ejected, breaker not open, health check not failing), the
  picker ignores health and balances over all of them, so the few healthy ones are not
  overloaded into failing too. Announced once per change (log line + `PANIC` event).
- **Zones.** With a process zone (`MESHCLIENT_ZONE`) and endpoints in that zone, picks stay
  in the zone while at least `panic_threshold` percent of its endpoints (and at least one)
  are available; otherwise they spill over all zones. A pick in the zone that could only
  find an unavailable or already-tried endpoint falls back to all zones.
- **Counting.** The available counts are refreshed at most every `RECOUNT_S` (100 ms) or
  at once after an ejection, return or health-check change, so a pick is O(1) amortised:
  breaker transitions are seen within `RECOUNT_S`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .. import _events
from .._types import Clock, Rng
from ..discovery._base import Endpoint
from ..policy import BalancerPolicy, OutlierPolicy
from ._base import UNAVAILABLE, EndpointState
from ._pickers import ACCEPT, Picker, rank
from .load.peak_ewma import PeakEwma
from .outlier import OutlierDetector
from .p2c import P2C, ewma_cost, pending_cost
from .round_robin import RoundRobinPicker
from .weighted_random import RandomPicker

logger = logging.getLogger("meshclient")

#: Longest time between recounts of available endpoints (seconds).
RECOUNT_S = 0.1
_RECOUNT_NS = RECOUNT_S * 1e9


@dataclass(frozen=True, slots=True)
class _Generation:
    states: tuple[EndpointState, ...]
    picker: Picker
    local: tuple[EndpointState, ...]
    local_picker: Picker | None


class LoadBalancer:
    """The balancer of one service.

    **Parameters:** `service` — name, for events and logs; `balancer`, `outlier` — the
    policy sections; `zone` — this process's zone or None; `clock`, `rng` — injected;
    `carry` — endpoint states to keep (from the balancer this one replaces).

    Usage:
    ```python
    lb = LoadBalancer("users", BalancerPolicy(), OutlierPolicy(), clock=CLOCK, rng=RNG)
    lb.update(endpoints)
    state = lb.pick()
    ```
    """

    def __init__(self, service: str, balancer: BalancerPolicy, outlier: OutlierPolicy, *,
                 clock: Clock, rng: Rng, zone: str | None = None,
                 carry: Iterable[EndpointState] = ()) -> None:
        self.service = service
        self.policy = balancer
        self.outlier_policy = outlier
        self.zone = zone
        self.clock = clock
        self.rng = rng
        self.detector = OutlierDetector(outlier, service, self._mark_dirty)
        self._carry = {s.key: s for s in carry}
        self._gen = _Generation((), RoundRobinPicker(()), (), None)
        self._lock = threading.Lock()
        self._dirty = True
        self._counted_ns = 0
        self._panic = False
        self._use_local = False
        self._available = 0

    @property
    def kind(self) -> str:
        return self.policy.kind

    @property
    def panic(self) -> bool:
        return self._panic

    def _picker(self, states: tuple[EndpointState, ...], old: Picker | None) -> Picker:
        kind = self.policy.kind
        if kind == "round-robin":
            counter = old.counter if isinstance(old, RoundRobinPicker) else None
            return RoundRobinPicker(states, counter)
        if kind == "random":
            return RandomPicker(states, self.rng)
        return P2C(states, self.rng, pending_cost if kind == "p2c-least-request" else ewma_cost)

    def update(self, endpoints: tuple[Endpoint, ...]) -> None:
        """Replace the endpoint set (a full snapshot); survivors keep their history."""
        policy = self.policy
        now = self.clock.now_ns()
        with self._lock:
            old = self._carry or {s.key: s for s in self._gen.states}
            self._carry = {}
            states = []
            for endpoint in endpoints:
                state = old.get(endpoint.key)
                if state is None:
                    state = EndpointState(endpoint, PeakEwma(policy.decay, policy.default_rtt,
                                                              self._failure_penalty(), now),
                                          self.clock)
                else:
                    state.endpoint = endpoint  # weight/zone may change; history stays
                    state.ewma.configure(policy.decay, policy.default_rtt,
                                         self._failure_penalty())
                states.append(state)
            all_states = tuple(states)
            local = tuple(s for s in all_states if self.zone is not None
                          and s.endpoint.zone == self.zone)
            gen = self._gen
            self._gen = _Generation(
                all_states, self._picker(all_states, gen.picker), local,
                self._picker(local, gen.local_picker) if local else None)
            self.detector.track(all_states, self.outlier_policy)
            self._dirty = True

    def _failure_penalty(self) -> float:
        return self.policy.failure_penalty

    def _mark_dirty(self) -> None:
        self._dirty = True

    def _recount(self, now_ns: int) -> None:
        """Refresh panic and zone decisions (at most every RECOUNT_S unless dirty)."""
        if not self._dirty and now_ns - self._counted_ns < _RECOUNT_NS:
            return
        if not self._lock.acquire(blocking=False):
            return  # another thread is counting or updating; use the last decision
        try:
            self._dirty = False
            self._counted_ns = now_ns
            gen = self._gen
            threshold = self.policy.panic_threshold
            available = sum(1 for s in gen.states if s.rank() != UNAVAILABLE)
            local_ok = sum(1 for s in gen.local if s.rank() != UNAVAILABLE)
            self._use_local = local_ok > 0 and local_ok * 100 >= threshold * len(gen.local)
            total = len(gen.states)
            panic = total > 0 and available * 100 < threshold * total
            changed = panic != self._panic
            self._panic = panic
            self._available = available
        finally:
            self._lock.release()
        if changed:
            if panic:
                logger.warning("meshclient: %s panic mode: %d of %d endpoints available, "
                               "below %g%%; balancing over all", self.service, available,
                               total, threshold)
            else:
                logger.warning("meshclient: %s left panic mode: %d of %d endpoints available",
                               self.service, available, total)
            _events.emit(_events.PANIC, self.service, active=panic, healthy=available,
                         total=total)

    def pick(self, exclude: frozenset[str] = frozenset(),
             now_ns: int | None = None) -> EndpointState | None:
        """An endpoint for the next attempt (not one in `exclude` while another will do),
        or None when there are none; `now_ns`: the caller's clock reading, if it has one.
        Never blocks."""
        gen = self._gen
        if not gen.states:
            return None
        now = self.clock.now_ns() if now_ns is None else now_ns
        detector = self.detector
        if now >= detector.next_due_ns:  # an ejected endpoint may be due for its probe
            probe = detector.claim_probe(now, exclude)
            if probe is not None:
                return probe
        if self._dirty or now - self._counted_ns >= _RECOUNT_NS:  # `_recount`'s own test
            self._recount(now)
        panic = self._panic
        if self._use_local and gen.local_picker is not None:
            state = gen.local_picker.pick(now, exclude, False)
            if state is not None and rank(state, exclude, False) <= ACCEPT:
                return state
        return gen.picker.pick(now, exclude, panic)

    def states(self) -> tuple[EndpointState, ...]:
        return self._gen.states

    def fastest_ns(self) -> int | None:
        """The smallest latency estimate among endpoints with at least one sample (their
        peak-EWMA as of its last sample, not decayed), or None: whether a retry can still
        finish before the deadline (`request_flow`)."""
        estimates = [s.ewma.latest_s for s in self._gen.states if s.ewma.samples]
        return int(min(estimates) * 1e9) if estimates else None

    def snapshot(self) -> dict[str, Any]:
        now = self.clock.now_ns()
        self._recount(now)
        return {"kind": self.policy.kind, "panic": self._panic, "zone": self.zone,
                "available": self._available,
                "endpoints": [s.snapshot(now) for s in self._gen.states]}

    def __repr__(self) -> str:
        return (f"<LoadBalancer {self.service} kind={self.policy.kind} "
                f"endpoints={len(self._gen.states)} panic={self._panic}>")


def build_balancer(service: str, balancer: BalancerPolicy, outlier: OutlierPolicy, *,
                   clock: Clock, rng: Rng, zone: str | None = None,
                   carry: Iterable[EndpointState] = ()) -> LoadBalancer:
    """The balancer for a service's policy sections (the factory `_runtime` uses)."""
    return LoadBalancer(service, balancer, outlier, clock=clock, rng=rng, zone=zone,
                        carry=carry)
