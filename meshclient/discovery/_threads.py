"""Background threads of discovery (cache refresh, health checks, registration keepalive).

They are ordinary (non-daemon) threads, so a test or a process that forgets `close()` is
caught by leak checks rather than cut off mid-lookup. They must still never keep a process
from exiting: every owner is tracked here, and at interpreter shutdown, before Python
joins non-daemon threads, each owner's `close()` is called. That stops the threads and,
for a registration, revokes its lease, so a clean exit deregisters at once.

A forked child gets a fresh lock here (another thread may have held it at the fork).

The hook is `threading._register_atexit` (what `concurrent.futures` uses for the same
reason). Where it does not exist, threads fall back to daemons.
"""

from __future__ import annotations

import logging
import os
import threading
import weakref
from collections.abc import Callable
from typing import Protocol

logger = logging.getLogger("meshclient.discovery")


class _Closable(Protocol):
    def close(self) -> None: ...


_live: weakref.WeakSet[_Closable] = weakref.WeakSet()
_lock = threading.Lock()
_hooked = False
_register_atexit: Callable[[Callable[[], None]], None] | None = getattr(
    threading, "_register_atexit", None)


def _reset_lock() -> None:
    global _lock
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_lock)


def _close_all() -> None:
    with _lock:
        owners = list(_live)
    for owner in owners:
        try:
            owner.close()
        except Exception:  # pragma: no cover - shutdown must go on
            logger.exception("closing %r at exit failed", owner)


def start_thread(owner: _Closable, target: Callable[[], None], name: str) -> threading.Thread:
    """Start `target` on a thread named `name`; `owner.close()` runs at interpreter exit."""
    global _hooked
    daemon = _register_atexit is None
    if not daemon:
        with _lock:
            if not _hooked:
                try:
                    assert _register_atexit is not None
                    _register_atexit(_close_all)
                    _hooked = True
                except RuntimeError:  # interpreter already shutting down
                    daemon = True
            _live.add(owner)
    thread = threading.Thread(target=target, name=name, daemon=daemon)
    thread.start()
    return thread
