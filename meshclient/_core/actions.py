"""What the core asks a shell to do next, and what the shell reports back.

Plain slotted dataclasses, not frozen ones: a frozen dataclass sets each field through
`object.__setattr__`, and several of these are made on every request. Treat them as
immutable all the same (`dataclasses.replace` for a changed copy)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import httpx

from ..discovery.endpoint import Endpoint, EndpointWaiter

#: Called once when a returned response's body is closed (httpx closes it once fully read,
#: and when reading it fails: the error is then passed).
OnClose = Callable[[BaseException | None], None]


@dataclass(slots=True)
class Send:
    """Send `request` (already addressed to `endpoint`) through the inner transport.

    `service` is the logical service, `attempt` counts from 1 (telemetry reads these).
    """

    request: httpx.Request
    endpoint: Endpoint
    service: str
    attempt: int = 1
    #: ns left of the call's deadline when the Send was made (the shell holds the attempt
    #: to it, on the wall clock: `transport/_deadline.py`); None: no deadline
    left_ns: int | None = None


@dataclass(slots=True)
class Hedge:
    """Send `primary`; if it has not answered after `delay_s`, send `secondary` too (to
    another endpoint). The first outcome for which `good(outcome)` holds wins and the other
    attempt is cancelled (async) or abandoned and its response closed (sync); when neither
    is good, the later one is reported. Call `on_secondary()` as the secondary is sent.
Resume the flow with a `HedgeOutcome`.
    """

    primary: Send
    secondary: Send
    delay_s: float
    good: Callable[[Outcome], bool]
    #: call right before sending `secondary`: its endpoint's in-flight count and latency
    #: measurement start then, not when the primary started
    on_secondary: Callable[[], None] = lambda: None


@dataclass(slots=True)
class Sleep:
    """Wait `seconds`, then resume the flow with `None`."""

    seconds: float


@dataclass(slots=True)
class Discard:
    """Close `response` (its body will not be used), then resume the flow with `None`."""

    response: httpx.Response


@dataclass(slots=True)
class Done:
    """Return `response`; call `on_close` when its body is closed (httpx closes it once
    fully read).

    `attempts` is how many attempts the call made in all.
    """

    response: httpx.Response
    on_close: OnClose | None = None
    attempts: int = 1


@dataclass(slots=True)
class WaitForEndpoints:
    """Block (sync) or wait without blocking the event loop (async) until `waiter` has its
    first answer, at most `timeout_s`; then resume the flow with `None`. Only a service's
    first requests see this: once warm, discovery never waits."""

    waiter: EndpointWaiter
    timeout_s: float


@dataclass(slots=True)
class Outcome:
    """What one `Send` produced: a response (headers received) or the exception raised."""

    response: httpx.Response | None = None
    error: Exception | None = None


@dataclass(slots=True)
class HedgeOutcome:
    """What a `Hedge` produced. `winner` is 0 (primary) or 1 (secondary); `other` is the
    losing attempt's outcome when it finished (its response already closed by the shell),
    None when it was cancelled, abandoned or never sent; `hedged` says whether the
    secondary was sent."""

    winner: int
    outcome: Outcome
    other: Outcome | None
    hedged: bool


@dataclass(slots=True)
class Mirror:
    """A mirror copy of `request` (the caller's own request, not a copy: the sender builds
    the marked copy, off the caller's path) for `service` (a `policy.Service`). Not
    yielded by the flow: the shell hands it to its background sender as the call starts,
    once, never waiting for it."""

    request: httpx.Request
    service: object


Action = Send | Hedge | Sleep | Discard | Done | WaitForEndpoints
