"""`MirrorGate`: bounds mirror copies in flight; a copy over the bound is dropped, never
queued (the shells own one per transport)."""

from __future__ import annotations

import threading
from dataclasses import dataclass

#: Copies in flight per transport; one more is dropped, never queued.
DEFAULT_MIRROR_CONCURRENCY = 16


@dataclass(slots=True)
class MirrorStats:
    sent: int = 0
    dropped: int = 0
    failed: int = 0


class MirrorGate:
    """At most `limit` copies in flight; `try_enter()` never waits. Thread-safe."""

    def __init__(self, limit: int = DEFAULT_MIRROR_CONCURRENCY) -> None:
        if limit < 1:
            raise ValueError(f"mirror concurrency must be at least 1: {limit!r}")
        self.limit = limit
        self.in_flight = 0
        self.stats = MirrorStats()
        self._lock = threading.Lock()

    def try_enter(self) -> bool:
        with self._lock:
            if self.in_flight >= self.limit:
                self.stats.dropped += 1
                return False
            self.in_flight += 1
            return True

    def leave(self, ok: bool) -> None:
        with self._lock:
            self.in_flight -= 1
            if ok:
                self.stats.sent += 1
            else:
                self.stats.failed += 1

    def __repr__(self) -> str:
        return (f"<MirrorGate in_flight={self.in_flight}/{self.limit} sent={self.stats.sent} "
                f"dropped={self.stats.dropped} failed={self.stats.failed}>")
