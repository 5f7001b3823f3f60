"""`LoadBalancer`: one service's endpoints, a picker chosen by `balancer.kind`, outlier
ejection, zone preference and panic mode, composed (Finagle's `Balancer with PeakEwma with
P2C with Updating`; grpc-go's picker generations).

- **Generations.** `update()` builds an immutable `Generation` (states, pickers) and swaps
  it in one assignment; a concurrent `pick()` sees the old or the new one, never a mix.
  Surviving endpoints keep their `EndpointState` (EWMA, in-flight, ejection) by key.
  When the unchanged endpoints are the same `Endpoint` objects as last time, the new
  generation is a patch of the old one (`_diff.py`): the work follows the change.
- **Panic mode** (Envoy): when fewer than `balancer.panic_threshold` percent of the
  endpoints are available (not ejected, breaker not open, health check not failing), the
  picker ignores health and balances over all of them, so the few healthy ones are not
  overloaded into failing too. Announced once per change (log line + `PANIC` event).
- **Zones.** With a process zone (`MESHCLIENT_ZONE`) and endpoints in that zone, picks stay
  in the zone while at least `panic_threshold` percent of its endpoints (and at least one)
  are available; otherwise they spill over all zones. A pick in the zone that could only
  find an unavailable or already-tried endpoint falls back to all zones.
- **Priority groups** (SRV priority, RFC 2782): picks use the lowest-numbered group with an
  available endpoint. A pick whose candidates in that group are all unavailable or already
  tried (a retry's `exclude`) falls through to the next group, as Envoy's
  `previous_priorities` retry plugin does, so a retry can leave a failing group before
  its endpoints are ejected.
- **Counting** (`_levels.py`): unavailable endpoints are counted per endpoint as they
  change: at once on an ejection, return or health-check change, and by a rolling sweep
  (`SWEEP_CHUNK` endpoints every `SWEEP_EVERY` picks, a pass starting at most every
  `RECOUNT_S`; up to `SMALL_FLEET` endpoints, the whole set at once) for breaker
  transitions. A pick never recounts the whole set, at any fleet size.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from .. import _events
from .._types import Clock, Rng
from ..discovery.endpoint import Endpoint
from ..policy import BalancerPolicy, OutlierPolicy
from ._base import UNAVAILABLE, EndpointState
from ._diff import next_picker, patch, rebuild, unchanged_ends
from ._levels import SMALL_FLEET, SWEEP_CHUNK, SWEEP_EVERY, Generation
from ._pickers import ACCEPT, Picker, rank
from .load.peak_ewma import PeakEwma
from .outlier import OutlierDetector

logger = logging.getLogger("meshclient")

#: Longest time between the starts of two sweeps over the endpoints (seconds).
RECOUNT_S = 0.1
_RECOUNT_NS = int(RECOUNT_S * 1e9)


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
        self.detector = OutlierDetector(outlier, service, self._touch, rng,
                                        lambda: self._gen.panic)
        self._carry = {s.key: s for s in carry}
        self._gen = Generation((), zone)
        #: The pickers of the current generation, and of the one being built, by
        #: (priority, local): a new picker continues from the one it replaces.
        self._counters: dict[tuple[int, bool], Picker] = {}
        self._building: dict[tuple[int, bool], Picker] = {}
        self._lock = threading.Lock()
        self._sweep_due_ns = 0
        self._sweep_wait = 0  # picks until the next sweep step (large fleets)
        self._announced_panic = False
        self._announce_lock = threading.Lock()
        self._pending: list[EndpointState] = []  # touched endpoints, counted by the next pick
        #: Mirror copies to this service dropped because a sender's queue was full
        #: (`transport/_mirror.py`); shown in the snapshot once there are any.
        self.mirror_dropped = 0

    @property
    def kind(self) -> str:
        return self.policy.kind

    @property
    def panic(self) -> bool:
        return self._gen.panic

    def _picker(self, states: tuple[EndpointState, ...], weights: list[int], priority: int,
                local: bool) -> Picker:
        """The picker of one level (or its zone-local part), built on the one it replaces."""
        picker = next_picker(self.policy.kind, self.rng, self._counters.get((priority, local)),
                             states, weights)
        self._building[(priority, local)] = picker
        return picker

    def update(self, endpoints: tuple[Endpoint, ...]) -> None:
        """Replace the endpoint set (a full snapshot, every priority group); survivors
        keep their history. A weight below 1 raises `ValueError` naming the endpoint, and
        the balancer keeps its current set. Endpoints that are the same objects as in the
        previous set cost next to nothing (`_diff.py`)."""
        policy = self.policy
        now = self.clock.now_ns()
        params = (policy.decay, policy.default_rtt, policy.failure_penalty)
        endpoints = tuple(endpoints)  # (a list could change in place after the update)
        with self._lock:
            gen = self._gen
            old = gen.endpoints
            ends = (0, 0) if old is None else unchanged_ends(old, endpoints)
            if old is not None and ends[0] == len(old) == len(endpoints) and not self._carry:
                self._sweep_due_ns = 0  # the very same set: only re-read the breakers soon
                return
            carried = self._carry

            def make(n: int) -> tuple[EndpointState, bool]:  # a state new to this balancer
                endpoint = endpoints[n]
                state = carried.pop(endpoint.key, None) if carried else None
                if state is None:
                    return EndpointState(endpoint, PeakEwma(*params, now), self.clock), False
                state.endpoint = endpoint  # from a replaced balancer
                state.ewma.configure(*params)
                return state, state.rank() == UNAVAILABLE

            self._building = {}
            patched = (patch(gen, endpoints, ends, self.zone, make, self._picker)
                       or rebuild(gen, endpoints, self.zone, make, self._picker))
            self._counters, self._building = self._building, {}
            self._carry = {}
            gen, added = patched
            gen.decide(policy.panic_threshold)
            self._gen = gen
            self.detector.track(gen.states, self.outlier_policy, added, gen.index)
            self._sweep_due_ns = 0  # breakers attached after an update: re-read them soon
        self._announce(gen)

    def _touch(self, state: EndpointState) -> None:
        """One endpoint was ejected, returned or changed its health-check verdict: counted
        by the next pick (O(changes)), so a burst of changes makes one decision. (A touch
        that races with a drain may be missed; the sweep re-reads every endpoint.)"""
        self._pending.append(state)

    def _drain(self) -> None:
        self._update(self._touch_pending)

    def _touch_pending(self, gen: Generation) -> bool:
        pending, self._pending = self._pending, []
        changed = False
        for state in pending:
            changed = gen.touch(state) or changed
        return changed

    def _sweep(self, now_ns: int) -> None:
        """One step of the rolling re-read (breaker transitions); in a large fleet, one step
        every SWEEP_EVERY picks (`pick` counts `_sweep_wait` down; a racy count is
        harmless)."""
        large = len(self._gen.states) > SMALL_FLEET
        self._sweep_wait = SWEEP_EVERY if large else 0

        def step(gen: Generation) -> bool:
            changed, done = gen.sweep(SWEEP_CHUNK if large else len(gen.states))
            if done:
                self._sweep_due_ns = now_ns + _RECOUNT_NS
            return changed

        self._update(step)

    def _update(self, step: Callable[[Generation], bool]) -> None:
        """`step` on the current generation under the lock; when it changed something,
        panic mode is decided again and announced. Skipped when another thread holds the
        lock (it is counting or updating; the next pick catches up)."""
        if not self._lock.acquire(blocking=False):
            return
        try:
            gen = self._gen
            changed = step(gen)
            if changed:
                gen.decide(self.policy.panic_threshold)
        finally:
            self._lock.release()
        if changed:
            self._announce(gen)

    def _announce(self, gen: Generation) -> None:
        panic = gen.panic
        with self._announce_lock:  # one line and one event per change, whoever sees it
            if panic == self._announced_panic or gen is not self._gen:
                return
            self._announced_panic = panic
        level = gen.levels[gen.active] if gen.levels else None
        available = level.available if level is not None else 0
        total = len(level.states) if level is not None else 0
        threshold = self.policy.panic_threshold
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
        if self._pending:
            self._drain()
        if now >= self._sweep_due_ns:
            wait = self._sweep_wait - 1  # picks until the next step (large fleets)
            if wait > 0:
                self._sweep_wait = wait
            else:
                self._sweep(now)
        levels = gen.levels
        active = gen.active
        level = levels[active]
        if gen.use_local and level.local_picker is not None:
            state = level.local_picker.pick(now, exclude, False)
            if state is not None and rank(state, exclude, False) <= ACCEPT:
                return state
        panic = gen.panic
        state = level.picker.pick(now, exclude, panic)
        if len(levels) == 1 or (state is not None and rank(state, exclude, panic) <= ACCEPT):
            return state
        for lower in levels[active + 1:]:  # fall through to the next priority group
            other = lower.picker.pick(now, exclude, False)
            if other is not None and rank(other, exclude, False) <= ACCEPT:
                return other
        return state

    def states(self) -> tuple[EndpointState, ...]:
        return self._gen.states

    def fastest_ns(self) -> int | None:
        """The smallest latency estimate among endpoints with at least one sample (their
        peak-EWMA as of its last sample, not decayed), or None: whether a retry can still
        finish before the deadline (`request_flow`)."""
        gen = self._gen
        if len(gen.states) > SMALL_FLEET:  # the last full sweep's answer: O(1)
            return gen.fastest_ns
        estimates = [s.ewma.latest_s for s in gen.states if s.ewma.samples]
        return int(min(estimates) * 1e9) if estimates else None

    def snapshot(self) -> dict[str, Any]:
        """For status pages (O(n): never on the request path)."""
        now = self.clock.now_ns()
        with self._lock:
            gen = self._gen
            self._pending = []
            for state in gen.states:
                gen.touch(state)
            gen.decide(self.policy.panic_threshold)
        self._announce(gen)
        level = gen.levels[gen.active] if gen.levels else None
        extra = {"mirror_dropped": self.mirror_dropped} if self.mirror_dropped else {}
        return {"kind": self.policy.kind, "panic": gen.panic, "zone": self.zone,
                "available": gen.available,
                "priority": level.priority if level is not None else None, **extra,
                "endpoints": [s.snapshot(now) for s in gen.states]}

    def __repr__(self) -> str:
        return (f"<LoadBalancer {self.service} kind={self.policy.kind} "
                f"endpoints={len(self._gen.states)} panic={self._gen.panic}>")


def build_balancer(service: str, balancer: BalancerPolicy, outlier: OutlierPolicy, *,
                   clock: Clock, rng: Rng, zone: str | None = None,
                   carry: Iterable[EndpointState] = ()) -> LoadBalancer:
    """The balancer for a service's policy sections (the factory `_runtime` uses)."""
    return LoadBalancer(service, balancer, outlier, clock=clock, rng=rng, zone=zone,
                        carry=carry)
