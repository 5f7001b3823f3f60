"""What crosses a hop: the caller's deadline and attempt number, as headers and as
context variables.

Outbound, every attempt carries `DEADLINE_HEADER` (the remaining time, in whole
milliseconds, relative like gRPC's `grpc-timeout` so clock skew between hosts does not
matter); retries and hedges carry `ATTEMPT_HEADER` (2 for the first retry, 3 for the next,
…; absent on a first attempt, which reads as 1).
A response whose retries were already spent below carries `RETRIES_SPENT_HEADER`, so the
layer above does not retry it again (one-layer retries). Mirror copies carry
`MIRROR_HEADER`.

Inbound, the handler decorator and the ASGI/WSGI middleware read those headers into
`inbound` (a `ContextVar`), so outbound calls made while handling the request inherit the
remaining deadline and know whether they serve a retry.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

DEADLINE_HEADER = "x-mesh-deadline-ms"
ATTEMPT_HEADER = "x-mesh-attempt"
RETRIES_SPENT_HEADER = "x-mesh-retries-spent"
MIRROR_HEADER = "x-mesh-mirror"


@dataclass(frozen=True, slots=True)
class Inbound:
    """The request being handled. `deadline_ns` is on the local monotonic clock.

    `spent` collects, for each outbound call made while handling it that gave up on a
    retryable failure after owning its retries, the attempts it made. The inbound
    middleware sets `RETRIES_SPENT_HEADER` on a failure answer when `retries_spent` is
    not None, so the caller above does not retry it again (one-layer retries).
    """

    deadline_ns: int | None = None
    attempt: int = 1
    spent: list[int] = field(default_factory=list, compare=False, repr=False)

    @property
    def is_retry(self) -> bool:
        return self.attempt > 1

    @property
    def retries_spent(self) -> int | None:
        """The most attempts an outbound call spent below, or None."""
        return max(self.spent) if self.spent else None


inbound: contextvars.ContextVar[Inbound | None] = contextvars.ContextVar(
    "meshclient_inbound", default=None)


def parse_inbound(headers: Mapping[str, str], now_ns: int) -> Inbound:
    """Read the deadline and attempt headers (malformed values are ignored, not fatal)."""
    deadline_ns = None
    raw = headers.get(DEADLINE_HEADER)
    if raw is not None:
        try:
            millis = int(raw)
        except ValueError:
            millis = -1
        if millis >= 0:
            deadline_ns = now_ns + millis * 1_000_000
    attempt = 1
    raw = headers.get(ATTEMPT_HEADER)
    if raw is not None and raw.isdigit():
        attempt = max(1, int(raw))
    return Inbound(deadline_ns=deadline_ns, attempt=attempt)


@contextlib.contextmanager
def inbound_context(value: Inbound) -> Iterator[Inbound]:
    """Make `value` the current inbound request for the block (handlers use this)."""
    token = inbound.set(value)
    try:
        yield value
    finally:
        inbound.reset(token)
