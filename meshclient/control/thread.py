"""`RefreshThread`: the blocking shell that keeps a `PolicyStore` in step with a control
endpoint (`http(s)://…` polled or long-polled, `etcd://host:port/key` watched).

One daemon thread per store (`PolicyStore.watch` starts it once). Requests never wait on
it: they read `store.current`, which the thread replaces whole. The async shells share this
thread: the policy is process state, not per event loop, so no `RefreshTask` twin is needed.

It cannot die from input or from a bug: the applier rejects any document the parser raises
on, and a last-resort guard around each iteration logs an unexpected exception once per
distinct error, counts it (`stats.unexpected`), backs off and carries on. `close()` aborts a
fetch in flight and joins the thread within its `timeout`. In a forked child the thread is
started again on first use (`meshclient/_fork.py`).
"""

from __future__ import annotations

import logging
import ssl
import threading
import time
from typing import TYPE_CHECKING

from .. import _fork
from .._clock import RNG
from .._types import Rng
from .errors import ControlError
from .etcd import EtcdSource
from .http import HttpSource
from .refresh import DEFAULT_LONG_POLL_WAIT_S, RefreshSchedule, RefreshStats

if TYPE_CHECKING:
    from ..policy import PolicyStore

logger = logging.getLogger("meshclient.control")

#: Failure backoff cap for a watched etcd key: a watch is one cheap request, and a policy
#: written while etcd was away should apply within seconds of its return.
ETCD_BACKOFF_MAX_S = 2.0
#: Distinct unexpected errors remembered (each is logged once).
_SEEN_MAX = 64


class RefreshThread:
    """Refresh `store` from `url` in the background.

    **Parameters:** `interval_s` (poll period, jittered), `token` (bearer token),
    `cache` (path of the on-disk copy of the last good policy, restored by `start()`),
    `verify` (TLS verification: True, a CA bundle path or an `ssl.SSLContext`),
    `long_poll_wait_s` (the `wait` asked of a long-polling server), `timeout_s` (wall-clock
    bound on one plain poll, headers and body; a long poll gets `wait + wait/16` more), `rng`.
    """

    def __init__(self, store: PolicyStore, url: str, *, interval_s: float = 10.0,
                 token: str | None = None, cache: str | None = None,
                 verify: bool | str | ssl.SSLContext = True,
                 long_poll_wait_s: float = DEFAULT_LONG_POLL_WAIT_S, timeout_s: float = 10.0,
                 rng: Rng = RNG) -> None:
        if not url.startswith(("http://", "https://", "etcd://")):
            raise ValueError(f"control URL must start with http://, https:// or etcd://: "
                             f"{url!r}")
        if not timeout_s > 0:
            raise ValueError(f"control timeout must be greater than 0: {timeout_s!r}")
        self.url = url
        self.store = store
        etcd = url.startswith("etcd://")
        self.schedule = RefreshSchedule(interval_s, long_poll_wait_s, timeout_s=timeout_s)
        if etcd:
            self.schedule.backoff_max_s = max(self.schedule.backoff_base_s, ETCD_BACKOFF_MAX_S)
        self.applier = store.applier(url, cache)  # what turns documents into swaps
        self.ready = threading.Event()
        self._rng = rng
        self._token = token
        self._verify = verify
        self._stop = threading.Event()
        self._seen: set[tuple[str, str]] = set()
        self._source: HttpSource | EtcdSource = self._new_source()
        self._thread: threading.Thread | None = None
        self._forked = False  # a forked child: start again on first use
        _fork.track(self)

    def _new_source(self) -> HttpSource | EtcdSource:
        if self.url.startswith("etcd://"):
            return EtcdSource(self.url)
        return HttpSource(self.url, token=self._token, verify=self._verify)

    @property
    def stats(self) -> RefreshStats:
        return self.applier.stats

    @property
    def last_errors(self) -> tuple[str, ...]:
        """Errors of the last rejected document (empty once one is applied)."""
        return self.applier.last_errors

    @property
    def alive(self) -> bool:
        """Whether the refresh thread is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> RefreshThread:
        """Restore the disk cache (if any) into the store, then start refreshing."""
        self.applier.restore()
        self._spawn()
        return self

    def _spawn(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"meshclient-control {self.url}",
                                        daemon=True)
        self._thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """Wait until the first answer (or first failure) from the endpoint."""
        return self.ready.wait(timeout)

    def close(self, timeout: float = 2.0) -> None:
        """Stop refreshing: abort a fetch in flight, wait up to `timeout` for the thread."""
        self._stop.set()
        if isinstance(self._source, HttpSource):
            self._source.abort()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout)
        self._source.close()

    # -- forked child (meshclient/_fork.py) ------------------------------------------------
    def _after_fork_in_child(self) -> None:
        """The thread is gone and the connection is the parent's: forget both, without I/O
        (never shut the parent's socket down). A new source is made on first use."""
        self.applier.reset_lock()
        if isinstance(self._source, HttpSource):
            self._source.forget_connection()
        self._thread = None
        self._forked = True
        self.ready = threading.Event()
        self._stop = threading.Event() if not self._stop.is_set() else self._stop

    def _resume_after_fork(self) -> None:
        if self._forked and not self._stop.is_set():
            self._forked = False
            self._source = self._new_source()  # its own connections, not the parent's
            self._spawn()

    # -- the refresh thread ------------------------------------------------------------------
    def _run(self) -> None:
        source = self._source
        if isinstance(source, EtcdSource):
            source.run(self.applier, self.schedule, self._stop, self.ready, self._rng,
                       self._unexpected)
            return
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._poll_once(source)
            except Exception as exc:  # last resort: a bug must not end refreshing
                self._unexpected(exc)
            self.ready.set()
            self._stop.wait(self.schedule.delay(self._rng, time.monotonic() - started))

    def _unexpected(self, exc: Exception) -> None:
        """Count, log once per distinct error, back off (the caller waits `delay`)."""
        self.stats.unexpected += 1
        self.schedule.observe_failure()
        key = (type(exc).__name__, str(exc)[:200])
        if key not in self._seen:
            if len(self._seen) < _SEEN_MAX:
                self._seen.add(key)
            logger.error("control refresher for %s hit an unexpected error; keeping %r and "
                         "carrying on with backoff", self.url, self.store.current.version,
                         exc_info=exc)

    def _poll_once(self, source: HttpSource) -> None:
        schedule, stats = self.schedule, self.applier.stats
        try:
            fetched = source.fetch(schedule.plan())
        except ControlError as exc:
            if self._stop.is_set():
                return
            stats.errors += 1
            schedule.observe_failure()
            log = logger.warning if schedule.failures == 1 else logger.debug
            log("control endpoint %s failed (attempt %d), keeping %r: %s", self.url,
                schedule.failures, self.store.current.version, exc)
            return
        stats.fetches += 1
        if self._stop.is_set():
            return
        if fetched.status == 304:
            stats.not_modified += 1
        if schedule.observe(fetched.status, fetched.headers):
            self.applier.apply(fetched.body)
        elif fetched.status == 200:
            stats.unchanged += 1

    def __repr__(self) -> str:
        return f"<RefreshThread {self.url} {self.stats}>"
