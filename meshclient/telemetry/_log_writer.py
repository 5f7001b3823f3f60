"""The access log's writer: records leave the caller's path through a bounded queue, and
one background thread per log formats and writes them in batches (as Envoy buffers its
access logs and flushes them every `access_log_flush_interval`).

- **The caller only enqueues** (`put`: a length check and a `deque.append` of a record the
  caller already built). Formatting (JSON) and writing happen on the writer thread.
- **The writer** is a daemon thread started on the first record. It wakes every
  `flush_interval` (`FLUSH_INTERVAL_S`), or as soon as `BATCH` records wait, takes everything
  queued and writes it with one call of the sink per batch of at most `BATCH` lines. After a
  whole interval with nothing to write it ends; the next record starts it again.
- **Bounded.** A record that finds `buffer` (`BUFFER`) records waiting is dropped,
  never waited for: counted in `dropped` and reported with a warning at most once per
  `DROP_LOG_S`.
- **Flush.** `flush()` writes everything queued at once, on the calling thread; every
  writer is flushed at interpreter exit (`atexit`). Lines are written in the order they
  were queued (one drain at a time), so each thread's lines keep their order.
- **Fork.** A child process starts with an empty queue and no thread
  (`os.register_at_fork`): what the parent had queued is the parent's to write. The child's
  first record starts its own writer.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

logger = logging.getLogger("meshclient.telemetry")

#: Longest a queued line waits before the writer writes it (Envoy's default flush interval;
#: `MESHCLIENT_ACCESS_LOG_FLUSH_INTERVAL`), and the longest allowed.
FLUSH_INTERVAL_S = 1.0
MAX_FLUSH_INTERVAL_S = 3600.0
#: Lines that may wait; one more is dropped (`MESHCLIENT_ACCESS_LOG_BUFFER`).
BUFFER = 16384
#: The writer wakes early once this many lines wait, and writes at most this many at once.
BATCH = 256
#: Shortest time between two warnings about dropped lines.
DROP_LOG_S = 10.0

_WRITERS: weakref.WeakSet[LineWriter] = weakref.WeakSet()


class LineWriter:
    """Formats queued records with `render` (records -> text) and hands the text to `sink`,
    off the caller's path. Thread- and task-safe; `name` appears in warnings."""

    def __init__(self, render: Callable[[Sequence[Any]], str], sink: Callable[[str], object],
                 *, name: str, flush_interval: float = FLUSH_INTERVAL_S,
                 buffer: int = BUFFER) -> None:
        if not 0 < flush_interval <= MAX_FLUSH_INTERVAL_S:  # NaN fails too
            raise ValueError(f"access log flush_interval must be above 0 and at most "
                             f"{MAX_FLUSH_INTERVAL_S:g} s: {flush_interval!r}")
        if buffer < 1:
            raise ValueError(f"access log buffer must be at least 1 line: {buffer!r}")
        self.name = name
        self.flush_interval = flush_interval
        self.buffer = buffer
        self._render = render
        self._sink = sink
        self._reset()
        _WRITERS.add(self)

    def _reset(self) -> None:
        self._queue: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()  # starting and stopping the thread; drops
        self._drain_lock = threading.Lock()  # one drain at a time: lines keep their order
        self._running = False
        self.dropped = 0
        self._drops_reported = 0
        self._drop_logged_at = time.monotonic() - DROP_LOG_S

    def put(self, record: Any) -> None:
        """Queue `record` (never blocks; dropped and counted when the queue is full)."""
        queue = self._queue
        if len(queue) >= self.buffer:
            with self._lock:
                self.dropped += 1
            return
        queue.append(record)
        if not self._running:
            self._start()
        elif len(queue) >= BATCH and not self._wake.is_set():
            self._wake.set()

    @property
    def queued(self) -> int:
        """Records waiting to be written."""
        return len(self._queue)

    def flush(self) -> None:
        """Write everything queued now, on this thread."""
        self._drain()

    def _start(self) -> None:
        with self._lock:
            if self._running:
                return
            self._running = True
            threading.Thread(target=self._run, name=f"meshclient-access-log {self.name}",
                             daemon=True).start()

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            if self._drain():
                continue
            with self._lock:  # idle for a whole interval: end (a later put starts one)
                self._running = False
                if not self._queue:
                    return
                self._running = True  # a record arrived meanwhile: carry on

    def _drain(self) -> int:
        """Write what is queued, in batches; returns how many records were taken."""
        taken = 0
        with self._drain_lock:
            queue = self._queue
            while queue:
                batch: list[Any] = []
                try:
                    while len(batch) < BATCH:
                        batch.append(queue.popleft())
                except IndexError:  # emptied
                    pass
                taken += len(batch)
                self._write(batch)
        self._report_drops()
        return taken

    def _write(self, batch: list[Any]) -> None:
        try:
            text = self._render(batch)
        except Exception:  # a bad record must not stop the writer
            logger.exception("access log %s: formatting %d lines failed", self.name,
                             len(batch))
            return
        try:
            self._sink(text)
        except OSError as exc:  # a full disk must not stop the writer
            logger.warning("access log %s: %s", self.name, exc)

    def _report_drops(self) -> None:
        with self._lock:
            count = self.dropped - self._drops_reported
            now = time.monotonic()
            if count <= 0 or now - self._drop_logged_at < DROP_LOG_S:
                return
            self._drops_reported = self.dropped
            self._drop_logged_at = now
        logger.warning("access log %s: %d lines dropped since the last report (%d were "
                       "waiting to be written)", self.name, count, self.buffer)


def flush_all() -> None:
    """Write every writer's queued lines now (also run at interpreter exit)."""
    for writer in list(_WRITERS):
        writer.flush()


def file_sink(path: str) -> Callable[[str], object]:
    """Appends to `path` (created if missing) with one `os.write` per batch of whole lines
    on an `O_APPEND` descriptor, so writers in other threads and processes never split a
    line."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(text: str) -> None:
        data = memoryview(text.encode())
        while data:
            data = data[os.write(fd, data):]

    return write


def _after_fork_in_child() -> None:  # the child has no writer thread; its queue is the parent's
    for writer in list(_WRITERS):
        writer._reset()


atexit.register(flush_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
