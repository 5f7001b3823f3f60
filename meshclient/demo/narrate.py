"""Mesh events (`meshclient._events`) as short narration lines.

The listener runs on whatever thread emits, must be fast and must not raise, so it only
appends to a deque; the renderer drains it from the event loop. Retries and refused
retries are counted, not narrated one by one (there can be hundreds a second).
`budget_exhausted` with `reason="attempts"` (every attempt used) is not a budget refusal
and is counted apart.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from .. import _events

#: Events narrated line by line (the rest are counted or ignored).
NARRATED = (_events.EJECTED, _events.RETURNED, _events.PANIC,
            _events.POLICY_APPLIED)


class Narrator:
    """Subscribes on `start()`, unsubscribes on `stop()`. Thread-safe."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        self._lines: deque[str] = deque(maxlen=500)
        self._lock = threading.Lock()
        self.retries = 0
        self.refused = 0
        self.gave_up = 0
        self._refused_noted: set[str] = set()
        self.policies: set[str] = set()
        self._unsubscribe: Callable[[], None] | None = None
        self._probing: dict[tuple[str, str], str] = {}  # breakers now half-open

    def start(self) -> None:
        self._unsubscribe = _events.subscribe(self._on_event)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def _name(self, attrs: Mapping[str, Any]) -> str:
        endpoint = str(attrs.get("endpoint", "?"))
        return self.names.get(endpoint, endpoint)

    def _on_event(self, kind: str, service: str, attrs: dict[str, Any]) -> None:
        with self._lock:
            if kind == _events.RETRY:
                self.retries += 1
            elif kind == _events.BUDGET_EXHAUSTED:
                if attrs.get("reason") == "attempts":  # ran out of attempts, not of budget
                    self.gave_up += 1
                    return
                self.refused += 1
                if service not in self._refused_noted:
                    self._refused_noted.add(service)
                    self._lines.append(f"{service}: retry budget exhausted - further retries "
                                       "refused (no retry storm)")
            elif kind == _events.BREAKER_STATE:
                self._breaker(service, attrs)
            elif kind in NARRATED:
                line = self._format(kind, service, attrs)
                if line:
                    self._lines.append(line)

    def _breaker(self, service: str, attrs: Mapping[str, Any]) -> None:
        """One line per probe: "open -> half-open" is held until the probe's verdict."""
        name = self._name(attrs)
        old, new = attrs.get("old"), attrs.get("new")
        held = self._probing.pop((service, name), None)
        if new == "half-open":
            self._probing[(service, name)] = f"{service}: breaker of {name} {old} -> half-open"
        elif old == "half-open" and held is not None:
            verdict = "probe succeeded, closed" if new == "closed" else f"probe failed, {new}"
            self._lines.append(f"{service}: breaker of {name} {verdict}")
        else:
            self._lines.append(f"{service}: breaker of {name} {old} -> {new}")

    def _format(self, kind: str, service: str, attrs: Mapping[str, Any]) -> str | None:
        if kind == _events.EJECTED:
            return f"{service}: {self._name(attrs)} ejected (outlier)"
        if kind == _events.RETURNED:
            return f"{service}: {self._name(attrs)} returned to the pool"
        if kind == _events.PANIC:
            if attrs.get("active"):
                return (f"{service}: panic mode - only {attrs.get('healthy', '?')}/"
                        f"{attrs.get('total', '?')} healthy, balancing over all")
            return f"{service}: panic mode over"
        if kind == _events.POLICY_APPLIED:
            version = str(attrs.get("version", "?"))
            if not self._claim(version):
                return None
            return f"policy {version!r} applied"
        return None  # pragma: no cover - NARRATED lists the kinds above

    def _claim(self, version: str) -> bool:
        """True the first time `version` is seen (called with the lock held)."""
        if version in self.policies:
            return False
        self.policies.add(version)
        return True

    def claim_policy(self, version: str) -> bool:
        """True unless the `policy_applied` event already narrated `version`."""
        with self._lock:
            return self._claim(version)

    def new_phase(self) -> None:
        """Narrate the first refused retry of each service again in the next phase."""
        with self._lock:
            self._refused_noted.clear()

    def drain(self, flush: bool = False) -> list[str]:
        """Lines since the last drain; `flush` adds breakers still waiting on a probe."""
        with self._lock:
            if flush:
                self._lines.extend(self._probing.values())
                self._probing.clear()
            lines = list(self._lines)
            self._lines.clear()
        return lines

    def counts(self) -> tuple[int, int]:
        """(retries, refused retries) so far."""
        with self._lock:
            return self.retries, self.refused
