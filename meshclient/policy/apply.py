"""Validate a fetched document and swap it in, or keep the last good policy.

An invalid document is logged once (the same bytes are not logged again), counted in
`stats.rejected`, reported as a `policy_rejected` event with its field-path errors, and
kept in `last_errors`; the store is not touched. A document that makes the parser raise
anything else (a recursion error on deeply nested JSON, a bug in a section's validator) is
rejected the same way, with the exception's type and a short message: the refresher never
dies from input, and `last_errors` never carries more of a document than a short excerpt
(`MAX_ERROR_CHARS` per message, `MAX_ERRORS` messages). A valid one that differs from the current
policy is swapped in whole (`PolicyStore.replace`: one reference assignment, so a request
sees one version; the registry keeps each endpoint's balancer and breaker state by name),
logged with its version and a summary of what changed, and written to the disk cache.

The split follows Envoy's xDS subscription and its callbacks: the control package fetches
documents (transports, schedule, the refresher thread) and knows nothing of policies; this
module, which the store hands it (`PolicyStore.applier`), decides what a document means.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import TYPE_CHECKING

from .. import _events
from ..control.refresh import RefreshStats
from ..errors import PolicyError
from ._model import Policy
from ._parse import policy_from_text
from .cache import read_cache, write_cache
from .summary import summarize
from .trust import RemoteTrust, warn_plaintext_control

if TYPE_CHECKING:
    from ._store import PolicyStore

logger = logging.getLogger("meshclient.control")

#: Bounds on what `last_errors` keeps of a rejected document's errors.
MAX_ERRORS = 20
MAX_ERROR_CHARS = 300


def _short(text: str) -> str:
    return text if len(text) <= MAX_ERROR_CHARS else text[:MAX_ERROR_CHARS - 1] + "…"


def _bounded(errors: tuple[str, ...]) -> tuple[str, ...]:
    out = tuple(_short(e) for e in errors[:MAX_ERRORS])
    if len(errors) > MAX_ERRORS:
        out += (f"… and {len(errors) - MAX_ERRORS} more errors",)
    return out


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

    def __repr__(self) -> str:
        return (f"<Applier {self.source} version={self.store.current.version!r} "
                f"{self.stats} last_errors={len(self.last_errors)}>")

    def reset_lock(self) -> None:
        """A new lock (a forked child: another thread may have held the old one)."""
        self._lock = threading.Lock()

    def apply(self, document: bytes, *, origin: str | None = None) -> bool:
        """Validate and apply `document`; True when the store now holds a new policy."""
        origin = origin or self.source
        try:
            policy = policy_from_text(document, origin=origin)
        except PolicyError as exc:
            self._reject(document, _bounded(exc.errors), origin)
            return False
        except Exception as exc:  # the parser must not kill the refresher (RecursionError too)
            reason = _short(str(exc).splitlines()[0] if str(exc) else "")
            self._reject(document, (f"document could not be parsed "
                                    f"({type(exc).__name__}): {reason}",), origin)
            return False
        return self.apply_policy(policy, document, origin=origin)

    def restore(self) -> bool:
        """Apply the disk cache's policy, if there is a valid one (before the first fetch)."""
        if self.cache is None:
            return False
        cached = read_cache(self.cache)
        if cached is None:
            return False
        return self.apply_policy(cached[0], cached[1], origin=f"cache {self.cache}",
                                 write=False)

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
            self.last_errors = errors  # before the count: whoever sees the count sees these
            self.stats.rejected += 1
            repeated = digest == self._last_rejected
            self._last_rejected = digest
        if not repeated:
            logger.error("policy from %s rejected, keeping %r: %s", origin,
                         self.store.current.version, "; ".join(errors))
            _events.emit(_events.POLICY_REJECTED, "", errors=list(errors), source=origin)
