"""What the transports call for a service with `tls`, `auth` or `limits`: one `ServiceGuard`
per service, built from the policy and kept while its sections do not change.

The shells call, per logical request (see docs/limits.md for the order), the guard of the
request's *destination* (after routing and any split: TLS, credentials and limits belong
to the service the request is sent to, as they belong to the cluster in Envoy), behind the
matched route's own limiter if it has one (`security.routes`):

1. `admit_sync()` / `await admit_async()` before driving the flow (`Limiter`): adaptive
   throttling, then the rate (shared quota or local bucket), then the bulkhead; waits at
   most `max_wait` in all, else raises `RateLimited`.
2. for every `Send`: `attach_sync(send)` / `await attach_async(send)`: the attempt request
   with the service's credential, unless the attempt is for another service, a mirror copy
   (`context.MIRROR_HEADER`) or already carries the header; and `guard.tls` selects the
   per-service inner transport.
3. `observe(status, error)` once when the call returns or fails (feeds the throttle), and
   `release()` when the response body is closed or the call failed (frees the bulkhead).
"""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from .._core.actions import Send
from .._types import Clock, Rng
from ..context import MIRROR_HEADER
from ..policy import Service
from .admission import Limiter
from .credentials import Credentials, OAuth2Credentials, credentials_for
from .tls import RotatingContext


class ServiceGuard(Limiter):
    """Live security state of one service: its limits (`Limiter`), credentials and TLS
    context. Thread- and task-safe."""

    def __init__(self, service: Service, clock: Clock, rng: Rng,
                 environ: Mapping[str, str] | None = None) -> None:
        super().__init__(service.name, service.limits, service.timeout.total, clock, rng)
        self.sections = (service.tls, service.auth, service.limits)
        self.tls: RotatingContext | None = (
            RotatingContext(service.tls, clock) if service.tls is not None else None)
        self.credentials: Credentials | None = (
            credentials_for(service.auth, environ, clock, rng) if service.auth is not None
            else None)
        self.header = service.auth.header if service.auth is not None else "authorization"

    # -- per attempt -------------------------------------------------------------------
    def _wants_credential(self, send: Send) -> bool:
        headers = send.request.headers
        return (self.credentials is not None and send.service == self.service
                and MIRROR_HEADER not in headers and self.header not in headers)

    def attach_sync(self, send: Send) -> httpx.Request:
        if not self._wants_credential(send):
            return send.request
        creds = self.credentials
        value = (creds.header_value_sync() if isinstance(creds, OAuth2Credentials)
                 else creds.header_value())  # type: ignore[union-attr]
        return _with_header(send.request, self.header, value)

    async def attach_async(self, send: Send) -> httpx.Request:
        if not self._wants_credential(send):
            return send.request
        creds = self.credentials
        value = (await creds.header_value_async() if isinstance(creds, OAuth2Credentials)
                 else creds.header_value())  # type: ignore[union-attr]
        return _with_header(send.request, self.header, value)

    def __repr__(self) -> str:
        return (f"<ServiceGuard {self.service} tls={self.tls!r} bucket={self.bucket!r} "
                f"bulkhead={self.bulkhead!r} throttle={self.throttle!r}>")


def _with_header(request: httpx.Request, name: str, value: str) -> httpx.Request:
    """A copy of the attempt carrying the credential; the caller's request, and any copy
    made from it (a mirror), never sees it."""
    headers = request.headers.copy()
    headers[name] = value
    return httpx.Request(request.method, request.url, headers=headers, stream=request.stream,
                         extensions=request.extensions)
