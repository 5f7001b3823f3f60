"""How long an HTTP answer may be cached, from its `Cache-Control` and `Expires` headers
(RFC 9111): pure and total (a malformed header is ignored, never an error)."""

from __future__ import annotations

from email.utils import parsedate_to_datetime

#: Never cache for less than this (a `no-cache` answer is still not fetched per request).
MIN_TTL_S = 1.0
#: Nor for longer than a day, whatever the server says.
MAX_TTL_S = 86400.0


def max_age(cache_control: str | None) -> float | None:
    """`max-age` (or `s-maxage`) in seconds; 0 for `no-cache`/`no-store`; None when unsaid."""
    if not cache_control:
        return None
    found: float | None = None
    for part in cache_control.split(","):
        name, _, value = part.strip().partition("=")
        name = name.strip().lower()
        if name in ("no-cache", "no-store"):
            return 0.0
        if name in ("max-age", "s-maxage"):
            digits = value.strip().strip('"')
            if digits.isdigit() and len(digits) <= 12:
                age = float(digits)
                found = age if found is None else min(found, age)
    return found


def expires_in(expires: str | None, date: str | None, now_epoch_s: float) -> float | None:
    """Seconds until `Expires`, measured from the answer's `Date` when it has one."""
    if not expires:
        return None
    try:
        when = parsedate_to_datetime(expires).timestamp()
        base = parsedate_to_datetime(date).timestamp() if date else now_epoch_s
    except (TypeError, ValueError, IndexError, OverflowError):
        return 0.0  # an invalid Expires means already expired (RFC 9111 5.3)
    return when - base


def ttl(headers: dict[str, str], default_s: float, now_epoch_s: float) -> float:
    """How long to keep an answer with `headers` (lower-case names): `max-age` first, then
    `Expires`, else `default_s`; always within [MIN_TTL_S, MAX_TTL_S]."""
    age = max_age(headers.get("cache-control"))
    if age is None:
        age = expires_in(headers.get("expires"), headers.get("date"), now_epoch_s)
    if age is None:
        age = default_s
    return min(MAX_TTL_S, max(MIN_TTL_S, age))
