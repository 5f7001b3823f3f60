"""Every error meshclient raises on purpose.

```
Exception
 ├── MeshError                       policy and configuration errors (never replaces a transport failure)
 │    └── PolicyError                a policy document or env value is invalid; `.errors` lists each
 │                                   problem as "field.path: message"
 └── httpx.TransportError
      └── MeshTransportError         marker base: a failure the mesh produced itself
           ├── NoEndpointsAvailable  (also httpx.ConnectError) the service has no usable endpoint
           ├── CircuitOpen           (also httpx.ConnectError) every endpoint's breaker is open
           ├── RateLimited           (also httpx.TransportError) a client-side limit refused the request
           └── DeadlineExceeded      (also httpx.TimeoutException) the call's deadline passed
```

A mesh-produced failure is always also the httpx exception a caller would expect from the
bare transport, so `except httpx.ConnectError` / `except httpx.TimeoutException` code
keeps working when a client is wrapped.
"""

from __future__ import annotations

from collections.abc import Sequence

import httpx

__all__ = [
    "CircuitOpen",
    "DeadlineExceeded",
    "MeshError",
    "MeshTransportError",
    "NoEndpointsAvailable",
    "PolicyError",
    "RateLimited",
]


class MeshError(Exception):
    """Base of meshclient's configuration and policy errors."""


class PolicyError(MeshError, ValueError):
    """A policy (document, file or environment value) is invalid.

    `errors` holds one `"field.path: message"` string per problem; `str()` joins them.
    """

    def __init__(self, errors: str | Sequence[str]) -> None:
        self.errors: tuple[str, ...] = (errors,) if isinstance(errors, str) else tuple(errors)
        super().__init__("; ".join(self.errors))


class MeshTransportError(httpx.TransportError):
    """A transport failure produced by the mesh itself (not by the network)."""

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


class DeadlineExceeded(MeshTransportError, httpx.TimeoutException):
    """The call's deadline (total timeout or an inherited deadline) has passed."""
