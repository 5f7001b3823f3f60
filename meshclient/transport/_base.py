"""What both shells share: construction, the routing decision, introspection. No I/O."""

from __future__ import annotations

from typing import Any

import httpx

from .._core.flow import Flow, request_flow
from .._runtime import Registry, registry_for
from ..context import inbound
from ..policy import Policy, PolicyStore, default_store
from ..routing import route
from ..server import admin
from ..telemetry import start_call
from ..telemetry._flow import instrument, passthrough_flow


def as_store(policy: Policy | PolicyStore | None) -> PolicyStore:
    if policy is None:
        return default_store()
    if isinstance(policy, PolicyStore):
        return policy
    if isinstance(policy, Policy):
        return PolicyStore(policy)
    raise TypeError(f"policy must be a Policy, a PolicyStore or None, not "
                    f"{type(policy).__name__}")


class MeshBase:
    """The I/O-free half of a mesh transport."""

    store: PolicyStore
    registry: Registry

    def _setup(self, policy: Policy | PolicyStore | None) -> None:
        self.store = as_store(policy)
        self.registry = registry_for(self.store)
        admin.track(self.store, self.registry)

    def _flow(self, request: httpx.Request) -> Flow | None:
        """The flow for a request to a service in the current policy, else None (pass
        through untraced: telemetry is off). The policy is read once here: the request sees
        one version throughout. With telemetry on, the flow is wrapped to trace it."""
        policy = self.store.current
        service = policy.resolved.get(request.url.host)
        if service is None:
            call = start_call(request, None)
            return None if call is None else instrument(passthrough_flow(request), call)
        # route first (same snapshot), then the destination's runtime
        decision = route(request, service, policy, self.registry.rng)
        flow = request_flow(request, self.registry.runtime(decision.destination), inbound.get(),
                            decision)
        call = start_call(request, service.name)
        return flow if call is None else instrument(flow, call)

    def snapshot(self) -> dict[str, Any]:
        """Per service and endpoint: live counters (see docs/balancing.md)."""
        return {"policy": self.store.current.version, "services": self.registry.snapshot()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} store={self.store!r}>"
