"""`RefreshThread`: the blocking shell that keeps a `PolicyStore` in step with a control
endpoint (`http(s)://…` polled or long-polled, `etcd://host:port/key` watched).

One daemon thread per store (`PolicyStore.watch` starts it once). Requests never wait on
it: they read `store.current`, which the thread replaces whole. `close()` stops it; a
long poll in flight finishes on its own (bounded by the wait) and applies nothing after.
The async shells share this thread: the policy is process state, not per event loop, so
no `RefreshTask` twin is needed.
"""

from __future__ import annotations

import logging
import ssl
import threading
import time

from .._clock import RNG
from .._types import Rng
from ..policy import PolicyStore
from .apply import Applier, RefreshStats
from .cache import read_cache
from .errors import ControlError
from .etcd import EtcdSource
from .http import HttpSource
from .refresh import DEFAULT_LONG_POLL_WAIT_S, RefreshSchedule

logger = logging.getLogger("meshclient.control")


class RefreshThread:
    """Refresh `store` from `url` in the background.

    **Parameters:** `interval_s` (poll period, jittered), `token` (bearer token),
    `cache` (path of the on-disk copy of the last good policy, restored by `start()`),
    `verify` (TLS verification: True, a CA bundle path or an `ssl.SSLContext`),
    `long_poll_wait_s` (the `wait` asked of a long-polling server), `rng`.
    """

    def __init__(self, store: PolicyStore, url: str, *, interval_s: float = 10.0,
                 token: str | None = None, cache: str | None = None,
                 verify: bool | str | ssl.SSLContext = True,
                 long_poll_wait_s: float = DEFAULT_LONG_POLL_WAIT_S, rng: Rng = RNG) -> None:
        if not url.startswith(("http://", "https://", "etcd://")):
            raise ValueError(f"control URL must start with http://, https:// or etcd://: "
                             f"{url!r}")
        self.url = url
        self.store = store
        self.schedule = RefreshSchedule(interval_s, long_poll_wait_s)
        self.applier = Applier(store, url, cache)
        self.ready = threading.Event()
        self._rng = rng
        self._stop = threading.Event()
        self._source: HttpSource | EtcdSource = (
            EtcdSource(url) if url.startswith("etcd://")
            else HttpSource(url, token=token, verify=verify))
        self._thread = threading.Thread(target=self._run, name=f"meshclient-control {url}",
                                        daemon=True)

    @property
    def stats(self) -> RefreshStats:
        return self.applier.stats

    @property
    def last_errors(self) -> tuple[str, ...]:
        """Field-path errors of the last rejected document (empty once one is applied)."""
        return self.applier.last_errors

    def start(self) -> RefreshThread:
        """Restore the disk cache (if any) into the store, then start refreshing."""
        if self.applier.cache is not None:
            cached = read_cache(self.applier.cache)
            if cached is not None:
                self.applier.apply_policy(cached[0], cached[1],
                                          origin=f"cache {self.applier.cache}", write=False)
        self._thread.start()
        return self

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the first answer (or first failure) from the endpoint."""
        return self.ready.wait(timeout)

    def close(self, timeout: float = 1.0) -> None:
        """Stop refreshing; waits up to `timeout` for the thread (it is a daemon)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self._source.close()

    def _run(self) -> None:
        try:
            if isinstance(self._source, EtcdSource):
                self._source.run(self.applier, self.schedule, self._stop, self.ready, self._rng)
            else:
                self._poll(self._source)
        except Exception:  # a bug here must not kill the process, nor go unnoticed
            logger.exception("control refresher for %s stopped", self.url)

    def _poll(self, source: HttpSource) -> None:
        schedule, stats = self.schedule, self.applier.stats
        while not self._stop.is_set():
            plan = schedule.plan()
            started = time.monotonic()
            try:
                fetched = source.fetch(plan)
            except ControlError as exc:
                if self._stop.is_set():
                    return
                stats.errors += 1
                schedule.observe_failure()
                log = logger.warning if schedule.failures == 1 else logger.debug
                log("control endpoint %s failed (attempt %d), keeping %r: %s", self.url,
                    schedule.failures, self.store.current.version, exc)
            else:
                stats.fetches += 1
                if self._stop.is_set():
                    return
                if fetched.status == 304:
                    stats.not_modified += 1
                if schedule.observe(fetched.status, fetched.headers):
                    self.applier.apply(fetched.body)
                elif fetched.status == 200:
                    stats.unchanged += 1
            self.ready.set()
            self._stop.wait(schedule.delay(self._rng, time.monotonic() - started))

    def __repr__(self) -> str:
        return f"<RefreshThread {self.url} {self.stats}>"
