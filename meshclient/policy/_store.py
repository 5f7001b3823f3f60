"""`PolicyStore`: the shared, refreshable holder of the current policy."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from .. import _extensions, _fork
from ..control import RefreshThread
from ..errors import PolicyError
from ._model import Policy
from .apply import Applier

logger = logging.getLogger("meshclient.policy")

Subscriber = Callable[[Policy, Policy], None]


class PolicyStore:
    """Holds the current `Policy` and swaps it atomically.

    A reader takes `store.current` once per request, so a request sees one version from
    start to end. `replace()` publishes a new snapshot (a single reference assignment) and
    then calls subscribers outside any lock, oldest first, with `(old, new)`.

    Usage:
    ```python
    store = PolicyStore(Policy.load("mesh.toml"))
    client = httpx.Client(transport=MeshTransport(policy=store))
    store.replace(Policy.load("mesh-v2.toml"))       # every client follows at once
    ```

    Thread- and task-safe; `current` never blocks.
    """

    #: The policy in force: read it once per request. Read-only (`replace()` sets it); an
    #: attribute, not a property, since every request reads it. `snapshot` gives it with
    #: its generation, as one pair.
    current: Policy

    def __init__(self, policy: Policy | None = None) -> None:
        self._snapshot: tuple[int, Policy] = (1, policy if policy is not None else Policy())
        object.__setattr__(self, "current", self._snapshot[1])
        self._lock = threading.Lock()  # serialises writers only; readers never take it
        self._subscribers: list[Subscriber] = []
        self._attachments: dict[str, Any] = {}
        self._refresher: RefreshThread | None = None  # once watched
        #: the `meshclient.xds.XdsClient` following an xDS server, once attached
        self.xds: Any = None
        _fork.track(self)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "current":
            raise AttributeError("PolicyStore.current is read-only: use replace(policy)")
        object.__setattr__(self, name, value)

    @property
    def generation(self) -> int:
        """Increases by one with every `replace()`."""
        if _fork.pending:
            _fork.resume()
        return self._snapshot[0]

    @property
    def snapshot(self) -> tuple[int, Policy]:
        if _fork.pending:
            _fork.resume()
        return self._snapshot

    def _after_fork_in_child(self) -> None:
        """A forked child: another thread may have held the writer lock at the fork. The
        refresher resets itself and restarts on first use (`meshclient/_fork.py`)."""
        object.__setattr__(self, "_lock", threading.Lock())

    def _resume_after_fork(self) -> None:
        pass

    def replace(self, policy: Policy) -> Policy:
        """Make `policy` current; returns the previous one."""
        if not isinstance(policy, Policy):
            raise TypeError(f"PolicyStore.replace needs a Policy, not {type(policy).__name__}")
        with self._lock:
            generation, old = self._snapshot
            self._snapshot = (generation + 1, policy)
            object.__setattr__(self, "current", policy)
            subscribers = list(self._subscribers)
        logger.info("policy %r applied (generation %d, was %r)", policy.version,
                    generation + 1, old.version)
        for callback in subscribers:
            try:
                callback(old, policy)
            except Exception:  # a subscriber must not stop the others
                logger.exception("policy subscriber %r failed", callback)
        return old

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(old, new)` after every swap; returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def attachment(self, key: str, factory: Callable[[], Any]) -> Any:
        """Process-wide state that lives as long as the store (the runtime registry,
        refreshers), created once under the writer lock."""
        value = self._attachments.get(key)
        if value is None:
            with self._lock:
                value = self._attachments.get(key)
                if value is None:
                    value = self._attachments[key] = factory()
        return value

    def applier(self, source: str, cache: str | None = None) -> Applier:
        """What turns documents fetched from `source` into swaps of this store: validation,
        the trust checks, the swap, the disk cache (`meshclient.policy.apply`). The control
        package's refresher knows transports and schedules only, and asks for this."""
        return Applier(self, source, cache)

    def watch(self, url: str, **options: Any) -> RefreshThread:
        """Keep this store in step with a control endpoint; returns the `RefreshThread`.

        `url` is `http(s)://…` (polled with ETag / Last-Modified, long-polled when the server
        answers with `X-Consul-Index`) or `etcd://host:port/key` (watched). Options:
        `interval_s`, `token`, `cache`, `verify`, `long_poll_wait_s`, `timeout_s` (see
        `meshclient.control.RefreshThread`) and `wait` (seconds to block for the first
        answer; default 0). Started once per store: watching the same URL again returns
        the running refresher, another URL raises `PolicyError`. `close()` stops it. In a
        forked child the refresher inherited from the parent is started again first.
        """
        if _fork.pending:
            _fork.resume()
        wait = float(options.pop("wait", 0.0))
        with self._lock:
            current = self._refresher
            if current is not None:
                if current.url != url:
                    raise PolicyError(f"store already watches {current.url!r}; close() it "
                                      f"before watching {url!r}")
                return current
            refresher = self._refresher = RefreshThread(self, url, **options)
        refresher.start()  # outside the lock: restoring the cache calls replace()
        if wait > 0:
            refresher.wait_ready(wait)
        return refresher

    @property
    def refresher(self) -> RefreshThread | None:
        """The running `RefreshThread`, or None."""
        if _fork.pending:
            _fork.resume()
        return self._refresher

    def close(self) -> None:
        """Stop background work: the control refresher and any attachment with `close()`."""
        with self._lock:
            refresher, self._refresher = self._refresher, None
            attachments = list(self._attachments.values())
            xds, self.xds = self.xds, None
        if xds is not None:
            xds.close()
        if refresher is not None:
            refresher.close()
        for item in attachments:
            close = getattr(item, "close", None)
            if callable(close):
                close()

    def __repr__(self) -> str:
        generation, policy = self._snapshot
        return (f"<PolicyStore generation={generation} version={policy.version!r} "
                f"services={sorted(policy.services)}>")


_default: PolicyStore | None = None
_default_lock = threading.Lock()


def default_store() -> PolicyStore:
    """The process-wide store, built from the environment on first use (`Policy.from_env()`).

    Raises `PolicyError` when the environment is invalid, so a bad deployment fails at start-up.
    With `MESHCLIENT_CONTROL_URL` set it also starts the refresher (restoring
    `MESHCLIENT_POLICY_CACHE` first) and waits up to 2 s for the endpoint's first answer.
    With an xDS bootstrap (`GRPC_XDS_BOOTSTRAP`, …) it also follows that xDS server
    (docs/xds.md).
    """
    global _default
    if _fork.pending:
        _fork.resume()
    store = _default
    if store is None:
        with _default_lock:
            if _default is None:
                _default = _from_env()
            store = _default
    return store


def _from_env() -> PolicyStore:
    from ._env import settings_from_env

    settings = settings_from_env()
    store = PolicyStore(Policy.from_env())
    if settings.control_url:  # live policy from the control endpoint
        store.watch(settings.control_url, interval_s=settings.control_interval,
                    token=settings.control_token, cache=settings.policy_cache,
                    wait=min(2.0, settings.control_interval))
    for start in _extensions.STORE_STARTERS:  # xDS, when a bootstrap is present
        start(store, settings)
    return store


def _reset_default_lock() -> None:
    global _default_lock
    _default_lock = threading.Lock()  # a forked child: another thread may have held it


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_default_lock)


def reset_default_store() -> None:
    """Forget the process-wide store (tests; a forked child that must re-read its env),
    stopping its background work."""
    global _default
    with _default_lock:
        store, _default = _default, None
    if store is not None:
        store.close()
