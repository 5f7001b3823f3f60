"""The stall monitors (`meshclient/_stall.py`): a timer per event loop (async shell) and
one thread (sync shell) that should fire every `TICK_S` and record when they fire late.

They run only while the mesh is in use: `watch_loop()` / `watch_thread()` (one call per
request: a dictionary lookup and a clock read) start one when none runs, and a monitor
stops itself after `IDLE_S` without a request. Nothing here holds a lock across I/O; the
thread is a daemon and ends within `IDLE_S` of the last request, or at exit.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref

from .._stall import PROCESS, STALLS, THRESHOLD_S, TICK_S

#: A monitor stops after this long without a request (seconds).
IDLE_S = 1.0

_TICK_NS = int(TICK_S * 1e9)
_THRESHOLD_NS = int(THRESHOLD_S * 1e9)
_IDLE_NS = int(IDLE_S * 1e9)
_now = time.monotonic_ns


class _LoopMonitor:
    """A `call_later` chain on one event loop: its lateness is the loop's lag."""

    __slots__ = ("__weakref__", "due", "ident", "last_use", "loop", "stopped")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.ident = threading.get_ident()
        self.last_use = _now()
        self.stopped = False
        self.due = self.last_use + _TICK_NS
        STALLS.due[self.ident] = self.due
        loop.call_later(TICK_S, self._tick)

    def _tick(self) -> None:
        now = _now()
        if now - self.due > _THRESHOLD_NS:
            STALLS.add(self.due, now)
        if now - self.last_use > _IDLE_NS or self.loop.is_closed():
            self.stopped = True
            STALLS.due.pop(self.ident, None)
            _LOOPS.pop(self.loop, None)
            return
        self.due = now + _TICK_NS
        STALLS.due[self.ident] = self.due
        self.loop.call_later(TICK_S, self._tick)


_LOOPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopMonitor] = (
    weakref.WeakKeyDictionary())
_last: _LoopMonitor | None = None


def watch_loop() -> None:
    """A request on the running loop: keep (or start) its monitor."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # another async library (trio): no loop to watch
        return
    global _last
    monitor = _last  # the usual case: the same loop as the last request's
    if monitor is None or monitor.loop is not loop or monitor.stopped:
        monitor = _LOOPS.get(loop)
        if monitor is None:
            monitor = _LOOPS[loop] = _LoopMonitor(loop)
        _last = monitor
    monitor.last_use = _now()


class _ThreadMonitor(threading.Thread):
    """A daemon thread sleeping `TICK_S` at a time: its lateness is time the process did
    not get to run Python (the OS ran something else, or another thread held the GIL)."""

    def __init__(self) -> None:
        super().__init__(name="meshclient-stall-monitor", daemon=True)
        self.last_use = _now()
        self.done = False
        # due from now on, before the thread first runs: a stall starting at once counts
        self.first_due = STALLS.due[PROCESS] = self.last_use + _TICK_NS

    def run(self) -> None:
        dues = STALLS.due
        due = self.first_due
        try:
            while True:
                delay = (due - _now()) / 1e9
                if delay > 0:
                    time.sleep(delay)
                now = _now()
                if now - due > _THRESHOLD_NS:
                    STALLS.add(due, now)
                if now - self.last_use > _IDLE_NS:
                    self.done = True
                    # a request that saw `done` False wrote `last_use` before: read again
                    if _now() - self.last_use > _IDLE_NS:
                        return
                    self.done = False
                due = dues[PROCESS] = now + _TICK_NS
        finally:
            if dues.get(PROCESS) == due:  # not a successor's
                dues.pop(PROCESS, None)


_thread: _ThreadMonitor | None = None
_thread_lock = threading.Lock()


def watch_thread() -> None:
    """A request from a blocking caller: keep (or start) the monitor thread."""
    global _thread
    monitor = _thread
    if monitor is not None:
        monitor.last_use = _now()  # first: a monitor deciding to stop reads it after
        if not monitor.done:
            return
    with _thread_lock:
        if _thread is None or _thread.done or not _thread.is_alive():
            _thread = _ThreadMonitor()
            _thread.start()
