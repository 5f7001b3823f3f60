"""The demo's mesh and its script: which services exist, the policy they run under, and
the phases (failures injected one after another), all scaled by `--duration`.

Only data and the knob-turning lives here; timing and traffic are the runner's and
driver's jobs. Every timer in the policy (breaker reset, ejection, budget window, EWMA
decay) scales with the run, so a short run shows the same story as the default minute.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..testing import LoopbackCluster

#: Default length of a run, in seconds.
DEFAULT_DURATION = 60.0
#: Shortest run that still shows every phase.
MIN_DURATION = 4.0

#: (service, endpoints, first loopback host, base latency in ms)
SERVICES = (("users", 4, 2, 12.0), ("users-v2", 2, 6, 8.0), ("orders", 3, 8, 15.0))
#: Share of requests that go to `users` (the rest go to `orders`).
USERS_SHARE = 2 / 3
SLOW_MS = 400.0
SLOW_INDEX = 1  # users-1 turns slow
DEAD_INDEX = 2  # users-2 dies, then comes back


class Mesh:
    """The running backends, one `LoopbackCluster` per service."""

    def __init__(self) -> None:
        self.clusters = {name: LoopbackCluster(n, first=first, name=name)
                         for name, n, first, _ in SERVICES}

    def start(self) -> None:
        for name, _, _, latency in SERVICES:
            cluster = self.clusters[name].start()
            for backend in cluster.backends:
                backend.set(latency_ms=latency)

    def stop(self) -> None:
        for cluster in self.clusters.values():
            cluster.stop()

    def base_latency(self, service: str) -> float:
        return next(latency for name, _, _, latency in SERVICES if name == service)

    def addresses(self, service: str) -> list[str]:
        return self.clusters[service].addresses

    def endpoint_names(self) -> dict[str, str]:
        """`host:port` -> backend name (`users-1`), for display."""
        return {b.address: b.name for c in self.clusters.values() for b in c.backends}


def secs(seconds: float) -> str:
    """Seconds for display: whole above 10 s, one decimal below."""
    return f"{seconds:.0f}" if seconds >= 10 or seconds == int(seconds) else f"{seconds:.1f}"


def _dur(seconds: float) -> str:
    return f"{seconds:.3g}s"


def policy_doc(mesh: Mesh, scale: float, canary: int | None = None) -> dict[str, Any]:
    """The demo's policy document; `canary` is the percentage of `users` sent to
    `users-v2` through a route (None: no route at all)."""
    doc: dict[str, Any] = {
        "version": "demo" if canary is None else f"demo-canary-{canary}",
        "defaults": {
            "timeout": {"total": "1.5s", "per_try": "600ms"},
            "retry": {"attempts": 3, "on": ["connect-error", "reset", "502", "503", "504"],
                      "methods": ["GET", "HEAD", "OPTIONS", "PUT", "DELETE"],
                      "backoff": {"base": "10ms", "max": "100ms"},
                      "budget": {"ratio": 0.2, "min_per_second": 2,
                                 "ttl": _dur(max(1.0, 10 * scale))}},
            "balancer": {"kind": "p2c-ewma", "decay": _dur(max(1.0, 10 * scale)),
                         "default_rtt": "20ms"},
            "breaker": {"failures": 5, "reset": _dur(max(0.3, 1.5 * scale))},
            "outlier": {"consecutive_failures": 5, "base_ejection": _dur(max(0.3, 4 * scale)),
                        "max_ejection": _dur(max(1.0, 15 * scale)), "max_ejected_percent": 50},
        },
        "services": {name: {"endpoints": mesh.addresses(name)} for name, *_ in SERVICES},
    }
    if canary is not None:
        split = [{"service": service, "weight": weight}
                 for service, weight in (("users", 100 - canary), ("users-v2", canary))
                 if weight > 0]
        doc["services"]["users"]["routes"] = [{"to": split}]
    return doc


@dataclass(frozen=True)
class Phase:
    """One step of the script. `enter`/`leave` turn knobs or change the policy through
    the `Stage` they are given; `failure` marks the phases the plot shades."""

    key: str
    title: str
    seconds: float  # at the default duration
    story: str
    failure: bool = False
    enter: Callable[[Stage], None] | None = None
    leave: Callable[[Stage], None] | None = None


class Stage:
    """What phases act on: the backends and a way to apply a canary weight."""

    def __init__(self, mesh: Mesh, apply_canary: Callable[[int], None]) -> None:
        self.mesh = mesh
        self.apply_canary = apply_canary

    def backend(self, service: str, index: int) -> Any:
        return self.mesh.clusters[service][index]


def _slow(stage: Stage) -> None:
    stage.backend("users", SLOW_INDEX).set(latency_ms=SLOW_MS)


def _unslow(stage: Stage) -> None:
    stage.backend("users", SLOW_INDEX).set(latency_ms=stage.mesh.base_latency("users"))


def _kill(stage: Stage) -> None:
    stage.backend("users", DEAD_INDEX).stop()


def _revive(stage: Stage) -> None:
    stage.backend("users", DEAD_INDEX).start()
    stage.backend("users", DEAD_INDEX).set(latency_ms=stage.mesh.base_latency("users"))


def _outage(stage: Stage) -> None:
    for backend in stage.mesh.clusters["orders"].backends:
        backend.set(status=503)


def _heal_orders(stage: Stage) -> None:
    for backend in stage.mesh.clusters["orders"].backends:
        backend.set(status=200)


PHASES = (
    Phase("warm-up", "Warm-up", 6,
          "Steady traffic to users (4 endpoints) and orders (3). The balancer learns each "
          "endpoint's latency."),
    Phase("slow", "Slow endpoint", 10,
          f"users-{SLOW_INDEX} now answers in {SLOW_MS:.0f} ms. Peak-EWMA sees the peak at "
          "once and P2C steers traffic away; round robin keeps sending it a quarter.",
          failure=True, enter=_slow, leave=_unslow),
    Phase("dead", "Dead endpoint", 10,
          f"users-{DEAD_INDEX} is stopped: connection refused. meshclient retries the refused "
          "connection on another endpoint and stops picking the dead one (its failures count "
          "against it; 5 in a row eject it); round robin fails every fourth request.",
          failure=True, enter=_kill, leave=_revive),
    Phase("outage", "Total outage", 10,
          "Every orders endpoint answers 503. Retries cannot help a dead service and would "
          "multiply its load: the retry budget bounds them, and the breakers open and fail "
          "fast (then probe).",
          failure=True, enter=_outage, leave=_heal_orders),
    Phase("recovery", "Recovery", 6,
          f"orders is healthy again and users-{DEAD_INDEX} is back. Breakers probe "
          "(half-open) and close; ejected endpoints return."),
    Phase("canary-20", "Canary 20%", 9,
          "A policy change routes 20% of users traffic to users-v2. Every client follows "
          "at once, no redeploy.",
          enter=lambda stage: stage.apply_canary(20)),
    Phase("canary-100", "Canary 100%", 9,
          "The rollout completes: 100% of users traffic goes to users-v2.",
          enter=lambda stage: stage.apply_canary(100)),
)


def timeline(duration: float) -> list[tuple[Phase, float, float]]:
    """`(phase, start_s, end_s)` for a run of `duration` seconds."""
    total = sum(p.seconds for p in PHASES)
    out, t = [], 0.0
    for phase in PHASES:
        length = phase.seconds * duration / total
        out.append((phase, t, t + length))
        t += length
    return out
