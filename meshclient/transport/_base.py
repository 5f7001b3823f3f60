"""What both shells share: construction, the routing decision, introspection. No I/O."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

import httpx

from .. import _fork
from .._core.actions import Mirror
from .._core.address import host_key
from .._core.first import First, start_first
from .._core.flow import Flow, request_flow
from .._runtime import Registry, ServiceRuntime, registry_for
from ..context import inbound
from ..discovery.endpoint import Endpoint
from ..policy import Policy, PolicyStore, Service, default_store
from ..routing import Decision, route
from ..routing.mirror import replayable_body
from ..security.registry import SecurityRegistry, security_for
from ..security.routes import Guard
from ..server import admin
from ..telemetry import start_call
from ..telemetry.flow import instrument, passthrough_flow
from ._pools import EndpointPools
from ._traced import start_traced

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


class Begun(NamedTuple):
    """Where a request goes, decided once per call (`MeshBase._route`): the service its
    host names, the routing decision, what it must pass before its flow (`guard`: route
    limits, then the destination's credentials and TLS), and the destination's runtime.
    All None: a host outside the policy."""

    service: Service | None
    decision: Decision | None
    guard: Guard | None
    runtime: ServiceRuntime | None


_OUTSIDE = Begun(None, None, None, None)
_PLAIN_HOSTS = 256  # most hosts `_route` remembers


def per_request(service: Service, guard: Guard | None) -> bool:
    """THE rule of the per-host cache (`MeshBase._plain`): a service's `Begun` is decided
    per request, never remembered, when routing may depend on more than the host (routes:
    path, headers, weighted splits) or the call has something to pass first (a guard:
    limits, credentials, TLS). A new per-request feature of routing or admission opts out
    here."""
    return bool(service.routes) or guard is not None


class MeshBase:
    """The I/O-free half of a mesh transport."""

    store: PolicyStore
    registry: Registry
    _stale_inner = False  # set in a forked child until its first request

    def _setup(self, policy: Policy | PolicyStore | None) -> None:
        self.store = as_store(policy)
        self.registry = registry_for(self.store)
        admin.track(self.store, self.registry)
        # security guards per service; bad TLS files or missing secrets fail here.
        self.security: SecurityRegistry = security_for(self.store)
        self.security.prepare(self.store.current.resolved)
        # host -> (policy snapshot, its `_route` answer), for hosts that need no per-request
        # routing or admission (passthrough hosts, and services `per_request` allows):
        # one dict read per request instead of the lookup, routing and guard steps.
        self._plain: dict[str, tuple[Policy, Begun]] = {}
        # per endpoint: its own inner transport (`_pools.py`), with the service's TLS
        # context when it has one (one `EndpointPools` per context)
        self.pools: EndpointPools[Any] | None = None
        self._pools_due = False  # an endpoint set changed or a pool awaits its close
        self._ssl: Any = None  # the SSL context every endpoint pool shares (made once)
        self._tls_inners: dict[int, Any] = {}
        self._tls_lock = threading.Lock()
        # A store built here from a Policy is this transport's alone: close() stops its
        # background work (discovery, health checks). A shared store's outlives it.
        self._owns_store = isinstance(policy, Policy)
        _fork.track(self)  # a forked child gets its own connections (`_after_fork_in_child`)

    # -- forked child (meshclient/_fork.py) ----------------------------------------------
    # Connections pooled before a fork are shared with the parent: a child that used them
    # would interleave its bytes with the parent's on one socket. The child forgets them
    # (they are not closed: closing an HTTP/2 connection writes to the shared socket; the
    # child's descriptors close when collected) and builds fresh transports on first use.

    def _after_fork_in_child(self) -> None:
        self._tls_inners = {}
        self._tls_lock = threading.Lock()
        if self.pools is not None:
            self.pools.forget()
        self._pools_due = False
        self._stale_inner = True

    def _resume_after_fork(self) -> None:
        if self._stale_inner:
            self._stale_inner = False
            self._renew_after_fork()

    def _renew_after_fork(self) -> None:
        """The shell's part: a fresh inner transport (when it built its own) and racer."""

    def _close_owned(self) -> None:
        if self._owns_store:
            self.registry.close()

    def _route(self, request: httpx.Request) -> Begun:
        """Where `request` goes under the current policy (read once per request: the
        request sees one version from start to end): remembered per host for the snapshot
        when `per_request` allows, else decided by `_begin`."""
        if _fork.pending:  # first request of a forked child: restart background work
            _fork.resume()
        policy = self.store.current
        plain = self._plain.get(host_key(request))
        if plain is not None and plain[0] is policy:
            return plain[1]
        return self._begin(request, policy)

    def _xds_waiter(self, request: httpx.Request) -> Any:
        """For a host outside the policy while xDS is on: what its first requests wait on
        (`meshclient.xds.hosts.ListenerWaiter`), or None (pass through)."""
        url = request.url
        return self.store.xds.waiter(url.host, url.port, url.scheme)

    def _mirror(self, action: Mirror) -> None:
        """Hand a mirror copy to the shell's background senders (each shell's own)."""
        raise NotImplementedError

    def _open(self, request: httpx.Request, begun: Begun) -> First | Flow | None:
        """How the call starts (after admission, for a guarded one): its first attempt
        made without the generator (`First`, when nothing else comes first: see
        `_core/first.py`; traced or not, the same path), else its flow (wrapped to trace it
        when telemetry is on); None: not a service, pass through untraced."""
        service, decision, _guard, runtime = begun
        if runtime is None or service is None or decision is None:
            call = start_call(request, None)
            return None if call is None else instrument(passthrough_flow(request), call)
        if decision.mirror is not None and replayable_body(request) is not None:
            self._mirror(Mirror(request, decision.mirror))  # leaves first, off the path
        caller = inbound.get()
        call = start_call(request, service.name)
        if call is None:
            return (start_first(request, runtime, caller, decision)
                    or request_flow(request, runtime, caller, decision))
        return (start_traced(request, runtime, caller, decision, call)
                or instrument(request_flow(request, runtime, caller, decision), call))

    def _begin(self, request: httpx.Request, policy: Policy) -> Begun:
        """`_route`'s answer under `policy`, worked out: the service the request's host
        names, its routing decision (routing happens here, once, before admission: route
        limits and the destination's guard depend on it), its admission (`_admission`) and
        the destination's runtime. Remembered for the snapshot unless `per_request`."""
        service = policy.resolved.get(request.url.host)
        if service is None:
            begun = _OUTSIDE
        else:
            decision = route(request, service, policy, self.registry.rng)
            guard = self._admission(service, decision)
            # a runtime is built or moved to a new snapshot once, then kept: remembering it
            # with the snapshot is the registry's own answer
            begun = Begun(service, decision, guard, self.registry.runtime(decision.destination))
            if per_request(service, guard):
                return begun
        if len(self._plain) >= _PLAIN_HOSTS:
            self._plain.clear()  # many hosts passing through: start again
        self._plain[host_key(request)] = (policy, begun)
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

    # -- the inner transport of an attempt -------------------------------------------
    def _endpoint_pools(self, make: Callable[..., T], **kwargs: Any) -> EndpointPools[T]:
        """Per-endpoint transports `make(**pool_kwargs, **kwargs)` (sharded, each shard
        with its share of `limits`: `_pools.py`), told of endpoint set
        changes by the registry. Every pool shares one SSL context, made once: building
        one per endpoint (the CA bundle read each time) would cost milliseconds each."""
        base = dict(getattr(self, "_inner_kwargs", {}))
        if "verify" not in kwargs:
            if self._ssl is None:
                self._ssl = httpx.create_ssl_context(
                    verify=base.get("verify", True), cert=base.get("cert"),
                    trust_env=base.get("trust_env", True))
            kwargs["verify"] = self._ssl
        base.pop("cert", None)
        base.update(kwargs)
        pools: EndpointPools[T] = EndpointPools(
            lambda limits: make(**{**base, "limits": limits}), self._pools_changed,
            limits=base.get("limits"), http2=bool(base.get("http2")))
        self.registry.add_pools(pools)
        return pools

    def _pools_changed(self) -> None:
        self._pools_due = True

    def _pools_to_close(self) -> list[Any]:
        """Retire the pools of endpoints gone from every service; the retired pools with
        nothing in flight, for the shell to close. Clears `_pools_due` when none is left."""
        self._pools_due = False
        every = [self.pools] if self.pools is not None else []
        every += [pools for _ctx, pools in list(self._tls_inners.values())]
        live: set[str] | None = None
        out: list[Any] = []
        for pools in every:
            if pools.dirty:
                if live is None:
                    live = self.registry.endpoint_keys()
                pools.reconcile(live)
            out += pools.closable()
            if pools.retiring or pools.dirty:
                self._pools_due = True  # in flight still: closed on a later request
        return out

    def _inner_at(self, endpoint: Endpoint, guard: Guard | None,
                  make: Callable[..., T]) -> Any:
        """The inner transport for an attempt to `endpoint`: its pool (the one with the
        service's rotating TLS context, `make(verify=ctx, ...)`, when it has one), or the
        shared `inner` when the caller gave one."""
        ctx = None if guard is None else guard.tls
        if ctx is None:
            pools = self.pools
            return self.inner if pools is None else pools.get(endpoint.key)  # type: ignore[attr-defined]
        entry = self._tls_inners.get(id(ctx))
        if entry is None:
            with self._tls_lock:
                entry = self._tls_inners.get(id(ctx))
                if entry is None:
                    entry = self._tls_inners[id(ctx)] = (
                        ctx, self._endpoint_pools(make, verify=ctx))
        return entry[1].get(endpoint.key)

    def _tls_transports(self) -> list[Any]:
        with self._tls_lock:
            entries, self._tls_inners = list(self._tls_inners.values()), {}
        return [inner for _ctx, pools in entries for inner in pools.take_all()]

    def snapshot(self) -> dict[str, Any]:
        """Per service and endpoint: live counters (see docs/balancing.md); per endpoint,
        this transport's pool: connections, idle ones, requests waiting for one."""
        pools: dict[str, dict[str, int]] = {}
        every = [self.pools] if self.pools is not None else []
        for each in every + [p for _ctx, p in list(self._tls_inners.values())]:
            pools.update(each.stats())
        return {"policy": self.store.current.version, "services": self.registry.snapshot(),
                "pools": pools}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} store={self.store!r}>"
