"""The endpoint cache: one per service per registry, refreshed in the background.

Requests never look anything up: they read the balancer, which the cache feeds on every new
endpoint set. Only a service's very first request waits (`wait()`, bounded by the request's
deadline) for the first answer. After that:

- refresh happens on the cache's own thread before the TTL runs out (`_schedule.py`);
- while it runs, and when it fails, the last good endpoints keep being served (stale while
  refresh, stale on error), with one warning per failure streak and one line on recovery;
- a source that pushes changes (etcd, the file watcher) is followed instead of polled.

Where caches live: in the per-store `Registry` (`meshclient/_runtime.py`), through each
service's `DiscoveryFeed`. Transports sharing a store share the registry, and the default
store is process-wide, so there is one cache per service per process for every transport
built on the default store; a test's private store gets its own.

Threads: one per cache, named `meshclient-discovery-<service>`; `close()` stops and joins
it, and interpreter exit closes every cache still open (`_threads.py`), so a process that
never closes its transports still exits promptly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from .. import _events, _fork
from .._clock import CLOCK, RNG
from .._types import Clock, Rng
from ._schedule import RefreshSchedule, ScheduleConfig, Step
from ._threads import start_thread
from .endpoint import DiscoveryError, Resolution, Resolver

logger = logging.getLogger("meshclient.discovery")

Listener = Callable[[Resolution], None]


class EndpointCache:
    """Follows one resolver; publishes each new endpoint set to its listeners.

    **Parameters:** `service` (the name, for logs and events), `resolver`, `config`
    (`ScheduleConfig`), `clock`, `rng`.

    Usage:
    ```python
    cache = EndpointCache("users", DnsResolver(...), ScheduleConfig(min_ttl_s=1))
    cache.subscribe(lambda resolution: balancer.update(resolution.endpoints))
    cache.wait(2.0)          # starts the refresh thread; True once the first answer is in
    cache.close()
    ```

    Thread-safe. `resolution`, `ready` and `wait` never do I/O; listeners run on the refresh
    thread, must be quick, and never under a lock of the cache.
    """

    def __init__(self, service: str, resolver: Resolver, config: ScheduleConfig | None = None,
                 *, clock: Clock = CLOCK, rng: Rng = RNG) -> None:
        self.service = service
        self.resolver = resolver
        self.clock = clock
        self._schedule = RefreshSchedule(config or ScheduleConfig(), rng)
        self._resolution: Resolution | None = None
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # start/close and the listener list; never held over I/O
        self._listeners: tuple[Listener, ...] = ()
        self._thread: threading.Thread | None = None
        self._held: tuple[Resolution, int] | None = None  # (empty answer, when) in grace
        self._restart = False  # a forked child: start the thread again on first use
        self.last_error: str | None = None
        self.lookups = 0
        _fork.track(self)

    # -- reading (any thread, no I/O) -------------------------------------------------
    @property
    def resolution(self) -> Resolution | None:
        """The current snapshot, or None before the first answer."""
        return self._resolution

    @property
    def failures(self) -> int:
        """Failed lookups in a row (0 while the registry answers)."""
        return self._schedule.failures

    @property
    def ready(self) -> bool:
        return self._ready.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Start refreshing if not yet started; block at most `timeout_s` for the first
        answer. Returns whether there is one."""
        if self._ready.is_set():
            return True
        self.start()
        return self._ready.wait(max(0.0, timeout_s))

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call `listener(resolution)` with every new endpoint set (and now, if there is
        one already). Returns an unsubscribe function."""
        with self._lock:
            self._listeners = (*self._listeners, listener)
            current = self._resolution
        if current is not None:
            listener(current)

        def unsubscribe() -> None:
            with self._lock:
                self._listeners = tuple(x for x in self._listeners if x is not listener)

        return unsubscribe

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> EndpointCache:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = start_thread(self, self._run,
                                            f"meshclient-discovery-{self.service}")
        return self

    def close(self, wait: bool = True) -> None:
        """Stop the refresh thread; with `wait`, join it (at most one lookup's timeout).
        The thread closes the resolver on its way out."""
        with self._lock:
            self._stop.set()
            thread = self._thread
        if thread is None:
            self.resolver.close()
        elif wait and thread is not threading.current_thread():
            thread.join(10)

    # -- forked child (meshclient/_fork.py) ----------------------------------------------
    def _after_fork_in_child(self) -> None:
        """The thread is gone; the lock may be held; the resolver's connections are the
        parent's. No I/O here: `_resume_after_fork` starts the thread again."""
        self._lock = threading.Lock()
        self._ready = _copy_event(self._ready)
        self._stop = _copy_event(self._stop)
        self._restart = self._thread is not None
        self._thread = None

    def _resume_after_fork(self) -> None:
        if self._restart:
            self._restart = False
            reconnect = getattr(self.resolver, "reconnect", None)
            if callable(reconnect):  # its own connections, not the parent's
                reconnect()
            self.start()

    # -- the refresh thread --------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        finally:
            self.resolver.close()

    def _loop(self) -> None:
        watch = getattr(self.resolver, "watch", None)
        while not self._stop.is_set():
            self.lookups += 1
            try:
                if watch is not None:
                    watch(self._pushed, self._should_stop)
                    continue  # returned: stopping, or the source wants a fresh start
                step = self._schedule.on_answer(self.clock.now_ns(), self.resolver.resolve())
                self._apply(step)
            except DiscoveryError as exc:
                step = self._failed(exc)
            except Exception as exc:  # a bug in a resolver must not kill discovery
                logger.exception("discovery of %s (%s) raised", self.service,
                                 self.resolver.source)
                step = self._failed(exc)
            if step.delay_s is not None and self._stop.wait(step.delay_s):
                return

    def _should_stop(self) -> bool:
        """Polled by watching resolvers at least every second: also ends a grace period."""
        held = self._held
        if held is not None:
            self._pushed(held[0])
        return self._stop.is_set()

    def _pushed(self, resolution: Resolution) -> None:
        self._apply(self._schedule.on_answer(self.clock.now_ns(), resolution))

    def _apply(self, step: Step) -> None:
        if step.recovered_after:
            logger.info("discovery of %s (%s) recovered after %d failed lookups",
                        self.service, self.resolver.source, step.recovered_after)
            self.last_error = None
        if step.held_empty:
            if self._held is None:
                assert self._resolution is not None
                logger.warning("discovery of %s (%s) answered no endpoints; keeping %d for "
                               "the grace period", self.service, self.resolver.source,
                               len(self._resolution.endpoints))
                self._held = (Resolution((), self.resolver.source), self.clock.now_ns())
            return
        self._held = None
        new = step.publish
        if new is None:
            return
        old, self._resolution = self._resolution, new
        if old is not None and old.endpoints == new.endpoints:
            return  # same set (a TTL refresh): nothing for the balancer to do
        _events.emit(_events.DISCOVERY_REFRESH, self.service,
                     endpoints=[e.key for e in new.endpoints], source=new.source)
        for listener in self._listeners:
            try:
                listener(new)
            except Exception:
                logger.exception("discovery listener %r failed", listener)
        # ready once the listeners have the first answer: a request woken by `wait` picks
        # from a balancer that already holds these endpoints
        self._ready.set()

    def _failed(self, exc: BaseException) -> Step:
        now = self.clock.now_ns()
        step = self._schedule.on_error(now)
        self.last_error = str(exc) or repr(exc)
        stale = self._schedule.stale_s(now)
        if step.first_failure:
            current = self._resolution
            kept = f"serving {len(current.endpoints)} stale endpoints" if current else \
                "no endpoints yet"
            logger.warning("discovery of %s (%s) failing: %s; %s, retrying with backoff",
                           self.service, self.resolver.source, self.last_error, kept)
        # one event per failed lookup (metrics count them); `failures` is the streak length,
        # 1 at its start: a log line belongs there only (this module writes it, above)
        _events.emit(_events.DISCOVERY_ERROR, self.service, error=self.last_error,
                     stale_s=stale, failures=self._schedule.failures)
        return step

    def __repr__(self) -> str:
        n = None if self._resolution is None else len(self._resolution.endpoints)
        return (f"<EndpointCache {self.service} {self.resolver.source} endpoints={n} "
                f"failures={self._schedule.failures}>")


def _copy_event(event: threading.Event) -> threading.Event:
    """A new event in the same state (an inherited one's lock may be held)."""
    fresh = threading.Event()
    if event.is_set():
        fresh.set()
    return fresh
