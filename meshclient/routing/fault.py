"""Fault injection as data: per attempt, roll the dice and say what to do (pure).

The flow turns a `FaultRoll` into a `Sleep` (delay) and, for an abort, into a synthetic
outcome fed through the normal classification, exactly where the inner transport's result
would go: a status abort is a real `httpx.Response`, an error abort a real
`httpx.ConnectError` (connect) or `httpx.ReadError` (reset). So retries, the budget,
breakers and outlier ejection react to injected faults as they would to real ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from .._types import Rng
from ..policy import AbortFault, FaultPolicy

#: Set on synthetic abort responses, so a caller (or a test) can tell them from real ones.
FAULT_HEADER = "x-mesh-fault"


@dataclass(frozen=True, slots=True)
class FaultRoll:
    """What one attempt suffers: `delay_s` (0: none) and/or an `abort`."""

    delay_s: float = 0.0
    abort: AbortFault | None = None


def roll(fault: FaultPolicy | None, request: httpx.Request, rng: Rng) -> FaultRoll | None:
    """Decide the fault for one attempt; None when nothing happens.

    Delay and abort are drawn independently (Istio/Envoy semantics).
    """
    if fault is None:
        return None
    if fault.header is not None and fault.header not in request.headers:
        return None
    delay = fault.delay
    delay_s = delay.duration if delay is not None and rng.random() * 100 < delay.percent else 0.0
    abort = fault.abort
    if abort is not None and not rng.random() * 100 < abort.percent:
        abort = None
    if not delay_s and abort is None:
        return None
    return FaultRoll(delay_s, abort)


def abort_result(abort: AbortFault, request: httpx.Request) -> httpx.Response | Exception:
    """The synthetic result of an aborted attempt (a response, or the error to raise)."""
    if abort.status is not None:
        return httpx.Response(abort.status, headers={FAULT_HEADER: "abort"},
                              content=b"fault injected\n", request=request)
    if abort.error == "connect":
        return httpx.ConnectError("fault injected: connection refused", request=request)
    return httpx.ReadError("fault injected: connection reset", request=request)
