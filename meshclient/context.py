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


#: Longest digit string read from a mesh header (a count or milliseconds); longer is
#: malformed (and `int()` is never asked to parse an attacker's megabyte of digits).
_MAX_DIGITS = 12


def parse_count(raw: object) -> int | None:
    """A mesh header's non-negative integer (`str` or `bytes`), or None when it is absent
    or malformed: only ASCII digits (surrounding whitespace allowed), at most 12 of them.
    Never raises: `"²".isdigit()` is true, but `"²"` is not a count."""
    if isinstance(raw, bytes):
        raw = raw.decode("latin-1")
    if not isinstance(raw, str):
        return None
    text = raw.strip(" \t")
    if not 0 < len(text) <= _MAX_DIGITS or not text.isascii() or not text.isdigit():
        return None
    return int(text)


def parse_attempt(raw: object) -> int | None:
    """`ATTEMPT_HEADER`: 1, 2, …; None when absent or malformed (0 is malformed)."""
    value = parse_count(raw)
    return value if value is not None and value >= 1 else None


def parse_deadline_ms(raw: object) -> int | None:
    """`DEADLINE_HEADER`: whole milliseconds left (0 or more), or None."""
    return parse_count(raw)


def parse_retries_spent(raw: object) -> int | None:
    """`RETRIES_SPENT_HEADER`: the attempts spent below (1 or more), or None."""
    value = parse_count(raw)
    return value if value is not None and value >= 1 else None


def parse_inbound(headers: Mapping[str, str], now_ns: int) -> Inbound:
    """Read the deadline and attempt headers; a malformed value reads as absent."""
    millis = parse_deadline_ms(headers.get(DEADLINE_HEADER))
    deadline_ns = None if millis is None else now_ns + millis * 1_000_000
    return Inbound(deadline_ns=deadline_ns,
                   attempt=parse_attempt(headers.get(ATTEMPT_HEADER)) or 1)


def spent_mark(value: Inbound, status: int, forwarded: object = None) -> str | None:
    """The `RETRIES_SPENT_HEADER` value an inbound entry point puts on its answer, or None
    to leave the answer as it is. A failure answer (5xx or 429) is marked when an outbound
    call made while handling the request owned its retries and gave up; `forwarded` is the
    value the answer already carries (a handler that passed on the response from below):
    the larger count wins, so a layer never lowers the attempts spent below it."""
    if status < 500 and status != 429:
        return None
    own = value.retries_spent
    below = parse_retries_spent(forwarded)
    if own is None:
        return None  # nothing spent here: the answer (and any forwarded mark) stays as is
    return str(own if below is None else max(own, below))


@contextlib.contextmanager
def inbound_context(value: Inbound) -> Iterator[Inbound]:
    """Make `value` the current inbound request for the block (handlers use this)."""
    token = inbound.set(value)
    try:
        yield value
    finally:
        inbound.reset(token)


@dataclass(frozen=True, slots=True)
class RequestAuth:
    """Who the request being handled comes from, as the inbound policy verified it.

    `principal` is the end user's `iss/sub` from a verified JWT (Istio's request principal)
    and `claims` its claims (None and empty without a token); `source_principal` is the
    calling workload's identity (SPIFFE ID or certificate name from mTLS, a named token),
    None when anonymous.
    """

    principal: str | None = None
    claims: Mapping[str, object] = field(default_factory=dict)
    audiences: tuple[str, ...] = ()
    source_principal: str | None = None


request_auth: contextvars.ContextVar[RequestAuth | None] = contextvars.ContextVar(
    "meshclient_request_auth", default=None)


def current_auth() -> RequestAuth | None:
    """The `RequestAuth` of the inbound request being handled, or None outside one."""
    return request_auth.get()
