"""Breaker state in Redis (`breaker.storage: redis://…`) that never stalls or floods a call.

pybreaker's `CircuitRedisStorage` makes several Redis round trips per breaker operation,
each waiting for the socket timeout when Redis is frozen, and logs a traceback for every
failed one. So the breakers of every endpoint sharing one Redis URL share one `RedisHealth`:

- Every breaker keeps a local, in-memory copy of its state (pybreaker's
  `CircuitMemoryStorage`), written on every change. While Redis answers, reads come from
  Redis (the state processes share); writes go to both.
- The first Redis operation that fails (refused, or no answer within `REDIS_TIMEOUT_S`)
  marks the URL unreachable, logged once. From then on no breaker touches Redis: they run
  on their local state, costing a call nothing.
- A background thread (one per URL, a daemon) pings Redis every `PROBE_EVERY_S`; the
  first answer marks it reachable again, logged once, and the breakers read Redis again.
  The thread exits once Redis is back, or when no breaker used the URL for
  `PROBE_IDLE_S` (the next failure starts it again).

A Redis operation never outlasts the call it serves either: the breaker tells the storage how
long the call has left (`call_time_left`), and when that is shorter than one operation's
timeout the storage answers from the local copy instead of asking Redis.

pybreaker's own log lines for a failed operation are not emitted (each storage gets a
quiet logger of its own: the `logger` attribute pybreaker reads per instance); the two
state changes above are logged instead, on the `meshclient` logger.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pybreaker

from .. import _events

#: Redis socket timeouts (seconds) of one operation.
REDIS_TIMEOUT_S = 0.2
PROBE_EVERY_S = 1.0
PROBE_IDLE_S = 60.0

_QUIET = logging.getLogger("meshclient.breaker.redis-ops")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False
_QUIET.setLevel(logging.CRITICAL + 1)


#: Monotonic time (seconds) by which the call being served must be done, or None.
_CALL_ENDS: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "meshclient_breaker_call_ends", default=None)


@contextmanager
def call_time_left(seconds: float | None) -> Iterator[None]:
    """Storage operations inside see the call's time left: with less than one operation's
    timeout left, they use the local copy rather than risk the deadline on Redis."""
    if seconds is None:
        yield
        return
    token = _CALL_ENDS.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _CALL_ENDS.reset(token)


class RedisHealth:
    """Whether one Redis URL answers, shared by the breakers that use it."""

    def __init__(self, url: str, client: Any) -> None:
        self.url = url
        self.client = client
        self.up = True
        self.used_at = time.monotonic()
        self._lock = threading.Lock()
        self._prober: threading.Thread | None = None
        self.changes = 0  # how many times it went down or came back

    def __repr__(self) -> str:
        return (f"<RedisHealth {self.url} {'up' if self.up else 'down'} "
                f"changes={self.changes}>")

    def failed(self, error: BaseException) -> None:
        """A Redis operation failed: mark the URL unreachable (logged once) and probe."""
        with self._lock:
            if not self.up:
                return
            self.up = False
            self.changes += 1
            _events.logger.warning("breaker storage %s unreachable (%s: %s); breakers use "
                                   "their local state until it answers again", self.url,
                                   type(error).__name__, error)
            self._start_prober()

    def _start_prober(self) -> None:
        if self._prober is None or not self._prober.is_alive():
            self._prober = threading.Thread(target=self._probe, daemon=True,
                                            name="meshclient-breaker-redis-probe")
            self._prober.start()

    def _probe(self) -> None:
        import redis

        stop = threading.Event()
        while not stop.wait(PROBE_EVERY_S):
            if time.monotonic() - self.used_at > PROBE_IDLE_S:
                return  # nobody needs it: the next failure probes again
            try:
                self.client.ping()
            except (redis.RedisError, OSError):
                continue
            with self._lock:
                self.up = True
                self.changes += 1
                _events.logger.warning("breaker storage %s answers again; breakers share "
                                       "their state through it", self.url)
                return


class _GuardedClient:
    """The Redis client as `CircuitRedisStorage` sees it: a failing operation marks the
    URL unreachable before pybreaker handles the error."""

    def __init__(self, health: RedisHealth) -> None:
        self._health = health

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._health.client, name)

        def guarded(*args: Any, **kwargs: Any) -> Any:
            import redis

            try:
                return method(*args, **kwargs)
            except (redis.RedisError, OSError) as exc:
                self._health.failed(exc)
                raise redis.RedisError(str(exc)) from exc

        return guarded


#: Values read from Redis that the local copy takes over, so that it is this process's
#: latest view of the shared state (for ranking, and for running on while Redis is away).
_MIRRORED = frozenset({"state", "opened_at"})


class FallbackStorage(pybreaker.CircuitBreakerStorage):
    """pybreaker storage: Redis while it answers, the local copy otherwise."""

    def __init__(self, health: RedisHealth, namespace: str) -> None:
        super().__init__("redis")
        self.health = health
        self.local = pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)
        self._namespace = namespace
        self._remote: pybreaker.CircuitRedisStorage | None = None
        self._remote_lock = threading.Lock()

    def __repr__(self) -> str:
        return (f"<FallbackStorage {self._namespace} {self.health!r} "
                f"local={self.local.state}>")

    def _redis(self) -> pybreaker.CircuitRedisStorage | None:
        health = self.health
        now = health.used_at = time.monotonic()
        if not health.up:
            return None
        ends = _CALL_ENDS.get()
        if ends is not None and ends - now < REDIS_TIMEOUT_S:
            return None  # no time for a round trip that might wait the whole timeout
        remote = self._remote
        if remote is None:
            import redis

            with self._remote_lock:
                remote = self._remote
                if remote is None:
                    try:  # (its constructor writes the initial state)
                        remote = pybreaker.CircuitRedisStorage(
                            pybreaker.STATE_CLOSED, _GuardedClient(health),  # type: ignore[arg-type]
                            namespace=self._namespace)
                    except redis.RedisError:
                        return None
                    remote.logger = _QUIET
                    self._remote = remote
        return remote

    def _read(self, name: str) -> Any:
        remote = self._redis()
        if remote is not None:
            value = getattr(remote, name)
            if self.health.up:
                if name in _MIRRORED:  # the local copy follows what Redis last said
                    setattr(self.local, name, value)
                return value
        return getattr(self.local, name)

    def _write(self, name: str, *args: Any) -> None:
        if args:
            setattr(self.local, name, args[0])
        else:
            getattr(self.local, name)()
        remote = self._redis()
        if remote is not None:
            if args:
                setattr(remote, name, args[0])
            else:
                getattr(remote, name)()

    @property
    def state(self) -> str:
        return str(self._read("state"))

    @state.setter
    def state(self, state: str) -> None:
        self._write("state", state)

    def increment_counter(self) -> None:
        self._write("increment_counter")

    def reset_counter(self) -> None:
        self._write("reset_counter")

    def increment_success_counter(self) -> None:
        self._write("increment_success_counter")

    def reset_success_counter(self) -> None:
        self._write("reset_success_counter")

    @property
    def counter(self) -> int:
        return int(self._read("counter"))

    @property
    def success_counter(self) -> int:
        return int(self._read("success_counter"))

    @property
    def opened_at(self) -> Any:
        return self._read("opened_at")

    @opened_at.setter
    def opened_at(self, now: Any) -> None:
        self._write("opened_at", now)


_HEALTH: dict[str, RedisHealth] = {}
_HEALTH_LOCK = threading.Lock()


def health_for(url: str) -> RedisHealth:
    """The shared `RedisHealth` (and client) of a Redis URL; raises ValueError for a URL
    redis-py cannot use."""
    with _HEALTH_LOCK:
        health = _HEALTH.get(url)
        if health is None:
            import redis

            client = redis.Redis.from_url(url, socket_timeout=REDIS_TIMEOUT_S,
                                          socket_connect_timeout=REDIS_TIMEOUT_S)
            health = _HEALTH[url] = RedisHealth(url, client)
        return health
