"""Deadlines and per-try timeouts, in integer nanoseconds on the monotonic clock.

The call's deadline is the earliest of: now + `timeout.total` (or the per-request override),
and the inbound request's deadline (`context.inbound`, set by the server middleware from
the caller's `x-mesh-deadline-ms`). Each attempt is bounded by `timeout.per_try` (or the
override), never beyond what remains, and never beyond the caller's own httpx timeout.

Per-request override: `request.extensions["meshclient.timeout"]` is either a number (the
total, in seconds) or a mapping with any of `"total"` and `"per_try"` (seconds).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import MeshError
from ..policy import TimeoutPolicy

EXTENSION = "meshclient.timeout"
_NS = 1_000_000_000
_HTTPX_KEYS = ("connect", "read", "write", "pool")


class TimeoutOverrideError(MeshError, ValueError):
    """`request.extensions["meshclient.timeout"]` is malformed (message names the value)."""


def _seconds(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            math.isfinite(value) and value > 0):
        raise TimeoutOverrideError(
            f'request.extensions["{EXTENSION}"].{name} must be a positive number of '
            f"seconds: {value!r}")
    return float(value)


def read_override(extensions: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(total, per_try) from the request's override; (None, None) when absent."""
    raw = extensions.get(EXTENSION)
    if raw is None:
        return None, None
    if isinstance(raw, Mapping):
        unknown = set(raw) - {"total", "per_try"}
        if unknown:
            raise TimeoutOverrideError(
                f'request.extensions["{EXTENSION}"] keys must be "total" / "per_try": '
                f"{sorted(unknown)!r}")
        total = raw.get("total")
        per_try = raw.get("per_try")
        return (None if total is None else _seconds("total", total),
                None if per_try is None else _seconds("per_try", per_try))
    return _seconds("total", raw), None


@dataclass(slots=True)  # not frozen: one per request (treat it as immutable)
class Deadline:
    """When the call must be over (`at_ns`), and the per-attempt bound (`per_try_ns`)."""

    at_ns: int
    per_try_ns: int | None
    inherited: bool = False  # the inbound deadline was the earliest

    @classmethod
    def start(cls, policy: TimeoutPolicy, extensions: Mapping[str, Any], now_ns: int,
              inbound_deadline_ns: int | None) -> Deadline:
        return cls(*bounds(policy, extensions, now_ns, inbound_deadline_ns))

    def remaining_ns(self, now_ns: int) -> int:
        return self.at_ns - now_ns


def bounds(policy: TimeoutPolicy, extensions: Mapping[str, Any], now_ns: int,
           inbound_deadline_ns: int | None) -> tuple[int, int | None, bool]:
    """A call's deadline as `Deadline`'s three fields (at_ns, per_try_ns, inherited),
    without the object (a first attempt made outside the flow needs none)."""
    if EXTENSION in extensions:
        total, per_try = read_override(extensions)
        total = policy.total if total is None else total
        per_try = policy.per_try if per_try is None else per_try
    else:  # the common case: the policy's own values
        total, per_try = policy.total, policy.per_try
    at = now_ns + int(total * _NS)
    per_try_ns = None if per_try is None else int(per_try * _NS)
    if inbound_deadline_ns is not None and inbound_deadline_ns < at:
        return inbound_deadline_ns, per_try_ns, True
    return at, per_try_ns, False


def attempt_timeout(caller: Mapping[str, Any] | None, bound_s: float) -> dict[str, float | None]:
    """httpx's timeout extension for one attempt: each of connect/read/write/pool is the
    caller's value (None = unbounded) capped at `bound_s`."""
    if caller is None:
        return dict.fromkeys(_HTTPX_KEYS, bound_s)
    out: dict[str, float | None] = {}
    for key in _HTTPX_KEYS:
        value = caller.get(key)
        if value is None:
            out[key] = bound_s
        else:
            value = float(value)
            out[key] = bound_s if value >= bound_s else value  # min(), NaN included
    return out
