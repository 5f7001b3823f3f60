"""Per-endpoint live state and the balancer interface.

`EndpointState` is the history that must survive endpoint-set updates (keyed by
`Endpoint.key`, as Finagle's `update()` keeps its nodes): the peak-EWMA estimate, the
in-flight count, counters, and the outlier-ejection state. Pickers are rebuilt around it.

Health, from the picker's point of view (`rank()`, Finagle's status order):

| rank | meaning | when |
|---|---|---|
| 0 | healthy | nothing says otherwise |
| -1 | probe due | the breaker is half-open and its one probe not yet sent |
| 1 | degraded | the breaker is half-open, its probe out |
| 2 | unavailable | ejected (or awaiting its return probe), breaker open, or the active health check failed |
"""

from __future__ import annotations

import threading
from asyncio import _get_running_loop
from threading import get_ident
from typing import TYPE_CHECKING, Any, Protocol

from .._clock import CLOCK
from .._stall import PROCESS, StallRecord
from .._types import Clock
from ..discovery.endpoint import Endpoint
from .load.peak_ewma import PeakEwma

if TYPE_CHECKING:  # the resilience layer's adapter; balance itself only reads status()
    from ..resilience.breaker import Breaker

HEALTHY, DEGRADED, UNAVAILABLE = 0, 1, 2

#: Rank of an endpoint whose breaker is ready for its half-open probe: it wins any pair,
#: so the probe is sent by the next pick that draws it (as the outlier detector hands out
#: its probes), not never because a healthy endpoint always beats a degraded one.
PROBE_DUE = -1

#: Ejection phases (`EndpointState.phase`).
IN_SERVICE, EJECTED, PROBING = 0, 1, 2


class BreakerStatus(Protocol):
    """What the balancer reads from an endpoint's circuit breaker (set by resilience)."""

    def status(self) -> str:
        """One of "closed", "half-open" or "open"."""
        ...


class _Owner(Protocol):
    """The outlier detector an endpoint reports to (see `outlier.py`)."""

    def failure_streak(self, state: EndpointState, streak: int, now_ns: int) -> None: ...

    def probe_result(self, state: EndpointState, ok: bool, now_ns: int) -> None: ...

    def health_changed(self, state: EndpointState) -> None: ...


class EndpointState:
    """Live counters of one endpoint. Thread-safe: counters change under a small lock that
    is never held across I/O; readers (pickers, snapshots) read single attributes.

    Attributes set from outside the balancer:
    - `breaker`: a `BreakerStatus` (set by the resilience layer), or None.
    - `set_health_check(ok)`: the active health checker's verdict (None: not checked).
    """

    __slots__ = ("_lock", "_now_ns", "_owner", "breaker", "consecutive_failures", "ejected_at_ns",
                 "ejected_until_ns",
                 "endpoint", "ewma", "failures", "health_check", "in_flight", "multiplier",
                 "phase", "probe_claimed_ns", "probe_pending", "probe_start_ns",
                 "quiet_since_ns", "requests", "returned_ns", "stalls", "times_ejected")

    def __init__(self, endpoint: Endpoint, ewma: PeakEwma | None = None,
                 clock: Clock = CLOCK) -> None:
        self.endpoint = endpoint
        self._now_ns = clock.now_ns  # for `end(start, None, ok)`: a body closing now
        #: The client's own stalls on that clock (`_stall.py`), not charged to the endpoint.
        self.stalls: StallRecord | None = getattr(clock, "stalls", None)
        self.in_flight = 0
        self.requests = 0
        self.failures = 0
        self.ewma = ewma if ewma is not None else PeakEwma()
        self.breaker: Breaker | None = None  # only status() is read here (BreakerStatus)
        self.health_check: bool | None = None
        self.consecutive_failures = 0
        self.phase = IN_SERVICE
        self.ejected_until_ns = 0
        self.ejected_at_ns = 0
        self.times_ejected = 0
        self.multiplier = 0
        self.returned_ns: int | None = None
        self.probe_pending = False
        self.probe_start_ns: int | None = None
        self.probe_claimed_ns = 0
        self.quiet_since_ns = 0
        self._owner: _Owner | None = None
        self._lock = threading.Lock()

    @property
    def key(self) -> str:
        return self.endpoint.key

    def begin(self, now_ns: int) -> int:
        """An attempt starts; returns the start time to hand back to `end`."""
        with self._lock:
            if self.in_flight == 0:
                self.quiet_since_ns = now_ns
            self.in_flight += 1
            self.requests += 1
            if self.probe_pending:
                self.probe_pending = False
                self.probe_start_ns = now_ns
        return now_ns

    def end(self, start_ns: int, now_ns: int | None, ok: bool,
            error: BaseException | None = None) -> None:
        """The attempt finished: body closed or read (`ok`: not a 5xx), or it failed
        (`ok=False`: connect failure, reset, timeout or 5xx). `now_ns` None: now, by the
        balancer's clock. As a returned response's `on_close` (bound with `partial(state.end,
        start, None, ok)`), it is called when the body is closed, with the error that
        failed reading it, if any (then not ok)."""
        if now_ns is None:
            now_ns = self._now_ns()
        if error is not None:
            ok = False
        streak = 0
        elapsed = now_ns - start_ns
        stalls = self.stalls
        if stalls is not None and (stalls.due or stalls.events):  # a client stall in it
            # an event loop's monitor is this thread's only while a loop runs here (a
            # closed loop's stays behind): without one, the process's monitor thread
            monitor = get_ident() if _get_running_loop() is not None else PROCESS
            elapsed -= stalls.overlap_ns(start_ns, now_ns, monitor)
        with self._lock:
            self.in_flight -= 1
            self.quiet_since_ns = now_ns
            if ok and self.phase == IN_SERVICE:  # the usual end: no streak, no probe
                self.ewma.observe((elapsed if elapsed > 0 else 0) / 1e9, now_ns, True)
                self.consecutive_failures = 0
                return
            if not ok:
                self.failures += 1
            probe = self.phase == PROBING and start_ns == self.probe_start_ns
            # an ejected endpoint answering a request sent after its ejection (panic mode
            # balances over all endpoints) is back, as if it had been the probe
            back = ok and self.phase != IN_SERVICE and (probe or start_ns >= self.ejected_at_ns)
            if back:  # its history is from before it failed: this answer replaces it
                self.ewma.restart()
            self.ewma.observe((elapsed if elapsed > 0 else 0) / 1e9, now_ns, ok)
            if probe:
                self.probe_start_ns = None
            elif self.phase == IN_SERVICE:
                self.consecutive_failures = 0 if ok else self.consecutive_failures + 1
                streak = self.consecutive_failures
        owner = self._owner
        if owner is None:
            return
        if probe or back:
            owner.probe_result(self, ok, now_ns)
        elif streak:
            owner.failure_streak(self, streak, now_ns)

    def restart_estimate(self) -> None:
        """Forget the latency history (an endpoint back from an open breaker): the next
        answer replaces it, and until one is in flight the endpoint costs nothing."""
        with self._lock:
            self.ewma.restart()

    def cancel(self, start_ns: int) -> None:
        """An attempt begun at `start_ns` never reached the endpoint (the caller's own
        connection pool timed out): undo `begin` without a latency sample or a verdict."""
        with self._lock:
            self.in_flight -= 1
            self.requests -= 1
            if self.phase == PROBING and start_ns == self.probe_start_ns:
                self.probe_start_ns = None
                self.probe_pending = True  # the probe is still owed

    def set_health_check(self, ok: bool | None) -> None:
        """Active health checking's verdict: False makes the endpoint unavailable (ranked
        like an open breaker and counted as unhealthy for panic mode); None clears it."""
        old, self.health_check = self.health_check, ok
        if (old is False) == (ok is False):  # None <-> True does not change the rank
            return
        owner = self._owner
        if owner is not None:
            owner.health_changed(self)

    def rank(self) -> int:
        """HEALTHY, DEGRADED or UNAVAILABLE (see the module docstring)."""
        if self.phase != IN_SERVICE or self.health_check is False:
            return UNAVAILABLE
        breaker = self.breaker
        if breaker is not None and not getattr(breaker, "clean", False):  # clean: closed
            status = breaker.status()
            if status == "open":
                return UNAVAILABLE
            if status == "half-open":
                return PROBE_DUE if getattr(breaker, "probe_due", False) else DEGRADED
        return HEALTHY

    def health(self) -> str:
        """One word for snapshots: healthy, degraded, ejected, probing, breaker-open,
        failing-health-check."""
        if self.phase == EJECTED:
            return "ejected"
        if self.phase == PROBING:
            return "probing"
        if self.health_check is False:
            return "failing-health-check"
        rank = self.rank()
        if rank == UNAVAILABLE:
            return "breaker-open"
        return "degraded" if rank == DEGRADED else "healthy"

    def snapshot(self, now_ns: int) -> dict[str, Any]:
        until = None
        if self.phase == EJECTED:
            until = max(self.ejected_until_ns - now_ns, 0) / 1e9
        return {"endpoint": self.endpoint.key, "zone": self.endpoint.zone,
                "weight": self.endpoint.weight, "in_flight": self.in_flight,
                "requests": self.requests, "failures": self.failures,
                "estimate_ms": round(self.ewma.estimate(now_ns) * 1000, 3),
                "ejected": self.phase != IN_SERVICE, "ejected_until_s": until,
                "times_ejected": self.times_ejected, "health": self.health()}

    def __repr__(self) -> str:
        return (f"<EndpointState {self.endpoint.key} in_flight={self.in_flight} "
                f"requests={self.requests} failures={self.failures} "
                f"health={self.health()}>")
