"""Client-side stalls: when this process could not run (event loop lag, GIL, the OS
scheduling another process), so that the balancer does not charge them to an endpoint.

An attempt's latency is measured from its start to its end as the client sees them. If
the client itself stalls in between (the event loop is busy with other tasks, a CPU-heavy
neighbour takes the core, another thread holds the GIL), every request in flight looks
slower, but only the endpoints that happened to have requests in flight are charged: the
peak-EWMA jumps to the inflated sample and keeps it for seconds. So the monitors
(`transport/_lag.py`) record the intervals in which the client was stalled, and
`EndpointState.end` subtracts the part of an attempt that overlaps them before the sample
reaches the estimate (and the "stall bound" of a busy endpoint's cost does the same).

A monitor is a timer that should fire every `TICK_S`; when it fires more than
`THRESHOLD_S` late, `[due, fired]` was a stall. A stall still in progress when an attempt
ends (the response was handled before the late timer) is counted up to now when the
ending thread's loop monitor or the process's monitor thread is overdue (`due`). This discounts at most the client's
own stall; a stall that ended before the answer arrived is discounted too, which errs on
the side of the endpoint by no more than the stall.

Thread-safe: the record is replaced as a whole tuple under a lock; readers read it once.
"""

from __future__ import annotations

import threading

#: How often a monitor's timer is due, while requests are in flight (seconds).
TICK_S = 0.005
#: Lateness of a monitor's timer below this is timer jitter, not a stall (seconds).
THRESHOLD_S = 0.002
#: Stalls remembered (the newest; older ones end before any attempt still in flight).
KEEP = 64

_THRESHOLD_NS = int(THRESHOLD_S * 1e9)

#: The `due` key of the monitor thread, whose lateness is a stall of every thread.
PROCESS = 0


class StallRecord:
    """Recent stall intervals of this process, on one monotonic clock."""

    __slots__ = ("_lock", "due", "events")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: (start, end) of recent stalls, in order, not overlapping.
        self.events: tuple[tuple[int, int], ...] = ()
        #: thread ident -> when that thread's monitor is next due (ns).
        self.due: dict[int, int] = {}

    def add(self, start_ns: int, end_ns: int) -> None:
        """One stall, `[start_ns, end_ns)`."""
        if end_ns <= start_ns:
            return
        with self._lock:
            events = self.events
            if events and start_ns <= events[-1][1]:  # overlaps the last: merge
                last = events[-1]
                merged = (min(last[0], start_ns), max(last[1], end_ns))
                self.events = (*events[:-1], merged)
            else:
                self.events = (*events[-(KEEP - 1):], (start_ns, end_ns))

    def overlap_ns(self, start_ns: int, now_ns: int, thread: int | None = None) -> int:
        """How much of `[start_ns, now_ns)` the client was stalled: recorded stalls, plus
        the stall in progress of `thread`'s monitor (overdue now)."""
        total = 0
        events = self.events
        if events and events[-1][1] > start_ns:
            for s, e in reversed(events):
                if e <= start_ns:
                    break
                total += min(e, now_ns) - max(s, start_ns) if e > s else 0
        if thread is not None:
            dues = self.due
            due = dues.get(thread)
            process = dues.get(PROCESS)  # the monitor thread's: the whole process
            if due is None or (process is not None and process < due):
                due = process
            if due is not None and now_ns - due > _THRESHOLD_NS:
                last_end = events[-1][1] if events else 0
                total += max(0, now_ns - max(due, start_ns, last_end))
        elapsed = now_ns - start_ns
        return max(0, min(total, elapsed))

    def __repr__(self) -> str:
        return f"<StallRecord events={len(self.events)}>"


#: The process-wide record, on `time.monotonic_ns` (the real clock's).
STALLS = StallRecord()
