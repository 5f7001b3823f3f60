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
ending thread's loop monitor or the process's monitor thread is overdue (`due`).

Only the stalls at the two ends of an attempt are discounted. At its start the request
may wait unsent while the client cannot run; at its end the answer may wait unread. A stall
in between, with the client running before and after it, delayed neither: the request was
out and the endpoint at work, and an answer already there would have been read as soon as
the stall ended. So the stalls counted are the one in progress at the end, those ended
within `SLACK_S` of the end or of the next one counted, and likewise forward from the
start. A stall in the middle of a long wait stays charged to the endpoint (discounting it
would make a slow endpoint look fast on a busy client).

Thread-safe: the record is replaced as a whole tuple under a lock; readers read it once.
"""

from __future__ import annotations

import threading

#: How often a monitor's timer is due, while requests are in flight (seconds).
TICK_S = 0.02
#: Lateness of a monitor's timer below this is timer jitter, not a stall (seconds).
THRESHOLD_S = 0.002
#: A stall that ended more than this before an attempt ended did not delay reading its
#: answer (the client ran in between: a tick of the monitor, and some).
SLACK_S = 2 * TICK_S
#: Stalls remembered (the newest; older ones end before any attempt still in flight).
KEEP = 64

_THRESHOLD_NS = int(THRESHOLD_S * 1e9)
_SLACK_NS = int(SLACK_S * 1e9)

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
        """How much of `[start_ns, now_ns)` the client was stalled at its ends: the stall of
        `thread`'s monitor in progress now (overdue), the recorded stalls chained back from
        the end and forward from the start (each within `SLACK_S` of the last one counted,
        or of the end or start itself)."""
        total = 0
        end = now_ns  # where the stall in progress, if any, began
        events = self.events
        if thread is not None:
            dues = self.due
            due = dues.get(thread)
            process = dues.get(PROCESS)  # the monitor thread's: the whole process
            if due is None or (process is not None and process < due):
                due = process
            if due is not None and now_ns - due > _THRESHOLD_NS:
                last_end = events[-1][1] if events else 0
                end = max(due, start_ns, last_end)
                total += max(0, now_ns - end)
        if events and events[-1][1] > start_ns:
            # the events in [start_ns, end), clipped; found from the newest back (events are
            # in order: the first one ending by `start_ns` ends the search)
            inside = []
            for s, e in reversed(events):
                if e <= start_ns:
                    break
                if s < end:
                    inside.append((max(s, start_ns), min(e, end)))
            inside.reverse()
            k, edge = len(inside), end  # the stalls at the end: the answer waited unread
            while k and edge - inside[k - 1][1] <= _SLACK_NS:
                k -= 1
                edge = inside[k][0]
            i, edge = 0, start_ns  # the stalls at the start: the request waited unsent
            while i < k and inside[i][0] - edge <= _SLACK_NS:
                edge = inside[i][1]
                i += 1
            total += sum(e - s for s, e in inside[:i]) + sum(e - s for s, e in inside[k:])
        return max(0, min(total, now_ns - start_ns))

    def __repr__(self) -> str:
        return f"<StallRecord events={len(self.events)}>"


#: The process-wide record, on `time.monotonic_ns` (the real clock's).
STALLS = StallRecord()
