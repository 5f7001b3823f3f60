"""`PolicyStore`: the shared, refreshable holder of the current policy."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ._model import Policy

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

    def __init__(self, policy: Policy | None = None) -> None:
        self._snapshot: tuple[int, Policy] = (1, policy if policy is not None else Policy())
        self._lock = threading.Lock()  # serialises writers only; readers never take it
        self._subscribers: list[Subscriber] = []
        self._attachments: dict[str, Any] = {}

    @property
    def current(self) -> Policy:
        return self._snapshot[1]

    @property
    def generation(self) -> int:
        """Increases by one with every `replace()`."""
        return self._snapshot[0]

    @property
    def snapshot(self) -> tuple[int, Policy]:
        return self._snapshot

    def replace(self, policy: Policy) -> Policy:
        """Make `policy` current; returns the previous one."""
        if not isinstance(policy, Policy):
            raise TypeError(f"PolicyStore.replace needs a Policy, not {type(policy).__name__}")
        with self._lock:
            generation, old = self._snapshot
            self._snapshot = (generation + 1, policy)
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

    def __repr__(self) -> str:
        generation, policy = self._snapshot
        return (f"<PolicyStore generation={generation} version={policy.version!r} "
                f"services={sorted(policy.services)}>")


_default: PolicyStore | None = None
_default_lock = threading.Lock()


def default_store() -> PolicyStore:
    """The process-wide store, built from the environment on first use (`Policy.from_env()`).

    Raises `PolicyError` when the environment is invalid, so a bad deployment fails at start-up.
    """
    global _default
    store = _default
    if store is None:
        with _default_lock:
            if _default is None:
                _default = PolicyStore(Policy.from_env())
            store = _default
    return store


def reset_default_store() -> None:
    """Forget the process-wide store (tests; a forked child that must re-read its env)."""
    global _default
    with _default_lock:
        _default = None
