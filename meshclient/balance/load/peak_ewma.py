"""Peak-EWMA: a moving average of round-trip time that jumps up at once on a slower sample
and comes down only gradually (Finagle's `PeakEwma`, tower's `load::PeakEwma`).

Formulas (times in nanoseconds, `tau` = `balancer.decay`):

- **observe(rtt, now)**: `w = exp(-(now - stamp) / tau)`; if `rtt > estimate` the estimate
  becomes `rtt` (the peak); otherwise `estimate = estimate * w + rtt * (1 - w)`. The weight
  depends on the time since the last sample because samples arrive unevenly (Eckner,
  "Algorithms for unevenly spaced time series"). `stamp = now`.
- **estimate(now)**: `estimate * exp(-(now - stamp) / tau)` — decays towards 0 on read
  without writing, so an endpoint that fell out of favour is retried eventually. The prior
  decays the same way from the endpoint's creation (as in tower), so a new endpoint among
  endpoints faster than `default_rtt` is still tried within a few `tau`. The first sample
  replaces the prior.
- **cost(now, pending)**: `estimate(now) * (pending + 1)`. Before the first sample the
  cost is 0 (Finagle's `PeakEwma`: an untried endpoint is the cheapest, so a new or
  returning endpoint gets a request as soon as a pick draws it, not after its prior has
  decayed below its peers' estimates), and while that first request is still in flight
  it is `PENALTY + pending` (Finagle), so an endpoint with no history is probed once
  rather than flooded. `restart()` forgets the history (an endpoint back from ejection
  or an open breaker).
- **stall bound** (our addition): while requests are in flight and none has finished
  since `quiet_since` (the later of the first of them starting and the last completion),
  one of them has been waiting at least `now - quiet_since`, so the estimate used for the
  cost is at least that. An endpoint that suddenly stops answering looks expensive after
  one healthy round-trip's worth of silence, not after its first slow answer arrives.
- **failures** (Linkerd's warning: a fast 5xx looks cheap): a failed attempt observes
  `max(rtt, min(failure_penalty * max(estimate(now), rtt), tau))` (the prior instead of
  the estimate before any sample), so each failure at least multiplies the estimate by
  `failure_penalty`, bounded by the decay time. Relative to the endpoint's own estimate,
  not to `default_rtt`: one failure among 1 ms endpoints costs a few milliseconds of
  estimate, which decays within seconds, not 30 s. A success after a failure, when the
  endpoint has had no sample for `STALE * tau`, replaces the estimate (it was avoided
  because of the failure; its answer now is better evidence than its history).
- **probe after a failure** (a breaker's half-open step with Linkerd's failure-accrual
  backoff, at the balancer): an endpoint whose last sample was a failure costs 0 once
  `STALE * tau * 2^(k-1)` (at most `tau`) has passed since it, while nothing is in
  flight to it, so the next pick that draws it sends it one request; k counts its
  failures, each less than `tau` after the previous one. A success replaces the estimate
  (above); a failure raises it again and doubles the wait. An endpoint that failed a few
  times and recovered is tried again within seconds; one that keeps failing (a dead or
  flapping one) waits up to `tau` between probes, and five failures in a row eject it
  (`outlier.py`). Without this step an endpoint avoided for its failures before it
  reached the ejection threshold was tried again only once its penalised estimate had
  decayed below its peers' (ln(penalty^k) * tau: 20 s after three failures with the
  defaults), however soon it recovered.

The monotonic guard (Finagle): a clock reading earlier than `stamp` counts as no time.
Not thread-safe on its own: `EndpointState` calls it under its lock.
"""

from __future__ import annotations

import math

#: Cost of an endpoint with no history while its first request is in flight (Finagle's
#: `Long.MaxValue >> 16`, in seconds here: larger than any real estimate).
PENALTY = float(1 << 47)

#: A success after a failure, with no sample for this share of tau (1 s with the default
#: 10 s), replaces the estimate: the endpoint was avoided because it failed, so its
#: history is older than the answer (an endpoint failing often is sampled often).
STALE = 0.1

#: Default factor a failure multiplies the estimate by (`balancer.failure_penalty`).
DEFAULT_FAILURE_PENALTY = 2.0


class PeakEwma:
    """Peak-sensitive EWMA of round-trip time, in seconds.

    **Parameters:** `decay_s` — time constant tau; `default_rtt_s` — the prior;
    `failure_penalty` — factor a failed attempt raises the estimate by.

    Usage:
    ```python
    ewma = PeakEwma(decay_s=10.0, default_rtt_s=0.03)
    ewma.observe(0.012, now_ns)
    ewma.cost(now_ns, pending=2)
    ```
    """

    __slots__ = ("_failed", "_failed_ns", "_probe_ns", "_stamp", "_strikes",
                 "_tau_ns", "default_rtt_s", "failure_penalty", "latest_s", "samples")

    def __init__(self, decay_s: float = 10.0, default_rtt_s: float = 0.03,
                 failure_penalty: float = DEFAULT_FAILURE_PENALTY, now_ns: int = 0) -> None:
        self._tau_ns = 1.0
        self.default_rtt_s = default_rtt_s
        self.failure_penalty = failure_penalty
        #: The estimate as of the last sample (the prior before any), not decayed.
        self.latest_s = default_rtt_s
        self._stamp = now_ns
        self._failed = False  # the last sample was a failure
        self._strikes = 0  # failures, each less than tau after the previous one
        self._failed_ns = 0  # when the last failure was observed
        self._probe_ns = 0  # when a probe is due (while `_failed`)
        self.samples = 0
        self.configure(decay_s, default_rtt_s, failure_penalty)

    def configure(self, decay_s: float, default_rtt_s: float,
                  failure_penalty: float = DEFAULT_FAILURE_PENALTY) -> None:
        """New parameters from a newer policy; the history is kept."""
        if not decay_s > 0:
            raise ValueError(f"balancer.decay must be greater than 0: {decay_s!r}")
        if not default_rtt_s > 0:
            raise ValueError(f"balancer.default_rtt must be greater than 0: {default_rtt_s!r}")
        if not failure_penalty >= 1:
            raise ValueError(f"balancer.failure_penalty must be at least 1: {failure_penalty!r}")
        self._tau_ns = decay_s * 1e9
        if self.samples == 0:
            self.latest_s = default_rtt_s
        self.default_rtt_s = default_rtt_s
        self.failure_penalty = failure_penalty

    def _weight(self, now_ns: int) -> float:
        elapsed = now_ns - self._stamp
        return 1.0 if elapsed <= 0 else math.exp(-elapsed / self._tau_ns)

    def estimate(self, now_ns: int) -> float:
        """The decayed estimate now, in seconds (before any sample: the decaying prior)."""
        return self.latest_s * self._weight(now_ns)

    def observe(self, rtt_s: float, now_ns: int, ok: bool = True) -> None:
        """Record one finished attempt that took `rtt_s` seconds."""
        if ok and self._failed and now_ns - self._stamp >= self._tau_ns * STALE:
            self.samples = 0  # avoided since it failed: this answer replaces the history
        self._failed = not ok
        if not ok:
            self._strike(now_ns)
        if not ok:  # relative to its own history (the prior before any): a failure
            # among 1 ms answers is not charged as if the endpoint were a 30 ms one
            current = max(self.estimate(now_ns), rtt_s) if self.samples else self.default_rtt_s
            rtt_s = max(rtt_s, min(current * self.failure_penalty, self._tau_ns / 1e9))
        estimate = self.latest_s
        if self.samples == 0 or rtt_s > estimate:
            self.latest_s = rtt_s
        else:  # `_weight`, inlined: this runs once per request
            elapsed = now_ns - self._stamp
            w = 1.0 if elapsed <= 0 else math.exp(-elapsed / self._tau_ns)
            self.latest_s = estimate * w + rtt_s * (1.0 - w)
        if now_ns > self._stamp:
            self._stamp = now_ns
        self.samples += 1

    def _strike(self, now_ns: int) -> None:
        """A failure: the probe after it waits twice as long as after the previous one
        (`STALE * tau` after the first of a series, at most `tau`)."""
        tau = self._tau_ns
        if now_ns - self._failed_ns > tau:
            self._strikes = 0  # the previous failure is forgotten
        self._strikes += 1
        self._failed_ns = now_ns
        self._probe_ns = now_ns + int(min(tau * STALE * 2.0 ** min(self._strikes - 1, 16), tau))

    def restart(self) -> None:
        """Forget the history: the next sample replaces it (the prior until then)."""
        self.samples = 0
        self.latest_s = self.default_rtt_s

    def cost(self, now_ns: int, pending: int, quiet_since_ns: int | None = None) -> float:
        """`estimate * (pending + 1)`; 0 before the first sample, `PENALTY + pending` while
        the first probe is out; 0 when a probe after a failure is due;
        the estimate is at least the silence since `quiet_since_ns` when given."""
        if self.samples == 0:
            return PENALTY + pending if pending > 0 else 0.0
        elapsed = now_ns - self._stamp  # `estimate`, inlined: this runs twice per pick
        if self._failed and pending == 0 and now_ns >= self._probe_ns:
            return 0.0  # avoided since it failed: its probe (module docstring)
        estimate = self.latest_s
        if elapsed > 0:
            estimate *= math.exp(-elapsed / self._tau_ns)
        if pending > 0 and quiet_since_ns is not None:
            estimate = max(estimate, (now_ns - quiet_since_ns) / 1e9)
        return estimate * (pending + 1)

    def __repr__(self) -> str:
        return (f"PeakEwma(estimate={self.latest_s:.6f}s, samples={self.samples}, "
                f"decay={self._tau_ns / 1e9:g}s)")
