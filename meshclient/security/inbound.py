"""The inbound check every entry point shares (ASGI and WSGI middleware, the handler
decorator): find the current `authentication` and `authorization` sections, then run the
pipeline of `security.gate` (authenticate, identify, checks, decide, count a denial).

```python
gate = InboundGate(policy=store, check=my_check)   # or an AuthorizationPolicy / Policy / None
outcome = gate.decide_sync(InboundRequest(headers=..., method="GET", path="/x"))
outcome = await gate.decide_async(request)         # in a task: fetches and checks awaited
```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..policy import AuthenticationPolicy, AuthorizationPolicy, Policy, PolicyStore, default_store
from .authz import Authorizer, Caller, DenialLog
from .checks import CheckFn
from .gate import Admitted, CheckSpec, InboundRequest, Refused, flow, quick, run_async, run_sync
from .inbound_limits import InboundLimits
from .providers import named_check

logger = logging.getLogger("meshclient.security")


def _rebuilt(section: Any, previous: Any, make: Callable[[], Any], what: str,
             kept: str) -> tuple[Any, Any]:
    """(section, what `make` builds for it); a section that cannot be built keeps the
    `previous` build (logged), or raises when there is none yet (bad input at start-up)."""
    try:
        return section, make()
    except Exception as exc:
        if previous is None:
            raise
        logger.warning("%s: %s; keeping the previous %s", what, exc, kept)
        return section, previous


class AuthorizerSource:
    """The `Authorizer` for the current policy: a fixed `AuthorizationPolicy`, or the
    `authorization` section of a `PolicyStore`'s current policy (None: no section, every
    request allowed). Rebuilt only when that section changes; a section whose secrets cannot
    be read keeps the previous authorizer (logged once)."""

    def __init__(self, policy: Any = None, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

        self._fixed: AuthorizationPolicy | None = None
        self._store: PolicyStore | None = None
        if isinstance(policy, AuthorizationPolicy):
            self._fixed = policy
        elif isinstance(policy, PolicyStore):
            self._store = policy
        elif isinstance(policy, Policy):
            self._store = PolicyStore(policy)
        elif policy is None:
            self._store = default_store()
        else:
            raise TypeError(f"policy must be an AuthorizationPolicy, Policy, PolicyStore or "
                            f"None, not {type(policy).__name__}")
        self._built: tuple[AuthorizationPolicy | None, Authorizer | None] = (None, None)
        self._authn: tuple[AuthenticationPolicy | None, Any] = (None, None)
        self.current()  # bad secrets fail at start-up
        self.authenticator()

    def named_check(self, name: str) -> CheckFn | None:
        """The check a CUSTOM policy's `provider` names: a provider of the current policy's
        `extension_providers`, else a registered check."""
        return named_check(None if self._store is None else self._store.current, name)

    def authenticator(self) -> Any:
        """The `jwt.Authenticator` for the current `authentication` section, or None."""
        section = None if self._store is None else self._store.current.authentication
        built_for, authenticator = self._authn
        if section is built_for:
            return authenticator
        if section is None or not section.jwt:
            self._authn = (section, None)
            return None
        from .jwt import Authenticator

        self._authn = _rebuilt(section, authenticator,
                               lambda: Authenticator(section, self._environ),
                               "authentication", "issuers")
        return self._authn[1]

    def __repr__(self) -> str:
        origin = "fixed" if self._store is None else f"store={self._store.current.version!r}"
        return f"<AuthorizerSource {origin} authorizer={self._built[1]!r}>"

    def current(self) -> Authorizer | None:
        section = self._fixed if self._store is None else self._store.current.authorization
        built_for, authorizer = self._built
        if section is built_for:
            return authorizer
        if section is None:
            self._built = (None, None)
            return None
        self._built = _rebuilt(section, authorizer, lambda: Authorizer(section, self._environ),
                               "authorization", "rules")
        return self._built[1]


class InboundGate:
    """Current sections + the middleware's check + denial accounting. Thread- and
    task-safe. `check`: a function (`security.checks`) consulted for every request, with
    `check_timeout` and `check_fail_open` (Envoy ext_authz's 200 ms and fail-closed)."""

    def __init__(self, policy: Any = None, service: str = "inbound",
                 environ: Mapping[str, str] | None = None, *, check: CheckFn | None = None,
                 check_timeout: float = 0.2, check_fail_open: bool = False) -> None:
        if check is not None and not callable(check):
            raise TypeError(f"check must be a function of a RequestView, not "
                            f"{type(check).__name__}")
        if not check_timeout > 0:
            raise ValueError(f"check_timeout must be greater than 0: {check_timeout!r}")
        self.source = AuthorizerSource(policy, environ)
        self.denials = DenialLog(service)
        self._check = (CheckSpec(check, check_timeout, check_fail_open,
                                 getattr(check, "__name__", "check"))
                       if check is not None else None)
        self.limits = InboundLimits(policy)  # `inbound_limits`: 429 + Retry-After

    @property
    def idle(self) -> bool:
        """Nothing to enforce now (no sections, no check): requests pass untouched."""
        return (self._check is None and self.source.current() is None
                and self.source.authenticator() is None)

    def _flow(self, req: InboundRequest) -> Any:
        return flow(req, self.source.authenticator(), self.source.current(), self._check,
                    self.denials, self.source.named_check)

    def _quick(self, req: InboundRequest) -> Admitted | Refused | None:
        authz = self.source.current()
        if (authz is None or self._check is not None or authz.policies
                or self.source.authenticator() is not None):
            return None
        return quick(req, authz, self.denials)

    def decide_sync(self, req: InboundRequest) -> Admitted | Refused:
        """The decision, blocking this thread for JWKS fetches and checks (bounded)."""
        return self._quick(req) or run_sync(self._flow(req))

    async def decide_async(self, req: InboundRequest) -> Admitted | Refused:
        """The decision, from a task."""
        return self._quick(req) or await run_async(self._flow(req))

    def __repr__(self) -> str:
        return f"<InboundGate {self.source!r} {self.denials!r}>"

    def check(self, *, headers: Mapping[str, str], address: str | None,
              tls: Mapping[str, Any] | None, method: str, path: str) -> Caller | None:
        """The `Caller` when the request may proceed (anonymous when no section is in
        force), or None when it must be refused (sync; see `decide_sync`)."""
        outcome = self.decide_sync(InboundRequest(headers, method, path, address=address,
                                                  tls=tls))
        return outcome.caller if isinstance(outcome, Admitted) else None
