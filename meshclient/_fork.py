"""Forked children (gunicorn and uWSGI workers, `multiprocessing` with "fork"): background
work restarts in the child on first use.

`os.fork()` copies memory but only the forking thread: in the child every refresher,
discovery and health-check thread is gone, a lock one of them held stays held forever, and
pooled connections are shared with the parent. Each object that owns such machinery calls
`track(self)`. In the child, right after the fork, `os.register_at_fork(after_in_child=…)`
calls each one's `_after_fork_in_child()`: cheap and without I/O (new locks, forget
inherited connections and dead threads). Nothing is started there: a child that execs or
exits at once pays nothing. `pending` is then true, and the first use (a request, a read of
the store's snapshot, `store.watch()`) calls `resume()`, which calls each object's
`_resume_after_fork()` to start its thread again, so a forked worker behaves like a fresh one.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from typing import Protocol

logger = logging.getLogger("meshclient")

#: True in a forked child until `resume()` has run (read on the request path: a plain global).
pending = False

_tracked: weakref.WeakSet[_Forkable] = weakref.WeakSet()
_lock = threading.Lock()


class _Forkable(Protocol):
    def _after_fork_in_child(self) -> None: ...

    def _resume_after_fork(self) -> None: ...


def track(owner: _Forkable) -> None:
    """Reset `owner` in a forked child and restart it on first use there."""
    with _lock:
        _tracked.add(owner)


def resume() -> None:
    """Restart the background work of every tracked object (once per fork; any thread)."""
    global pending
    with _lock:
        if not pending:
            return
        pending = False
        owners = list(_tracked)
    for owner in owners:
        try:
            owner._resume_after_fork()
        except Exception:  # one owner must not keep the others stopped
            logger.exception("restarting %r after fork failed", owner)


def _in_child() -> None:
    global _lock, pending
    _lock = threading.Lock()  # another thread may have held it at the fork
    for owner in list(_tracked):
        try:
            owner._after_fork_in_child()
        except Exception:  # pragma: no cover - the child must go on
            logger.exception("resetting %r after fork failed", owner)
    pending = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_in_child)
