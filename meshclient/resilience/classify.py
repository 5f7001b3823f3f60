"""Which outcomes may be retried (Finagle's `Retries.Policy`: "which", never "how many").

Like urllib3's `Retry`: a connection that never reached the server (connect error, refused,
connect timeout; a pool timeout, "pool-timeout", never even left the process) is safe to
retry for any method; anything that may have reached it (a reset, a read or write error, a
read timeout, a status in `retry.on`) is retried only for a method in `retry.methods` or a
request carrying an `Idempotency-Key` header.

Outcome kinds are the `retry.on` condition names: "connect-error", "reset" (the connection
was reset or closed while the response was awaited), "read-error" (any other socket failure
mid-request; listing it also covers resets), "timeout" (a read/write timeout); a response
is its status code (matched by "5xx", "gateway-error" = 502/503/504, or the code itself).
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ..policy import RetryPolicy

CONNECT_ERROR = "connect-error"
RESET = "reset"
READ_ERROR = "read-error"
TIMEOUT = "timeout"
OTHER = "other"
#: No connection of the caller's own pool came free in time: the request never left this
#: process. The caller's problem, not the endpoint's (no breaker, ejection or latency
#: sample); retried like a connect error, which also never reached the server.
POOL_TIMEOUT = "pool-timeout"
IDEMPOTENCY_KEY = "idempotency-key"
GATEWAY = frozenset((502, 503, 504))
RETRY_AFTER_STATUSES = frozenset((429, 503))


def error_kind(error: BaseException) -> str:
    """The kind of a transport error (most specific httpx class first)."""
    if isinstance(error, httpx.PoolTimeout):
        return POOL_TIMEOUT
    if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
        return CONNECT_ERROR
    if isinstance(error, httpx.TimeoutException):
        return TIMEOUT
    if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError)):
        # The connection was reset or closed while the response was awaited ("Server
        # disconnected without sending a response", ECONNRESET; the async stack often
        # reports a bare ReadError for an RST).
        return RESET
    if isinstance(error, httpx.NetworkError):
        return READ_ERROR  # write errors and other mid-request socket failures
    return OTHER


@dataclass(frozen=True, slots=True)
class RetryRules:
    """`RetryPolicy.on` / `.methods` compiled to sets for O(1) checks."""

    kinds: frozenset[str]
    #: every status `on` lists, with "gateway-error" and "5xx" spelled out (a set lookup is
    #: the whole test: `status_listed`)
    statuses: frozenset[int]
    methods: frozenset[str]

    @classmethod
    def from_policy(cls, policy: RetryPolicy) -> RetryRules:
        on = set(policy.on)
        statuses = {int(x) for x in on if x.isdigit()}
        if "gateway-error" in on:
            statuses |= GATEWAY
        if "5xx" in on:
            statuses.update(range(500, 600))
        return cls(kinds=frozenset(on), statuses=frozenset(statuses),
                   methods=frozenset(policy.methods))

    def status_listed(self, status: int) -> bool:
        return status in self.statuses

    def replayable(self, request: httpx.Request) -> bool:
        """THE replay rule: may `request` be sent again after a copy may have reached the
        server? Its method is in `retry.methods`, or it carries an `Idempotency-Key`. A
        retry of anything but a connection that never reached the server, and every hedge,
        obey it (the body must also be replayable: `attempts_allowed`)."""
        return request.method in self.methods or IDEMPOTENCY_KEY in request.headers

    def error_retryable(self, kind: str, request: httpx.Request) -> bool:
        # "read-error" covers resets too (urllib3 counts both as read errors).
        if kind == POOL_TIMEOUT:
            return CONNECT_ERROR in self.kinds  # never left: any method
        if kind not in self.kinds and not (kind == RESET and READ_ERROR in self.kinds):
            return False
        return kind == CONNECT_ERROR or self.replayable(request)

    def status_retryable(self, status: int, request: httpx.Request) -> bool:
        return self.status_listed(status) and self.replayable(request)
