"""Validate a fetched document and swap it in, or keep the last good policy.

An invalid document is logged once (the same bytes are not logged again), counted in
`stats.rejected`, reported as a `policy_rejected` event with its field-path errors, and
kept in `last_errors`; the store is not touched. A valid one that differs from the current
policy is swapped in whole (`PolicyStore.replace`: one reference assignment, so a request
sees one version; the registry keeps each endpoint's balancer and breaker state by name),
logged with its version and a summary of what changed, and written to the disk cache.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from dataclasses import dataclass

from .. import _events
from ..errors import PolicyError
from ..policy import Policy, PolicyStore, policy_from_text
from ..security.trust import RemoteTrust, warn_plaintext_control
from .cache import write_cache
from .summary import summarize

logger = logging.getLogger("meshclient.control")


@dataclass(slots=True)
class RefreshStats:
    """Counters of one refresher (read them for tests, status pages, metrics)."""

    fetches: int = 0
    not_modified: int = 0
    unchanged: int = 0
    applied: int = 0
    rejected: int = 0
    errors: int = 0


class Applier:
    """Turns documents into swaps for one store. Thread-safe (one lock, no I/O under it
    except the cache write, which is local disk)."""

    def __init__(self, store: PolicyStore, source: str, cache: str | None = None) -> None:
        self.store = store
        self.source = source
        self.cache = cache
        self.stats = RefreshStats()
        self.last_errors: tuple[str, ...] = ()
        self._last_rejected: bytes | None = None
        self._lock = threading.Lock()
        self.trust = RemoteTrust(store.current)  # docs/security.md: what a remote policy may do
        warn_plaintext_control(source)

    def apply(self, document: bytes, *, origin: str | None = None) -> bool:
        """Validate and apply `document`; True when the store now holds a new policy."""
        origin = origin or self.source
        try:
            policy = policy_from_text(document, origin=origin)
        except PolicyError as exc:
            self._reject(document, exc.errors, origin)
            return False
        return self.apply_policy(policy, document, origin=origin)

    def apply_policy(self, policy: Policy, document: bytes | None, *, origin: str,
                     write: bool = True) -> bool:
        refused = self.trust.errors(policy, self.store.current)
        if refused:
            self._reject(document or policy.version.encode(), tuple(refused), origin)
            return False
        with self._lock:
            self.last_errors = ()
            self._last_rejected = None
            old = self.store.current
            if policy == old:
                self.stats.unchanged += 1
                return False
            self.store.replace(policy)
            self.trust.applied(policy)
            self.stats.applied += 1
        summary = summarize(old, policy)
        logger.info("policy %r applied from %s (was %r): %s", policy.version, origin,
                    old.version, summary)
        _events.emit(_events.POLICY_APPLIED, "", version=policy.version, summary=summary,
                     source=origin)
        if write and self.cache is not None and document is not None:
            write_cache(self.cache, document)
        return True

    def _reject(self, document: bytes, errors: tuple[str, ...], origin: str) -> None:
        digest = hashlib.sha256(document).digest()
        with self._lock:
            self.stats.rejected += 1
            self.last_errors = errors
            repeated = digest == self._last_rejected
            self._last_rejected = digest
        if not repeated:
            logger.error("policy from %s rejected, keeping %r: %s", origin,
                         self.store.current.version, "; ".join(errors))
            _events.emit(_events.POLICY_REJECTED, "", errors=list(errors), source=origin)
