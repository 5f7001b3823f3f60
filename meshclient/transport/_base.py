"""What both shells share: construction, the routing decision, introspection. No I/O."""

from __future__ import annotations

from typing import Any

import httpx

from .._core.flow import Flow, request_flow
from .._runtime import Registry, registry_for
from ..context import inbound
from ..policy import Policy, PolicyStore, default_store
from ..routing import route


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

    def _flow(self, request: httpx.Request) -> Flow | None:
        """The flow for a request to a service in the current policy, else None (pass
        through). The policy is read once here: the request sees one version throughout."""
        policy = self.store.current
        service = policy.resolved.get(request.url.host)
        if service is None:
            return None
        # route first (same snapshot), then the destination's runtime
        decision = route(request, service, policy, self.registry.rng)
        return request_flow(request, self.registry.runtime(decision.destination), inbound.get(),
                            decision)

    def snapshot(self) -> dict[str, Any]:
        """Per service and endpoint: live counters (see docs/balancing.md)."""
        return {"policy": self.store.current.version, "services": self.registry.snapshot()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} store={self.store!r}>"
