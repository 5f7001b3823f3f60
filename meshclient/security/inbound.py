"""The inbound check every entry point shares (ASGI and WSGI middleware, the handler
decorator): find the current rules, identify the caller, decide, count a denial.

```python
gate = InboundGate(policy=store)              # or an AuthorizationPolicy / Policy / None
caller = gate.check(headers=..., address=..., tls=..., method="GET", path="/x")
if caller is None: ...                        # denied: answer 403 with no body
```
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from ..policy import AuthorizationPolicy, Policy, PolicyStore, default_store
from .authz import Authorizer, Caller, DenialLog

logger = logging.getLogger("meshclient.security")


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
        self.current()  # bad secrets fail at start-up

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
        try:
            authorizer = Authorizer(section, self._environ)
        except Exception as exc:
            if authorizer is None:
                raise
            logger.warning("authorization: %s; keeping the previous rules", exc)
        self._built = (section, authorizer)
        return authorizer


class InboundGate:
    """Current rules + identity + decision + denial accounting. Thread- and task-safe.

    `check()` returns the `Caller` when the request may proceed (an anonymous `Caller` when
    no `authorization` section is in force), or None when it must get a 403.
    """

    def __init__(self, policy: Any = None, service: str = "inbound",
                 environ: Mapping[str, str] | None = None) -> None:
        self.source = AuthorizerSource(policy, environ)
        self.denials = DenialLog(service)

    def __repr__(self) -> str:
        return f"<InboundGate {self.source!r} {self.denials!r}>"

    def check(self, *, headers: Mapping[str, str], address: str | None,
              tls: Mapping[str, Any] | None, method: str, path: str) -> Caller | None:
        authorizer = self.source.current()
        if authorizer is None:
            return Caller(None, "none", address)
        caller = authorizer.identify(headers=headers, address=address, tls=tls)
        decision = authorizer.decide(caller, method, path)
        if decision.allowed:
            return caller
        self.denials.record(caller, decision, method, path)
        return None
