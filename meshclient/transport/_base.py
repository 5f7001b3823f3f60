"""What both shells share: construction, the routing decision, introspection. No I/O."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar, overload

import httpx

from .._core.first import First, start_first
from .._core.flow import Flow, request_flow
from .._runtime import Registry, ServiceRuntime, registry_for
from ..context import inbound
from ..policy import Policy, PolicyStore, Service, default_store
from ..routing import Decision, route
from ..security.registry import SecurityRegistry, security_for
from ..security.routes import Guard
from ..server import admin
from ..telemetry import start_call
from ..telemetry._flow import instrument, passthrough_flow

T = TypeVar("T")


def as_store(policy: Policy | PolicyStore | None) -> PolicyStore:
    if policy is None:
        return default_store()
    if isinstance(policy, PolicyStore):
        return policy
    if isinstance(policy, Policy):
        return PolicyStore(policy)
    raise TypeError(f"policy must be a Policy, a PolicyStore or None, not "
                    f"{type(policy).__name__}")


#: (service, decision, guard, runtime of the decision's destination): see `MeshBase._begin`
#: (internal to the transports)
Begun = tuple[Service | None, Decision | None, Guard | None, ServiceRuntime | None]
_OUTSIDE: Begun = (None, None, None, None)
_PLAIN_HOSTS = 256  # most hosts `_begin` remembers


class MeshBase:
    """The I/O-free half of a mesh transport."""

    store: PolicyStore
    registry: Registry

    def _setup(self, policy: Policy | PolicyStore | None) -> None:
        self.store = as_store(policy)
        self.registry = registry_for(self.store)
        admin.track(self.store, self.registry)
        # security guards per service; bad TLS files or missing secrets fail here.
        self.security: SecurityRegistry = security_for(self.store)
        self.security.prepare(self.store.current.resolved)
        # host -> (policy snapshot, its `_begin` answer), for hosts that need no routing or
        # admission (passthrough hosts, and services with no routes, tls, auth or limits):
        # one dict read per request instead of the lookup, routing and guard steps.
        self._plain: dict[str, tuple[Policy, Begun]] = {}
        self._tls_inners: dict[int, Any] = {}
        self._tls_lock = threading.Lock()
        # A store built here from a Policy is this transport's alone: close() stops its
        # background work (discovery, health checks). A shared store's outlives it.
        self._owns_store = isinstance(policy, Policy)

    def _close_owned(self) -> None:
        if self._owns_store:
            self.registry.close()

    @overload
    def _start(self, request: httpx.Request) -> First | Flow | Begun | None: ...

    @overload
    def _start(self, request: httpx.Request, begun: Begun) -> First | Flow | None: ...

    def _start(self, request: httpx.Request, begun: Begun | None = None,
               ) -> First | Flow | Begun | None:
        """How the call starts: its first attempt made without the generator (`First`, when
        telemetry is off and nothing else comes first: see `_core/first.py`), else its flow
        (wrapped to trace it when telemetry is on); None: not a service, pass through
        untraced. For a destination with a guard, the `_begin` answer instead:
        the shell admits the request, then starts it with `_start(request, begun)`."""
        if begun is None:
            # the current policy (read once per request: the request sees one version from
            # start to end), and what `_begin` answered for the host under it, if remembered
            policy = self.store.current
            # keyed by the URL's host as parsed (for an IDNA name, its encoded form), which
            # is `url.host` without the property's decoding step
            plain = self._plain.get(request.url._uri_reference.host)
            begun = (plain[1] if plain is not None and plain[0] is policy
                     else self._begin(request, policy))
            if begun[2] is not None:
                return begun  # a guard: admission first
        service, decision, _guard, runtime = begun
        if runtime is None or service is None or decision is None:
            call = start_call(request, None)
            return None if call is None else instrument(passthrough_flow(request), call)
        call = start_call(request, service.name)
        if call is not None:
            return instrument(request_flow(request, runtime, inbound.get(), decision), call)
        caller = inbound.get()
        return (start_first(request, runtime, caller, decision)
                or request_flow(request, runtime, caller, decision))

    def _begin(self, request: httpx.Request, policy: Policy) -> Begun:
        """The service the request's host names in `policy`, its routing decision, what it
        must pass before its flow (`_admission`) and the destination's runtime; or (None,
        None, None, None) for a host outside the policy. Routing happens here, once, before
        admission: route limits and the destination's guard depend on it.
        Answers that depend on nothing but the policy snapshot and the host are remembered
        for that snapshot (`_plain`, read by `_start`)."""
        service = policy.resolved.get(request.url.host)
        if service is None:
            begun: Begun = _OUTSIDE
        else:
            decision = route(request, service, policy, self.registry.rng)
            # a runtime is built or moved to a new snapshot once, then kept: remembering it
            # with the snapshot is the registry's own answer
            begun = (service, decision, self._admission(service, decision),
                     self.registry.runtime(decision.destination))
            if service.routes or begun[2] is not None:
                return begun  # decided per request
        if len(self._plain) >= _PLAIN_HOSTS:
            self._plain.clear()  # many hosts passing through: start again
        self._plain[request.url._uri_reference.host] = (policy, begun)
        return begun

    def _admission(self, service: Service | None, decision: Decision | None) -> Guard | None:
        """What the request must pass before its flow: the matched route's limits,
        then the destination's guard, whose credentials and TLS its attempts use. None: no
        tls/auth/limits on the destination and none on the route, or not a service."""
        if service is None or decision is None:
            return None
        if decision.limits is None:  # the common case, inlined: the destination's guard
            return self.security.guard(decision.destination)
        return self.security.admission(service, decision)

    def _inner_for(self, guard: Guard | None, default: T,
                   make: Callable[..., T]) -> T:
        """The inner transport for a service: `default`, or one built with the service's
        rotating TLS context (`make(verify=ctx, **kwargs)`), kept per context."""
        ctx = None if guard is None else guard.tls
        if ctx is None:
            return default
        inner = self._tls_inners.get(id(ctx))
        if inner is None:
            with self._tls_lock:
                inner = self._tls_inners.get(id(ctx))
                if inner is None:
                    kwargs = {k: v for k, v in getattr(self, "_inner_kwargs", {}).items()
                              if k not in ("verify", "cert")}
                    inner = self._tls_inners[id(ctx)] = (ctx, make(verify=ctx, **kwargs))
        return inner[1]

    def _tls_transports(self) -> list[Any]:
        with self._tls_lock:
            inners, self._tls_inners = list(self._tls_inners.values()), {}
        return [inner for _ctx, inner in inners]

    def snapshot(self) -> dict[str, Any]:
        """Per service and endpoint: live counters (see docs/balancing.md)."""
        return {"policy": self.store.current.version, "services": self.registry.snapshot()}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} store={self.store!r}>"
