"""Running a check (`security.checks`) with a wall-clock bound and a failure mode: in a
worker thread for a plain function (it cannot stall the event loop or the server thread
past its timeout), awaited with `asyncio.wait_for` for an `async` one.

A check that raises, times out or answers something other than `Allow`/`Deny` has failed:
with `fail_open` the request proceeds, else it is denied 403 (Envoy ext_authz's
`failure_mode_allow: false` and `status_on_error`). A timed-out plain function keeps its
worker until it returns; the pool is bounded (`MAX_WORKERS`), so checks that hang for good
make later checks time out too (and fail by their mode) rather than pile up threads.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import os
import queue
import threading
from dataclasses import dataclass
from typing import Any

from .checks import Allow, CheckFn, Deny, RequestView, Verdict

logger = logging.getLogger("meshclient.security")

MAX_WORKERS = 16
#: Envoy ext_authz's default timeout.
DEFAULT_TIMEOUT_S = 0.2


class _Workers:
    """At most `size` daemon threads running checks (a daemon thread never holds up the
    process's exit, as a stuck check in a `ThreadPoolExecutor` would)."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._jobs: queue.SimpleQueue[tuple[concurrent.futures.Future[Any], RunCheck]] = (
            queue.SimpleQueue())
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, action: RunCheck) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        self._jobs.put((future, action))
        with self._lock:
            if self._idle == 0 and self._threads < self._size:
                self._threads += 1
                threading.Thread(target=self._work, name="meshclient-check",
                                 daemon=True).start()
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            future, action = self._jobs.get()
            with self._lock:
                self._idle -= 1
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(_call_in_thread(action))
            except BaseException as exc:  # the check's failure, reported to its caller
                future.set_exception(exc)


_pool: _Workers | None = None
_pool_lock = threading.Lock()
_pool_pid = 0


@dataclass(frozen=True, slots=True)
class RunCheck:
    """An action for the caller: run `check` on `view` (see module docstring)."""

    name: str
    check: CheckFn
    view: RequestView
    timeout_s: float = DEFAULT_TIMEOUT_S
    fail_open: bool = False


def _executor() -> _Workers:
    global _pool, _pool_pid
    pool = _pool
    if pool is not None and _pool_pid == os.getpid():
        return pool
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():  # a forked child has no workers
            _pool = _Workers(MAX_WORKERS)
            _pool_pid = os.getpid()
        return _pool


def _failed(action: RunCheck, why: str) -> Verdict:
    logger.warning("check %s %s; %s", action.name, why,
                   "allowing (fail open)" if action.fail_open else "denying (fail closed)")
    return Allow() if action.fail_open else Deny(403)


def _verdict(action: RunCheck, result: Any) -> Verdict:
    if isinstance(result, (Allow, Deny)):
        return result
    return _failed(action, f"answered {type(result).__name__}, not Allow or Deny")


def _call_in_thread(action: RunCheck) -> Any:
    result = action.check(action.view)
    if inspect.isawaitable(result):  # a plain function that returned a coroutine
        async def wait() -> Any:
            return await result
        return asyncio.run(wait())
    return result


def run_check_sync(action: RunCheck) -> Verdict:
    """Run the check from a thread without an event loop (WSGI, sync handlers)."""
    future = _executor().submit(action)
    try:
        return _verdict(action, future.result(action.timeout_s))
    except concurrent.futures.TimeoutError:
        return _failed(action, f"took longer than {action.timeout_s:g}s")
    except Exception as exc:
        return _failed(action, f"raised {type(exc).__name__}: {exc}")


async def run_check_async(action: RunCheck) -> Verdict:
    """Run the check from a task (ASGI, async handlers)."""
    try:
        if inspect.iscoroutinefunction(action.check):
            result = await asyncio.wait_for(action.check(action.view), action.timeout_s)
        else:
            loop = asyncio.get_running_loop()
            result = await asyncio.wait_for(
                asyncio.wrap_future(_executor().submit(action), loop=loop),
                action.timeout_s)
        return _verdict(action, result)
    except asyncio.TimeoutError:
        return _failed(action, f"took longer than {action.timeout_s:g}s")
    except Exception as exc:
        return _failed(action, f"raised {type(exc).__name__}: {exc}")
