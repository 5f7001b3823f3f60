"""The call's deadline as a wall-clock bound on every attempt, both shells.

httpx's timeouts bound each socket operation, not the whole exchange: a peer sending one
byte every 0.2 s never trips a 1 s read timeout, so headers or a body dripped that way
would run far past `timeout.total`. So each attempt is *watched*:

- `arm` registers the attempt's deadline (the call's, on the monotonic clock) with ONE
  shared timer thread, a heap of deadlines (not a thread or a task per request). Disarming
  is a flag (`Watch.disarm`); the heap drops disarmed entries as they come due, and
  compacts itself when it doubles.
- When a deadline passes while its attempt is still armed, the timer shuts the attempt's
  socket down (`socket.shutdown`), which ends any read or write blocked on it at once, in
  either shell. The socket is the response's `network_stream` (an httpcore extension) once
  headers arrived; before that it is found through the inner httpx transport's pool (the
  pool request whose `extensions` are the attempt's). Only an HTTP/1.1 connection is shut
  down (an HTTP/2 one carries other requests). Anything unexpected there (another inner
  transport, another httpcore) leaves the attempt to its per-read timeout, which is capped
  at the time left when it starts.
- The response body checks the deadline between chunks (`_streams.py`), and an error
  reading it after the timer fired becomes `DeadlineExceeded`.

The shells call `arm` before sending, `Watch.failed(error)` when sending raised, and
`watch_sync` / `watch_async` (in `_streams.py`) on the response, whose close disarms it.
"""

from __future__ import annotations

import heapq
import socket
import threading
import time
from collections import deque
from typing import Any

import httpx

from ..errors import DeadlineExceeded

_monotonic_ns = time.monotonic_ns
_IDLE_NS = 5_000_000_000  # the timer thread ends after this long with nothing armed
_POLL_NS = 50_000_000  # while busy it looks at new watches this often
_SLACK_NS = 2_000_000  # its shortest sleep (a watch fires up to this late)
_NEVER = 1 << 62


class Watch:
    """One attempt's deadline. `fired`: the timer acted on it (the deadline passed while
    armed); `done`: disarmed (the attempt ended, its response was closed)."""

    __slots__ = ("at", "done", "fired", "inner", "request", "service", "stream")

    at: int  # monotonic ns
    done: bool
    fired: bool
    request: httpx.Request
    inner: object  # the inner transport the attempt went through
    service: str
    stream: Any  # the response's network stream, once known

    def disarm(self) -> None:
        """The attempt is over; after this returns the timer never touches its socket.
        (The watch lets go of the request at once: the timer keeps disarmed watches until
        it next looks, and requests kept alive that long would cost the collector.)"""
        self._end()
        self.request = self.inner = self.stream = None  # type: ignore[assignment]

    def _end(self) -> None:
        self.done = True
        if _monotonic_ns() >= self.at:  # the timer may be acting on it now: wait for it
            with _TIMER.lock:
                pass

    def expired(self, error: BaseException | None) -> DeadlineExceeded:
        exc = DeadlineExceeded(f"deadline of the call to {self.service!r} passed during "
                               f"its attempt to {self.request.url.netloc.decode()}; the "
                               f"attempt was cut short", request=self.request,
                               service=self.service)
        exc.__cause__ = error
        return exc

    def failed(self, error: Exception) -> Exception:
        """The error sending the attempt raised, as the caller should see it: the
        deadline's when the timer cut the attempt short."""
        self._end()
        out = self.expired(error) if self.fired else error
        self.request = self.inner = self.stream = None  # type: ignore[assignment]
        return out

    def _socket(self) -> Any:
        """The attempt's socket (a `socket.socket`, or asyncio's `TransportSocket`), or
        None."""
        stream = self.stream
        if stream is None:
            stream = _pool_stream(self.inner, self.request.extensions)
        if stream is None:
            return None
        sock = stream.get_extra_info("socket")
        return sock if hasattr(sock, "shutdown") else None


def _pool_stream(inner: object, extensions: dict[str, Any]) -> Any:
    """The network stream of the HTTP/1.1 connection serving the request whose extensions
    are `extensions`, found in httpx's pool (httpcore's private shape: anything else gives
    None)."""
    try:
        pool = inner._pool  # type: ignore[attr-defined]
        for pending in list(pool._requests):
            if pending.request.extensions is extensions:
                connection = pending.connection
                if connection is None:
                    return None  # still waiting for a connection: the pool timeout bounds it
                http = getattr(connection, "_connection", connection)
                if not type(http).__name__.endswith("HTTP11Connection"):
                    return None
                return http._network_stream
    except (AttributeError, TypeError):
        return None
    return None


class _Timer:
    """The shared timer: one daemon thread, started on demand, ended when idle.

    `push` (every attempt) appends to a deque and compares two integers; it takes the
    lock (and wakes the thread) only when the new deadline is sooner than the thread's
    next wake-up. While watches come in, the thread wakes every `_POLL_NS` to move them
    into its heap (dropping those already disarmed) and at each armed deadline; it never
    sleeps less than `_SLACK_NS`, and it ends after `_IDLE_S` with nothing to watch."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._wake = threading.Condition(self.lock)
        self._inbox: deque[Watch] = deque()
        self._heap: list[tuple[int, int, Watch]] = []
        self._next_at = _NEVER  # when the thread wakes next (_NEVER: no thread)
        self._thread: threading.Thread | None = None
        self._compact_at = 1024
        self.fired = 0  # how many attempts it cut short

    def push(self, watch: Watch) -> None:
        self._inbox.append(watch)
        if watch.at < self._next_at:  # sooner than the thread will look (or no thread)
            with self.lock:
                if self._thread is None:
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="meshclient-deadlines")
                    self._thread.start()
                self._next_at = watch.at
                self._wake.notify()

    def _take_inbox(self) -> bool:
        """Move new watches into the heap; whether anything is left to watch."""
        heap, inbox = self._heap, self._inbox
        while inbox:
            watch = inbox.popleft()
            if not watch.done:
                heapq.heappush(heap, (watch.at, id(watch), watch))
        if len(heap) >= self._compact_at:
            heap[:] = [e for e in heap if not e[2].done]
            heapq.heapify(heap)
            self._compact_at = max(1024, 2 * len(heap))
        while heap and heap[0][2].done:
            heapq.heappop(heap)
        return bool(heap)

    def _run(self) -> None:
        heap, inbox = self._heap, self._inbox
        with self.lock:
            busy_at = _monotonic_ns()
            while True:
                now = _monotonic_ns()
                if self._take_inbox():
                    busy_at = now
                elif now - busy_at > _IDLE_NS:
                    self._next_at, self._thread = _NEVER, None
                    if not inbox:  # (a push that read the old `_next_at` is in the inbox)
                        return
                    self._thread = threading.current_thread()
                    continue
                head = heap[0][0] if heap else _NEVER
                if head <= now:
                    self._fire(heapq.heappop(heap)[2])
                    continue
                wake_at = min(head, now + _POLL_NS)
                self._next_at = wake_at
                if inbox:  # arrived while this looked: look again before sleeping
                    continue
                self._wake.wait(max(wake_at - now, _SLACK_NS) / 1e9)

    def _fire(self, watch: Watch) -> None:
        """Under the lock: `disarm` waits for this, so a socket is never shut down after
        its attempt ended (and its connection went back to the pool)."""
        if watch.done:
            return
        watch.fired = True
        self.fired += 1
        try:
            sock = watch._socket()
            if sock is not None:
                sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # already closed


_TIMER = _Timer()


def arm(request: httpx.Request, left_ns: int | None, inner: object, service: str,
        ) -> Watch | None:
    """`watch_attempt`, or None when the attempt has no deadline (a passthrough call)."""
    return None if left_ns is None else watch_attempt(request, left_ns, inner, service)


def watch_attempt(request: httpx.Request, left_ns: int, inner: object, service: str,
                  ) -> Watch:
    """Watch the attempt `request` (sent through `inner`) until `left_ns` from now."""
    watch = Watch.__new__(Watch)
    watch.at = _monotonic_ns() + left_ns
    watch.done = watch.fired = False
    watch.request, watch.inner, watch.service, watch.stream = request, inner, service, None
    _TIMER.push(watch)
    return watch


def fired_count() -> int:
    """How many attempts the timer has cut short in this process."""
    return _TIMER.fired
