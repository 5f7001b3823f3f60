"""The etcd control source: read one key, then watch it and apply each value written.

Uses the shared `meshclient._etcd` client (JSON gateway, blocking, from the refresher's
thread). A compacted watch re-reads the key and watches again from the new revision; a
deleted key is logged and the last good policy kept; an unreachable etcd backs off with
the schedule's exponential backoff (capped at 2 s: a watch is one cheap request) and starts
over with a fresh read, so a value written while etcd was away applies on its return.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from .._etcd import EtcdClient, EtcdError, parse_etcd_url
from .._types import Rng
from .refresh import RefreshSchedule

if TYPE_CHECKING:
    from ..policy.apply import Applier

logger = logging.getLogger("meshclient.control")

#: How often a quiet watch is re-armed (bounds how long `close()` waits for the thread).
WATCH_IDLE_S = 0.5


class EtcdSource:
    def __init__(self, url: str) -> None:
        self.url = url
        base_url, self.key = parse_etcd_url(url)
        self.client = EtcdClient(base_url)

    def run(self, applier: Applier, schedule: RefreshSchedule, stop: threading.Event,
            ready: threading.Event, rng: Rng,
            unexpected: Callable[[Exception], None]) -> None:
        """Loop until `stop` is set. `unexpected(exc)` is the last-resort guard: it counts
        and logs anything but an etcd failure; the loop backs off and starts over."""
        while not stop.is_set():
            try:
                self._session(applier, schedule, stop, ready)
            except EtcdError as exc:
                applier.stats.errors += 1
                schedule.observe_failure()
                log = logger.warning if schedule.failures == 1 else logger.debug
                log("control endpoint %s unreachable (attempt %d), keeping %r: %s", self.url,
                    schedule.failures, applier.store.current.version, exc)
                ready.set()
                stop.wait(schedule.delay(rng))
            except Exception as exc:  # a bug must not end the watch
                unexpected(exc)
                ready.set()
                stop.wait(schedule.delay(rng))

    def _session(self, applier: Applier, schedule: RefreshSchedule, stop: threading.Event,
                 ready: threading.Event) -> None:
        revision, kv = self.client.get(self.key)
        schedule.failures = 0  # etcd answers: the next outage backs off from the start
        applier.stats.fetches += 1
        if kv is None:
            logger.warning("control key %s is missing; keeping %r", self.url,
                           applier.store.current.version)
        else:
            applier.apply(kv.value, origin=f"{self.url}@{kv.mod_revision}")
        ready.set()
        for batch in self.client.watch(self.key, start_revision=revision + 1,
                                       should_stop=stop.is_set, idle_s=WATCH_IDLE_S):
            if stop.is_set() or batch.compacted:
                return  # compacted: read again and re-watch from the new revision
            for put in batch.puts[-1:]:  # only the newest value of a revision matters
                applier.stats.fetches += 1
                applier.apply(put.value, origin=f"{self.url}@{put.mod_revision}")
            if batch.deletes:
                logger.warning("control key %s was deleted; keeping %r", self.url,
                               applier.store.current.version)

    def close(self) -> None:
        self.client.close()

    def __repr__(self) -> str:
        return f"<EtcdSource {self.url}>"
