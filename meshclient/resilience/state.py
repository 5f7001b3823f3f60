"""The resilience half of a service's live state, held by `ServiceRuntime.resilience`.

Built once per (service, policy snapshot): compiled retry rules and backoff, the
process-wide retry budget, the latency tracker, and one breaker per endpoint kept on
`EndpointState.breaker` (so it survives endpoint-set updates with the rest of the
endpoint's history).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from .._clock import RNG
from .._types import Clock, Rng
from .backoff import Backoff
from .breaker import Breaker
from .budget import ServiceBudget, budget_for
from .classify import RetryRules
from .latency import LatencyTracker

if TYPE_CHECKING:
    from ..balance import EndpointState
    from ..policy import Service


class ServiceResilience:
    def __init__(self, service: Service, clock: Clock,
                 wall: Callable[[], float] = time.time, rng: Rng = RNG) -> None:
        self.clock = clock
        self.rng = rng
        self.wall = wall
        self.latency = LatencyTracker()
        self._service: Service | None = None
        self.rules: RetryRules
        self.backoff: Backoff
        self.budget: ServiceBudget
        self.apply(service, ())

    def apply(self, service: Service, states: Iterable[EndpointState]) -> None:
        """Move to a new policy snapshot; called under the registry lock."""
        old = self._service
        if old is None or old.retry != service.retry:
            self.rules = RetryRules.from_policy(service.retry)
            self.backoff = Backoff(service.retry.backoff.base, service.retry.backoff.max)
        self.budget = budget_for(service.name, service.retry.budget, self.clock)
        self._service = service
        self.attach_breakers(states)
        hedge = service.retry.hedge
        self.latency.samples = hedge is not None and hedge.percentile is not None

    def attach_breakers(self, states: Iterable[EndpointState]) -> None:
        """Give every endpoint a breaker (new endpoints), or apply new thresholds."""
        service = self._service
        assert service is not None
        policy = service.breaker
        for state in states:
            breaker = state.breaker
            if breaker is None or breaker.policy.storage != policy.storage:
                state.breaker = Breaker(service.name, state.endpoint.key, policy, self.clock,
                                        self.wall, rng=self.rng)
            elif breaker.policy != policy:
                breaker.reconfigure(policy)

    def snapshot(self) -> dict[str, Any]:
        return self.budget.snapshot()

    def __repr__(self) -> str:
        service = self._service
        attempts = service.retry.attempts if service is not None else None
        return (f"<ServiceResilience {service.name if service is not None else None} "
                f"attempts={attempts} on={sorted(self.rules.kinds)} {self.budget!r} "
                f"{self.latency!r}>")

    @staticmethod
    def endpoint_snapshot(state: EndpointState) -> dict[str, Any]:
        breaker = state.breaker
        return {"breaker": breaker.status() if breaker is not None else "closed"}
