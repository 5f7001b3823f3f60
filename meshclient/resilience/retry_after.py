"""`Retry-After`: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), capped at 300 s."""

from __future__ import annotations

import email.utils
import math

MAX_RETRY_AFTER_S = 300.0


def parse_retry_after(value: str, now_s: float | None) -> float | None:
    """Seconds to wait, or None when the value is invalid (an invalid header is ignored,
    as if absent, rather than failing the call).

    `now_s` is the reference for an HTTP-date (the response's `Date` header when present,
    else the local wall clock); None makes an HTTP-date unusable.
    """
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_S)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or now_s is None:
        return None
    delay = when.timestamp() - now_s
    if not math.isfinite(delay):
        return None
    return min(max(0.0, delay), MAX_RETRY_AFTER_S)


def http_date_s(value: str | None) -> float | None:
    """A `Date` header as epoch seconds, or None."""
    if not value:
        return None
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
