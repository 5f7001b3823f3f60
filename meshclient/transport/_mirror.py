"""The shells' side of mirroring: a copy leaves the caller's path through a bounded queue to
background senders, and is sent once from there.

- **The caller only enqueues** (`send_sync` / `send_async`: a length check and a put of the
  caller's own request). The sender builds the marked copy (`routing/mirror.py`), its body
  the original's bytes object, shared, not copied.
- **Senders.** At most `gate.limit` (16) copies are in flight per transport. The sync shell's
  senders are daemon threads, the async shell's are tasks on the caller's event loop; they
  start on demand while copies wait and none is idle, and end after `IDLE_S` without work.
  A copy picks one endpoint of the mirror service, goes once through the inner transport
  (no retries, no hedges), has its body read and dropped, and feeds the endpoint's load
  metric like any request. Nothing it does reaches the caller.
- **Drops.** A copy that finds `MIRROR_QUEUE` copies already waiting is dropped (as Envoy's
  shadow policy gives up rather than delay the original): counted in `gate.stats.dropped`,
  the `meshclient.mirror.dropped` metric and `mirror_dropped` in the mirror service's
  status, and logged at most once per `DROP_LOG_S` with the count since the last line.
- **Close.** `close()` / `aclose()` stops the senders; copies still waiting are dropped; the
  join is bounded by `CLOSE_S` (a copy stuck on a hanging target ends by its own timeout).
- **Fork.** A child process starts with no senders and an empty queue
  (`os.register_at_fork`); its first copy starts them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Iterator
from typing import Any

import httpx

from .._core.actions import Mirror
from .._core.address import address_request
from .._runtime import Registry
from ..policy import Service
from ..routing.gate import MirrorGate
from ..routing.mirror import mirror_copy
from ..telemetry import providers
from ..telemetry.semconv import MESH_SERVICE

logger = logging.getLogger("meshclient.routing")

#: Copies waiting for a sender, per transport; one more is dropped.
MIRROR_QUEUE = 256
#: A sender with nothing to do for this long ends (one starts again on demand).
IDLE_S = 10.0
#: Longest wait for the senders in `close()` / `aclose()`.
CLOSE_S = 1.0
#: Shortest time between two log lines about dropped copies.
DROP_LOG_S = 10.0

_STOP = None
_SENDERS: weakref.WeakSet[MirrorSender] = weakref.WeakSet()


def _forget_senders_after_fork() -> None:  # the child has none of the parent's threads
    for sender in list(_SENDERS):
        sender._reset()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_senders_after_fork)


class MirrorSender:
    """One per transport. **Parameters:** `registry` — where the mirror service's balancer
    lives; `gate` — copies in flight and counters; `queue_size` — copies that may wait."""

    def __init__(self, registry: Registry, gate: MirrorGate | None = None,
                 queue_size: int = MIRROR_QUEUE) -> None:
        if queue_size < 0:
            raise ValueError(f"mirror queue_size must be at least 0: {queue_size!r}")
        self.registry = registry
        self.gate = gate if gate is not None else MirrorGate()
        self.queue_size = queue_size
        self._reset()
        _SENDERS.add(self)

    def _reset(self) -> None:
        self._closed = False
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[tuple[Any, Mirror] | None] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._aqueue: asyncio.Queue[tuple[Any, Mirror]] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._aidle = 0
        self._drops_unlogged = 0
        self._drop_logged_at = time.monotonic() - DROP_LOG_S
        self._drop_lock = threading.Lock()

    @property
    def queued(self) -> int:
        """Copies waiting for a sender."""
        aqueue = self._aqueue
        return self._queue.qsize() + (aqueue.qsize() if aqueue is not None else 0)

    # -- drops ----------------------------------------------------------------------------

    def _drop(self, action: Mirror, counted: bool = False) -> None:
        """`counted`: the gate has counted it already."""
        service = action.service.name if isinstance(action.service, Service) else ""
        with self._drop_lock:
            if not counted:
                self.gate.stats.dropped += 1
            self._drops_unlogged += 1
            now = time.monotonic()
            log = now - self._drop_logged_at >= DROP_LOG_S
            if log:
                count, self._drops_unlogged = self._drops_unlogged, 0
                self._drop_logged_at = now
        if log:
            logger.warning("meshclient: %d mirror copies dropped since the last report (the "
                           "latest to %s): %d waiting, %d in flight", count, service,
                           self.queued, self.gate.in_flight)
        with contextlib.suppress(Exception):  # telemetry never fails the caller
            if isinstance(action.service, Service):
                self.registry.runtime(action.service).balancer.mirror_dropped += 1
            instruments = providers.instruments()
            if instruments is not None:
                instruments.mirror_dropped.add(1, {MESH_SERVICE: service})

    # -- sync -----------------------------------------------------------------------------

    def __repr__(self) -> str:
        gate = self.gate
        return (f"<MirrorSender in_flight={gate.in_flight}/{gate.limit} "
                f"tasks={len(self._tasks)} {gate.stats}>")

    def send_sync(self, inner: httpx.BaseTransport, action: Mirror) -> None:
        """Queue one copy, or drop it; never waits, never raises."""
        q = self._queue
        if self._closed or q.qsize() >= self.queue_size:
            self._drop(action)
            return
        q.put((inner, action))
        if self._idle == 0 and len(self._threads) < self.gate.limit:
            self._spawn_thread()

    def _spawn_thread(self) -> None:
        with self._lock:
            if len(self._threads) >= self.gate.limit or self._closed:
                return
            thread = threading.Thread(target=self._work, args=(self._queue,),
                                      name="meshclient-mirror", daemon=True)
            self._threads.append(thread)
        try:
            thread.start()
        except RuntimeError:  # no more threads: the copy waits for a running sender
            with self._lock:
                self._threads.remove(thread)

    def _work(self, q: queue.SimpleQueue[tuple[Any, Mirror] | None]) -> None:
        me = threading.current_thread()
        while True:
            with self._lock:
                self._idle += 1
            try:
                item = q.get(timeout=IDLE_S)
            except queue.Empty:
                item = _STOP
            with self._lock:
                self._idle -= 1
                if item is _STOP and (q.qsize() == 0 or self._closed or q is not self._queue):
                    if me in self._threads:
                        self._threads.remove(me)
                    return
            if item is not _STOP:
                self._send_sync(*item)

    def _send_sync(self, inner: httpx.BaseTransport, action: Mirror) -> None:
        with self._copying(action) as copy:
            if copy.request is not None:
                response = inner.handle_request(copy.request)
                try:
                    response.read()
                finally:
                    response.close()
                copy.status = response.status_code

    @contextlib.contextmanager
    def _copying(self, action: Mirror) -> Iterator[_Copy]:
        """The bookkeeping around one copy's send, the same for both shells and free of
        I/O: the shared gate, the endpoint pick and its measurement; a failure is logged at
        debug level and swallowed (a mirror copy never fails the caller's request)."""
        copy = _Copy()
        if not self.gate.try_enter():  # a gate shared with other senders is full
            self._drop(action, counted=True)
            yield copy  # nothing to send
            return
        ok = False
        try:
            try:
                plan = _plan(self.registry, action)
            except Exception as exc:
                _failed(action, exc)
                plan = None
            if plan is None:
                yield copy  # nothing to send
                return
            copy.request, state, start = plan
            try:
                yield copy
                ok = copy.status is not None and copy.status < 500
            except Exception as exc:
                _failed(action, exc)
            finally:
                state.end(start, None, ok)
        finally:
            self.gate.leave(ok)

    def close(self, timeout: float = CLOSE_S) -> None:
        """Stop the sender threads (waiting at most `timeout` in all); drop what waits."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                self._drop(item[1])
        for _ in threads:
            self._queue.put(_STOP)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    # -- async ----------------------------------------------------------------------------

    def send_async(self, inner: httpx.AsyncBaseTransport, action: Mirror) -> None:
        """Queue one copy for a sender task on the running loop, or drop it."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._drop(action)
            return
        q = self._aqueue
        if loop is not self._loop or q is None:
            q = self._bind(loop)
        if self._closed or q.qsize() >= self.queue_size:
            self._drop(action)
            return
        q.put_nowait((inner, action))
        if self._aidle == 0 and len(self._tasks) < self.gate.limit:
            task = loop.create_task(self._awork(q))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> asyncio.Queue[tuple[Any, Mirror]]:
        """A new loop (or the first): its own queue and senders."""
        self._loop = loop
        q: asyncio.Queue[tuple[Any, Mirror]] = asyncio.Queue()
        self._aqueue = q
        self._tasks = set()
        self._aidle = 0
        return q

    async def _awork(self, q: asyncio.Queue[tuple[Any, Mirror]]) -> None:
        while True:
            self._aidle += 1
            try:
                inner, action = await asyncio.wait_for(q.get(), IDLE_S)
            except asyncio.TimeoutError:
                if q.empty():
                    return
                continue
            finally:
                self._aidle -= 1
            await self._send_async(inner, action)

    async def _send_async(self, inner: httpx.AsyncBaseTransport, action: Mirror) -> None:
        with self._copying(action) as copy:
            if copy.request is not None:
                response = await inner.handle_async_request(copy.request)
                try:
                    await response.aread()
                finally:
                    await response.aclose()
                copy.status = response.status_code

    async def aclose(self, timeout: float = CLOSE_S) -> None:
        """Stop the sender tasks (cancelled; waiting at most `timeout`); drop what waits."""
        self._closed = True
        q = self._aqueue
        while q is not None and not q.empty():
            self._drop(q.get_nowait()[1])
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks and self._loop is asyncio.get_running_loop():
            await asyncio.wait(tasks, timeout=timeout)
        if self._threads:  # senders of the sync shell, if this one was used from both
            self.close(timeout)


class _Copy:
    """One mirror copy as a shell sends it: the addressed `request` (None: nothing to send)
    and the answer's `status`, which `MirrorSender._copying` measures."""

    __slots__ = ("request", "status")

    def __init__(self) -> None:
        self.request: httpx.Request | None = None
        self.status: int | None = None

    def __repr__(self) -> str:
        url = None if self.request is None else str(self.request.url)
        return f"<_Copy {url} status={self.status}>"


def _failed(action: Mirror, exc: Exception) -> None:
    logger.debug("mirror copy to %s failed: %r", action.request.url.host, exc)


def _plan(registry: Registry, action: Mirror) -> tuple[httpx.Request, Any, int] | None:
    assert isinstance(action.service, Service)
    copy = mirror_copy(action.request, action.service)  # built here, off the caller's path
    if copy is None:
        return None
    runtime = registry.runtime(action.service)
    state = runtime.balancer.pick()
    if state is None:
        return None
    request = address_request(copy, action.service, state.endpoint)
    return request, state, state.begin(runtime.clock.now_ns())
