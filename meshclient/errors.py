"""Every error meshclient raises on purpose.

```
Exception
 └── MeshError                            base of every error meshclient raises on purpose
      ├── PolicyError (ValueError)        a policy document or env value is invalid; `.errors`
      │    │                              lists each problem as "field.path: message"
      │    ├── BackoffError               a backoff setting is out of range
      │    └── BudgetError                a retry-budget setting is out of range
      ├── RetryingError (ValueError)      bad arguments to a `meshclient.retrying` helper
      ├── RedactionError (ValueError)     a key given for redaction cannot be one
      ├── TimeoutOverrideError (ValueError)
      │                                   request.extensions["meshclient.timeout"] is malformed
      ├── TokenAnswerError (ValueError)   a token endpoint's answer is unusable
      ├── TlsError                        TLS material cannot be loaded
      ├── CredentialsError                a credential source is misconfigured
      ├── JwksError                       a JSON Web Key Set cannot be fetched or read
      ├── BreakerError                    a breaker's shared storage cannot be set up
      ├── ControlError                    the control endpoint cannot be read (logged, counted)
      ├── EtcdError                       etcd cannot be reached or refused a call
      ├── DiscoveryError                  a registry cannot be read (the cache serves stale)
      ├── RegistrationError               the first registration in etcd failed
      ├── SheddingError                   a load-shedding setting is invalid
      ├── HandlerRejected                 @meshclient.handler refused an inbound call
      └── MeshTransportError (httpx.TransportError)
           │                              a request failed and the mesh itself decided so
           ├── NoEndpointsAvailable (httpx.ConnectError)     no usable endpoint
           ├── CircuitOpen (httpx.ConnectError)              every endpoint's breaker is open
           ├── RateLimited                                   a client-side limit refused it
           ├── CheckDenied                                   an outbound check refused it
           ├── DeadlineExceeded (httpx.TimeoutException)     the call's deadline passed
           ├── CredentialsUnavailable                        no token could be fetched
           └── SchemeDowngrade (httpx.UnsupportedProtocol)   https would become plain http
```

`except meshclient.MeshError` catches everything meshclient raises on purpose. A failed
request's error is also the httpx exception a caller would expect from the bare transport,
so `except httpx.ConnectError` / `except httpx.TimeoutException` code keeps working when a
client is wrapped; failures that come from the network are never wrapped.

The classes in the first block are defined here; the others live next to the code that
raises them and load on first use of their name here (PEP 562), so importing this module
stays cheap and adds no import cycles.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    from ._etcd import EtcdError
    from .control.errors import ControlError
    from .discovery.endpoint import DiscoveryError
    from .discovery.register import RegistrationError
    from .policy.trust import SchemeDowngrade
    from .resilience.backoff import BackoffError
    from .resilience.breaker import BreakerError
    from .resilience.budget import BudgetError
    from .resilience.deadline import TimeoutOverrideError
    from .retrying import RetryingError
    from .security.bearer import CredentialsError
    from .security.credentials import CredentialsUnavailable
    from .security.jwks import JwksError
    from .security.tls import TlsError
    from .security.token import TokenAnswerError
    from .server.decorators import HandlerRejected
    from .server.shedding import SheddingError
    from .telemetry.redact import RedactionError

#: Errors defined next to the code that raises them -> their module (loaded on first use).
ELSEWHERE = {
    "BackoffError": "meshclient.resilience.backoff",
    "BreakerError": "meshclient.resilience.breaker",
    "BudgetError": "meshclient.resilience.budget",
    "ControlError": "meshclient.control.errors",
    "CredentialsError": "meshclient.security.bearer",
    "CredentialsUnavailable": "meshclient.security.credentials",
    "DiscoveryError": "meshclient.discovery.endpoint",
    "EtcdError": "meshclient._etcd",
    "HandlerRejected": "meshclient.server.decorators",
    "JwksError": "meshclient.security.jwks",
    "RedactionError": "meshclient.telemetry.redact",
    "RegistrationError": "meshclient.discovery.register",
    "RetryingError": "meshclient.retrying",
    "SchemeDowngrade": "meshclient.policy.trust",
    "SheddingError": "meshclient.server.shedding",
    "TimeoutOverrideError": "meshclient.resilience.deadline",
    "TlsError": "meshclient.security.tls",
    "TokenAnswerError": "meshclient.security.token",
}

__all__ = [
    "BackoffError",
    "BreakerError",
    "BudgetError",
    "CheckDenied",
    "CircuitOpen",
    "ControlError",
    "CredentialsError",
    "CredentialsUnavailable",
    "DeadlineExceeded",
    "DiscoveryError",
    "EtcdError",
    "HandlerRejected",
    "JwksError",
    "MeshError",
    "MeshTransportError",
    "NoEndpointsAvailable",
    "PolicyError",
    "RateLimited",
    "RedactionError",
    "RegistrationError",
    "RetryingError",
    "SchemeDowngrade",
    "SheddingError",
    "TimeoutOverrideError",
    "TlsError",
    "TokenAnswerError",
]


def __getattr__(name: str) -> Any:
    module = ELSEWHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'meshclient.errors' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class MeshError(Exception):
    """Base of every error meshclient raises on purpose."""


class PolicyError(MeshError, ValueError):
    """A policy (document, file or environment value) is invalid.

    `errors` holds one `"field.path: message"` string per problem; `str()` joins them.
    """

    def __init__(self, errors: str | Sequence[str]) -> None:
        self.errors: tuple[str, ...] = (errors,) if isinstance(errors, str) else tuple(errors)
        super().__init__("; ".join(self.errors))


class MeshTransportError(MeshError, httpx.TransportError):
    """A request failed and the mesh itself decided so (not the network).

    Also an `httpx.TransportError`; `service` names the logical service concerned."""

    def __init__(self, message: str, *, request: httpx.Request | None = None,
                 service: str | None = None) -> None:
        super().__init__(message, request=request)
        self.service = service


class NoEndpointsAvailable(MeshTransportError, httpx.ConnectError):
    """The service has no endpoint to send to (none configured, discovered or healthy)."""


class CircuitOpen(MeshTransportError, httpx.ConnectError):
    """Every endpoint of the service has an open circuit breaker; failed fast."""


class RateLimited(MeshTransportError):
    """A client-side rate or concurrency limit refused the request."""


class CheckDenied(MeshTransportError):
    """An outbound check (`MeshTransport(check=...)`) refused the request before it was
    sent. `status`, `headers` and `body` are the check's `Deny`."""

    def __init__(self, message: str, *, request: httpx.Request | None = None,
                 service: str | None = None, status: int = 403,
                 headers: tuple[tuple[str, str], ...] = (), body: bytes = b"") -> None:
        super().__init__(message, request=request, service=service)
        self.status = status
        self.headers = headers
        self.body = body


class DeadlineExceeded(MeshTransportError, httpx.TimeoutException):
    """The call's deadline (total timeout or an inherited deadline) has passed."""
