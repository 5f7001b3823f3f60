"""Mesh events (`meshclient._events`) as short narration lines.

The listener runs on whatever thread emits, must be fast and must not raise, so it only
updates counters and appends to a deque; the renderer drains it from the event loop.
Bursts are folded so the story stays readable:
- retries and refused retries are counted, and only the first refusal of each service in
  a phase is narrated; `budget_exhausted` with `reason="attempts"` (every attempt used) is
  not a budget refusal and is counted apart;
- a breaker's probe is one line ("probe failed" / "probe succeeded"), and repeated failed
  probes of one endpoint are counted into the line that finally closes it;
- panic mode flapping on and off is shown as one stretch: "over" is narrated once it has
  stayed off for `PANIC_SETTLE_S`.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from .. import _events

PANIC_SETTLE_S = 1.0


class Narrator:
    """Subscribes on `start()`, unsubscribes on `stop()`. Thread-safe."""

    def __init__(self, names: Mapping[str, str],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.names = dict(names)
        self.clock = clock
        self._lines: deque[str] = deque(maxlen=500)
        self._lock = threading.Lock()
        self.retries = 0
        self.refused = 0
        self.gave_up = 0
        self.policies: set[str] = set()
        self._refused_noted: set[str] = set()
        self._probing: dict[tuple[str, str], str] = {}  # breakers now half-open: held line
        self._failed_probes: dict[tuple[str, str], int] = {}
        self._panic_shown: set[str] = set()  # services the narration says are in panic
        self._panic_off_since: dict[str, float] = {}
        self._unsubscribe: Callable[[], None] | None = None

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
                self._budget(service, attrs)
            elif kind == _events.BREAKER_STATE:
                self._breaker(service, attrs)
            elif kind == _events.PANIC:
                self._panic(service, attrs)
            elif kind == _events.EJECTED:
                self._lines.append(f"{service}: {self._name(attrs)} ejected (outlier)")
            elif kind == _events.RETURNED:
                self._lines.append(f"{service}: {self._name(attrs)} returned to the pool")
            elif kind == _events.POLICY_APPLIED:
                version = str(attrs.get("version", "?"))
                if self._claim(version):
                    self._lines.append(f"policy {version!r} applied")

    # The handlers below run with the lock held.

    def _budget(self, service: str, attrs: Mapping[str, Any]) -> None:
        if attrs.get("reason") == "attempts":
            self.gave_up += 1
            return
        self.refused += 1
        if service not in self._refused_noted:
            self._refused_noted.add(service)
            self._lines.append(f"{service}: retry budget exhausted - further retries refused "
                               "(no retry storm)")

    def _breaker(self, service: str, attrs: Mapping[str, Any]) -> None:
        key = (service, self._name(attrs))
        old, new = attrs.get("old"), attrs.get("new")
        held = self._probing.pop(key, None)
        prefix = f"{service}: breaker of {key[1]}"
        if new == "half-open":
            self._probing[key] = f"{prefix} {old} -> half-open"
        elif old == "half-open" and held is not None and new != "closed":
            failed = self._failed_probes[key] = self._failed_probes.get(key, 0) + 1
            if failed == 1:
                self._lines.append(f"{prefix} probe failed, {new} (further failed probes "
                                   "counted)")
        elif old == "half-open" and held is not None:
            failed = self._failed_probes.pop(key, 0)
            after = f" after {failed} failed probes" if failed > 1 else ""
            self._lines.append(f"{prefix} probe succeeded{after}, closed")
        else:
            self._failed_probes.pop(key, None)
            self._lines.append(f"{prefix} {old} -> {new}")

    def _panic(self, service: str, attrs: Mapping[str, Any]) -> None:
        if attrs.get("active"):
            self._panic_off_since.pop(service, None)
            if service not in self._panic_shown:
                self._panic_shown.add(service)
                self._lines.append(f"{service}: panic mode - only {attrs.get('healthy', '?')}/"
                                   f"{attrs.get('total', '?')} healthy, balancing over all")
        else:
            self._panic_off_since.setdefault(service, self.clock())

    def _settle(self, force: bool) -> None:
        now = self.clock()
        for service, since in list(self._panic_off_since.items()):
            if force or now - since >= PANIC_SETTLE_S:
                del self._panic_off_since[service]
                if service in self._panic_shown:
                    self._panic_shown.discard(service)
                    self._lines.append(f"{service}: panic mode over")

    def _claim(self, version: str) -> bool:
        if version in self.policies:
            return False
        self.policies.add(version)
        return True

    # Called from the renderer's loop.

    def claim_policy(self, version: str) -> bool:
        """True unless the `policy_applied` event already narrated `version`."""
        with self._lock:
            return self._claim(version)

    def new_phase(self) -> None:
        """Narrate the first refused retry of each service again in the next phase."""
        with self._lock:
            self._refused_noted.clear()

    def drain(self, flush: bool = False) -> list[str]:
        """Lines since the last drain; `flush` (at the end) also settles what is pending."""
        with self._lock:
            self._settle(flush)
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
