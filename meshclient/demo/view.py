"""What the live display shows, built from `transport.snapshot()` and recent samples.

Every snapshot key beyond `endpoint`/`requests` is read with `.get`: a key the running
build does not report yet (estimate, breaker, ejection, budget) shows as "-", so the demo
runs on any build and shows each feature as soon as it exists.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .driver import Sample

#: Seconds of history behind "share of traffic" and observed latency.
WINDOW_S = 2.0


@dataclass(frozen=True, slots=True)
class EndpointView:
    name: str
    address: str
    share: float | None  # of its service's attempts in the window
    estimate_ms: float | None  # the balancer's estimate when it reports one
    observed_ms: float | None  # mean latency of answers from it in the window
    breaker: str | None
    ejected: bool | None
    in_flight: int
    requests: int
    failures: int


@dataclass(frozen=True, slots=True)
class ServiceView:
    name: str
    kind: str | None
    retries: int | None
    budget_balance: float | None
    budget_exhausted: int | None
    panic: bool | None
    endpoints: tuple[EndpointView, ...]


@dataclass(frozen=True, slots=True)
class View:
    t: float
    policy: str
    services: tuple[ServiceView, ...]
    canary_share: float | None  # share of `users` requests answered by users-v2


class Monitor:
    """Turns successive snapshots into `View`s. Called from one task only."""

    def __init__(self, names: Mapping[str, str]) -> None:
        self.names = dict(names)
        self._history: deque[tuple[float, dict[str, int]]] = deque()
        self.track_canary = False  # set once the canary phases begin

    def view(self, t: float, snapshot: Mapping[str, Any], samples: Sequence[Sample],
             client: str) -> View:
        counts = {ep.get("endpoint", "?"): int(ep.get("requests", 0))
                  for svc in snapshot.get("services", {}).values()
                  for ep in svc.get("endpoints", ())}
        self._history.append((t, counts))
        while len(self._history) > 1 and self._history[1][0] <= t - WINDOW_S:
            self._history.popleft()
        before = self._history[0][1]
        recent = _recent(samples, client, t - WINDOW_S)
        services = []
        for name, svc in sorted(snapshot.get("services", {}).items()):
            endpoints = list(svc.get("endpoints", ()))
            deltas = {ep.get("endpoint", "?"): counts.get(ep.get("endpoint", "?"), 0)
                      - before.get(ep.get("endpoint", "?"), 0) for ep in endpoints}
            total = sum(deltas.values())
            rows = []
            for ep in endpoints:
                address = ep.get("endpoint", "?")
                backend = self.names.get(address, address)
                latencies = [s.latency_ms for s in recent if s.backend == backend]
                rows.append(EndpointView(
                    name=backend, address=address,
                    share=deltas[address] / total if total else None,
                    estimate_ms=_float(ep.get("estimate_ms")),
                    observed_ms=sum(latencies) / len(latencies) if latencies else None,
                    breaker=ep.get("breaker"), ejected=ep.get("ejected"),
                    in_flight=int(ep.get("in_flight", 0)), requests=int(ep.get("requests", 0)),
                    failures=int(ep.get("failures", 0))))
            services.append(ServiceView(
                name=name, kind=svc.get("kind"), retries=svc.get("retries"),
                budget_balance=_float(svc.get("budget_balance")),
                budget_exhausted=svc.get("budget_exhausted"), panic=svc.get("panic"),
                endpoints=tuple(rows)))
        canary = None
        users = [s for s in recent if s.service == "users" and s.backend]
        if self.track_canary and users:
            canary = sum(1 for s in users if str(s.backend).startswith("users-v2")) / len(users)
        return View(t, str(snapshot.get("policy", "")), tuple(services), canary)


def _recent(samples: Sequence[Sample], client: str, since: float) -> list[Sample]:
    out = []
    for s in reversed(samples):  # appended roughly in time order: stop early
        if s.t < since - 5:
            break
        if s.client == client and s.t >= since:
            out.append(s)
    return out


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def state_label(endpoint: EndpointView) -> str:
    """One word for an endpoint's health: ejected, the breaker state, or "-"."""
    if endpoint.ejected:
        return "ejected"
    return endpoint.breaker or "-"


def latency_label(endpoint: EndpointView) -> str:
    """The balancer's estimate when reported, else the observed mean (marked "obs")."""
    if endpoint.estimate_ms is not None:
        return f"{endpoint.estimate_ms:.0f} ms"
    if endpoint.observed_ms is not None:
        return f"{endpoint.observed_ms:.0f} ms obs"
    return "-"


def budget_label(service: ServiceView) -> str:
    parts = []
    if service.retries is not None:
        parts.append(f"retries {service.retries}")
    if service.budget_balance is not None:
        parts.append(f"budget {service.budget_balance:.0f}")
    if service.budget_exhausted:
        parts.append(f"refused {service.budget_exhausted}")
    if service.panic:
        parts.append("PANIC")
    return ", ".join(parts) if parts else "retries: not in this build"


def legend(services: tuple[ServiceView, ...]) -> str | None:
    """A note on what "obs" and missing columns mean, when the build reports no estimate."""
    endpoints = [e for s in services for e in s.endpoints]
    if endpoints and all(e.estimate_ms is None for e in endpoints):
        return ("latency: 'obs' = mean observed by the demo (this build's balancer reports no "
                "estimate); no retries/budget/breaker/ejection figures in this build")
    return None
