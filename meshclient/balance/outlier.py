"""Outlier ejection: stop sending to an endpoint that keeps failing (Envoy's consecutive-5xx
detector), and let exactly one probe decide when it comes back.

Rules (policy `outlier`):
- `consecutive_failures` failed attempts in a row (connect failure, reset, timeout or 5xx;
  `EndpointState.end(ok=False)`) eject the endpoint; 0 disables ejection.
- Never more than `max_ejected_percent` of the endpoints are ejected at once: an ejection
  that would exceed it is skipped (so a single endpoint is never ejected — there is nowhere
  else to go). Endpoints waiting for their probe still count as ejected.
- The ejection lasts, where n counts this endpoint's ejections in a row, capped at
  `max_ejection`: with `ejection = "backoff"` (the default; Linkerd's failure accrual)
  `base_ejection * 2^(n-1)` plus up to 50% jitter, so an endpoint down for a time T is
  probed again within about 2T * 1.5 of failing and endpoints ejected together are not
  probed together; with `ejection = "linear"` `base_ejection * n` (Envoy's). n restarts
  at 1 once the endpoint has stayed in service for `max_ejection` (Envoy lowers its
  multiplier while a host stays healthy; this is the simple form), so a flapping
  endpoint is kept out longer each time.
- When the time is up the endpoint does not rejoin at once. The next pick that may use it
  takes it as a **probe** (one request; other picks still skip it). If that request
  succeeds the endpoint returns (`RETURNED`); if it fails the endpoint is ejected again for
  longer. A probe that never starts or ends within `base_ejection` is claimed again.
  This is a breaker's half-open probe rather than Envoy's unconditional return: a backend
  that is still dead costs one request, not `consecutive_failures` of them. (The flow
  makes the probe the endpoint's breaker probe too: `Breaker.admit(probe=True)`.)
- A probe that fails in panic mode ejects for the same time again, not longer (the whole
  service is down: not this endpoint's fault alone), so it is probed at the same pace
  until the service recovers.
- In panic mode the balancer sends to ejected endpoints too; a success of a request sent
  after the ejection returns the endpoint as a probe's would (`EndpointState.end`).
- An endpoint that returns starts its latency estimate afresh: the probe's time replaces
  the history of its failures.

Thread-safe: one lock per detector, never held across I/O; events are emitted after it is
released. The fast path (`claim_probe` with nothing due) reads one integer; claiming a
probe is O(log ejected) (a heap of due times, pruned lazily), so a fleet with hundreds of
ejected endpoints coming due does no O(n) work on the request path.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

from .. import _events
from .._clock import RNG
from .._types import Rng
from ..policy import OutlierPolicy
from ._base import EJECTED, IN_SERVICE, PROBING, EndpointState

logger = logging.getLogger("meshclient")

_NEVER = 1 << 62

#: Most random extra on a `backoff` ejection, as a share of it.
JITTER = 0.5


class OutlierDetector:
    """Consecutive-failure ejection for one service's endpoints.

    **Parameters:** `policy` — the `outlier` section; `service` — for events and logs;
    `on_change(state)` — called (outside the lock) when an endpoint leaves or rejoins, or
    its health-check verdict changes.
    """

    def __init__(self, policy: OutlierPolicy, service: str,
                 on_change: Callable[[EndpointState], None] = lambda state: None,
                 rng: Rng = RNG, panic: Callable[[], bool] = lambda: False) -> None:
        self.policy = policy
        self._panic = panic
        self._rng = rng
        self.service = service
        self._on_change = on_change
        self._lock = threading.Lock()
        self._total = 0
        self._ejected: dict[str, EndpointState] = {}
        #: (due_ns, seq, state) for every ejected endpoint's next probe; an entry whose
        #: time no longer matches its endpoint's is stale and dropped when it surfaces.
        self._due: list[tuple[int, int, EndpointState]] = []
        self._seq = itertools.count()
        #: When the next ejected endpoint may be probed (`claim_probe` is idle before it;
        #: the balancer reads it to skip that call).
        self.next_due_ns = _NEVER

    @property
    def ejected_count(self) -> int:
        return len(self._ejected)

    def track(self, states: tuple[EndpointState, ...], policy: OutlierPolicy,
              added: list[EndpointState] | None = None,
              index: dict[str, int] | None = None) -> None:
        """Adopt a new endpoint set (survivors keep their ejection state). With `added`
        (the states new to this detector) and `index` (key -> position in `states`), the
        work is O(added + ejected), not O(n): survivors are already tracked, and their
        entries in the heap of due times stay (those of endpoints that left go stale and
        are dropped when they come due); the heap is rebuilt only for a new
        `base_ejection` (a probe's grace) or a full adoption."""
        with self._lock:
            grace = int(policy.base_ejection * 1e9)
            rebuild = added is None or index is None or grace != self._grace_ns()
            self.policy = policy
            self._total = len(states)
            if added is None or index is None:
                added = list(states)
                self._ejected = {}
            else:
                self._ejected = {k: s for k, s in self._ejected.items()
                                 if (i := index.get(k)) is not None and states[i] is s}
            seq = self._seq
            for state in added:
                state._owner = self
                if state.phase != IN_SERVICE:
                    self._ejected[state.key] = state
                    if not rebuild:
                        heapq.heappush(self._due, (self._due_of(state, grace), next(seq), state))
            if rebuild:
                self._due = [(self._due_of(s, grace), next(seq), s)
                             for s in self._ejected.values()]
                heapq.heapify(self._due)
            self._next()

    def _grace_ns(self) -> int:
        return int(self.policy.base_ejection * 1e9)

    @staticmethod
    def _due_of(state: EndpointState, grace_ns: int) -> int:
        """When an ejected endpoint may be probed (again)."""
        return state.ejected_until_ns if state.phase == EJECTED else (
            state.probe_claimed_ns + grace_ns)

    def _schedule(self, state: EndpointState, at_ns: int) -> None:
        """Called with the lock held."""
        heapq.heappush(self._due, (at_ns, next(self._seq), state))
        self._next()

    def _next(self) -> None:
        due = self._due
        self.next_due_ns = due[0][0] if due else _NEVER

    def health_changed(self, state: EndpointState) -> None:
        self._on_change(state)

    def failure_streak(self, state: EndpointState, streak: int, now_ns: int) -> None:
        threshold = self.policy.consecutive_failures
        if threshold == 0 or streak < threshold:
            return
        with self._lock:
            if state.phase != IN_SERVICE or self._ejected.get(state.key) is not None:
                return
            if (len(self._ejected) + 1) * 100 > self.policy.max_ejected_percent * self._total:
                return
            until_s = self._eject(state, now_ns)
        self._announce_ejection(state, until_s, f"{streak} consecutive failures")

    def _eject(self, state: EndpointState, now_ns: int) -> float:
        """Called with the lock held."""
        policy = self.policy
        if (state.returned_ns is not None
                and now_ns - state.returned_ns >= policy.max_ejection * 1e9):
            state.multiplier = 0
        if not (state.multiplier and state.phase == PROBING and self._panic()):
            state.multiplier += 1  # (a probe failing in panic mode: the same again)
        state.times_ejected += 1
        n = state.multiplier
        if policy.ejection == "linear":
            until_s = min(policy.base_ejection * n, policy.max_ejection)
        else:
            base = policy.base_ejection * 2.0 ** min(n - 1, 32)
            until_s = min(base * (1.0 + JITTER * self._rng.random()), policy.max_ejection)
        state.ejected_until_ns = now_ns + int(until_s * 1e9)
        state.ejected_at_ns = now_ns
        state.phase = EJECTED
        state.probe_pending = False
        state.probe_start_ns = None
        state.consecutive_failures = 0
        self._ejected[state.key] = state
        self._schedule(state, state.ejected_until_ns)
        return until_s

    def _announce_ejection(self, state: EndpointState, until_s: float, why: str) -> None:
        logger.warning("meshclient: %s endpoint %s ejected for %.3gs (%s; ejection %d)",
                       self.service, state.key, until_s, why, state.times_ejected)
        _events.emit(_events.EJECTED, self.service, endpoint=state.key, until_s=until_s)
        self._on_change(state)

    def claim_probe(self, now_ns: int, exclude: frozenset[str]) -> EndpointState | None:
        """An ejected endpoint whose time is up, claimed for its single probe, or None."""
        if now_ns < self.next_due_ns:
            return None
        grace = self._grace_ns()
        with self._lock:
            claimed = None
            heap, ejected = self._due, self._ejected
            skipped = []  # due, but a retry already tried it (at most len(exclude))
            while heap and heap[0][0] <= now_ns:
                entry = heapq.heappop(heap)
                at, _, state = entry
                if (ejected.get(state.key) is not state or state.phase == IN_SERVICE
                        or self._due_of(state, grace) != at):
                    continue  # stale: returned, re-ejected or re-claimed since
                if state.key in exclude:
                    skipped.append(entry)
                    continue
                state.phase = PROBING
                state.probe_claimed_ns = now_ns
                state.probe_pending = True
                claimed = state
                heapq.heappush(heap, (now_ns + grace, next(self._seq), state))
                break
            for entry in skipped:
                heapq.heappush(heap, entry)
            self._next()
        if claimed is not None:
            logger.info("meshclient: %s endpoint %s probing after ejection", self.service,
                        claimed.key)
        return claimed

    def probe_result(self, state: EndpointState, ok: bool, now_ns: int) -> None:
        """The probe's result, or (ok only) a success of a request sent to the endpoint
        after its ejection (panic mode)."""
        with self._lock:
            if state.phase == IN_SERVICE or (not ok and state.phase != PROBING):
                return
            if ok:
                state.phase = IN_SERVICE
                state.returned_ns = now_ns
                state.consecutive_failures = 0
                self._ejected.pop(state.key, None)  # its heap entry goes stale
                until_s = None
            else:
                until_s = self._eject(state, now_ns)
        if until_s is None:
            logger.warning("meshclient: %s endpoint %s returned (it answered)",
                           self.service, state.key)
            _events.emit(_events.RETURNED, self.service, endpoint=state.key)
            self._on_change(state)
        else:
            self._announce_ejection(state, until_s, "probe failed")

    def snapshot(self) -> dict[str, Any]:
        return {"ejected": sorted(self._ejected), "total": self._total}

    def __repr__(self) -> str:
        return f"<OutlierDetector {self.service} ejected={sorted(self._ejected)}>"
