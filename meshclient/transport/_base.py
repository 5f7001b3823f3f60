"""What both shells share: construction, the routing decision, introspection. No I/O."""

from __future__ import annotations

from typing import Any

import httpx

from .._core.flow import Flow, request_flow
from .._runtime import Registry, registry_for
from ..policy import Policy, PolicyStore, default_store


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
        # A store built here from a Policy is this transport's alone: close() stops its
        # background work (discovery, health checks). A shared store's outlives it.
        self._owns_store = isinstance(policy, Policy)

    def _close_owned(self) -> None:
        if self._owns_store:
            self.registry.close()

    def _flow(self, request: httpx.Request) -> Flow | None:
        """The flow for a request to a service in the current policy, else None (pass
        through). The policy is read once here: the request sees one version throughout."""
        service = self.store.current.resolved.get(request.url.host)
        if service is None:
            return None
        return request_flow(request, self.registry.runtime(service))

    def snapshot(self) -> dict[str, Any]:
        """Per service and endpoint: live counters (see docs/balancing.md)."""
        return {"policy": self.store.current.version, "services": self.registry.snapshot()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} store={self.store!r}>"
