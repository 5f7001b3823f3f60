"""Durations in policy documents: "250ms", "10s", "1.5m", "1h", "500us", or a number of seconds.

A duration is finite, non-negative and at most `MAX_DURATION_S` (365 days), so a value
such as `1e300` or a 400-digit integer is an error here rather than an `OverflowError` in
a timer later.
"""

from __future__ import annotations

import math
import re

from ._fields import MAX_DURATION_S, show

_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_PATTERN = re.compile(r"\s*((?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)\s*"
                      r"(ns|us|µs|ms|s|m|h)\s*")


def parse_duration(value: object) -> float:
    """Return seconds as a float; raise `ValueError` naming the bad value."""
    if isinstance(value, bool):
        raise ValueError(f"must be a duration like '250ms' or a number of seconds: {value!r}")
    try:
        if isinstance(value, (int, float)):
            seconds = float(value)
        elif isinstance(value, str):
            match = _PATTERN.fullmatch(value)
            seconds = (float(value) if match is None
                       else float(match.group(1)) * _UNITS[match.group(2)])
        else:
            raise ValueError(
                f"must be a duration like '250ms' or a number of seconds: {show(value)}")
    except OverflowError:
        seconds = math.inf
    except ValueError as exc:
        if not isinstance(value, str):
            raise
        raise ValueError("must be a duration like '250ms', '10s', '1m' or a number of "
                         f"seconds: {show(value)}") from exc
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(f"must be a finite, non-negative duration: {show(value)}")
    if seconds > MAX_DURATION_S:
        raise ValueError(f"must be at most {MAX_DURATION_S:.0f}s (365 days): {show(value)}")
    return seconds


def format_duration(seconds: float) -> str:
    """A short spelling of `seconds` ("250ms", "10s", "1.5s") that parses back to exactly
    `seconds`."""
    if seconds == 0:
        return "0s"
    millis = round(seconds * 1000, 6)
    if millis < 1000 and millis == int(millis) and parse_duration(f"{int(millis)}ms") == seconds:
        return f"{int(millis)}ms"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds!r}s"
